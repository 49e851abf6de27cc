"""PII kept apart: tagged inputs hashed or dropped before any log file, raw values only in
their own store, read only with pii:read.

Real Parquet files are written and their bytes searched; the churn model is served in
process with the project's ``pii`` settings, and the monitor runs on what it logged.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.access import Principal, role_named
from shipyard.config import Config, PiiSettings
from shipyard.errors import ConfigError, Forbidden
from shipyard.logs.pii import PiiPolicy, load_secret, read_raw_pii
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter, PredictionRecord
from shipyard.models.served import load_served_model
from shipyard.monitoring.run import run_monitor
from shipyard.serving.app import create_app
from tests.support import TrainedExamples, in_process, project_of

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
EMAILS = ["ada@example.com", "grace@example.org", "ada@example.com", "linus@example.net"]
ZIPS = [94107, 10001, 94107, 60601]
HEX = "0123456789abcdef"


def policy(tmp_path: Path, **settings: object) -> PiiPolicy:
    """A project-like policy: email pii, zip a quasi-identifier, diagnosis sensitive."""
    values: dict[str, object] = {
        "columns": {"email": "pii", "zip": "quasi_identifier", "diagnosis": "sensitive"},
        **settings,
    }
    pii = PiiSettings.model_validate(values)
    config = Config(root=tmp_path, pii=pii)  # type: ignore[call-arg]
    return PiiPolicy.from_config(config)


def batch(request_id: str = "req", at: datetime = NOW) -> PredictionBatch:
    """Four rows as the server logs them: an object matrix in the spec's column order."""
    matrix = np.array(
        [
            [email, zipcode, diagnosis, age]
            for email, zipcode, diagnosis, age in zip(
                EMAILS, ZIPS, ["flu", "asthma", "flu", "none"], [31, 45, 31, 52], strict=True
            )
        ],
        dtype=object,
    )
    return PredictionBatch(
        request_id=request_id,
        time=at,
        model="churn",
        version="1",
        role="live",
        columns=("email", "zip", "diagnosis", "age"),
        matrix=matrix,
        labels=np.array([0, 1, 0, 1]),
        probabilities=None,
        latency_ms=4.0,
        status="ok",
    )


def log_bytes(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_hashed_columns_never_reach_a_log_file_and_equal_values_hash_equal(
    tmp_path: Path,
) -> None:
    pii = policy(tmp_path)
    logs = tmp_path / "logs"
    with PredictionLogWriter(logs, pii=pii) as writer:
        writer.log(batch())
    raw = log_bytes(logs)
    assert raw  # a file was written
    for value in [*EMAILS, "example", "asthma", "flu"]:
        assert value.encode() not in raw, value
    rows = query_log(logs, "churn").to_pylist()
    emails = [row["inputs"]["email"] for row in rows]
    assert emails[0] == emails[2] and len(set(emails)) == 3  # equal values join
    assert all(len(e) == 32 and set(e) <= set(HEX) for e in emails)
    assert [row["inputs"]["age"] for row in rows] == [31, 45, 31, 52]  # untagged: as sent
    diagnoses = [row["inputs"]["diagnosis"] for row in rows]  # sensitive: hashed by default
    assert diagnoses[0] == diagnoses[2] != diagnoses[1]


def test_drop_writes_no_column_and_tag_policy_picks_per_tag(tmp_path: Path) -> None:
    pii = policy(tmp_path, tag_policy={"sensitive": "drop"})
    logs = tmp_path / "logs"
    with PredictionLogWriter(logs, pii=pii) as writer:
        writer.log(batch())
    rows = query_log(logs, "churn").to_pylist()
    assert set(rows[0]["inputs"]) == {"email", "zip", "age"}
    assert b"asthma" not in log_bytes(logs)
    everything = policy(tmp_path, policy="drop")
    assert {everything.action_of(c) for c in ("email", "zip", "diagnosis")} == {"drop"}


def test_the_secret_is_private_stable_and_never_in_the_log(tmp_path: Path) -> None:
    pii = policy(tmp_path)
    logs = tmp_path / "logs"
    with PredictionLogWriter(logs, pii=pii) as writer:
        writer.log(batch())
    secret = tmp_path / ".shipyard" / "secrets" / "pii.key"
    assert mode(secret) == 0o600 and mode(secret.parent) == 0o700
    key = load_secret(secret)
    assert len(key) == 32 and key.hex().encode() not in log_bytes(logs)
    assert key.hex() not in repr(pii)
    again = policy(tmp_path)  # another process of the same project: the same hashes
    assert again.hash_value("ada@example.com") == pii.hash_value("ada@example.com")
    other = policy(tmp_path / "elsewhere")  # another project's secret: other hashes
    assert other.hash_value("ada@example.com") != pii.hash_value("ada@example.com")


def test_single_records_are_masked_too(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with PredictionLogWriter(logs, pii=policy(tmp_path)) as writer:
        writer.log(
            PredictionRecord(
                "one", NOW, "churn", "1", "live", {"email": EMAILS[0], "age": 3}, 1, None, 1.0, "ok"
            )
        )
    assert EMAILS[0].encode() not in log_bytes(logs)


def test_the_reference_side_hashes_like_the_log(tmp_path: Path) -> None:
    """Numbers hash by value (94107 == 94107.0), so drift compares like with like."""
    pii = policy(tmp_path, tag_policy={"sensitive": "drop"})
    logs = tmp_path / "logs"
    with PredictionLogWriter(logs, pii=pii) as writer:
        writer.log(batch())
    logged = [row["inputs"] for row in query_log(logs, "churn").to_pylist()]
    frame = pd.DataFrame(
        {"email": EMAILS, "zip": ZIPS, "diagnosis": ["flu"] * 4, "age": [31, 45, 31, 52]}
    )
    masked = pii.mask_frame(frame)
    assert list(masked.columns) == ["email", "zip", "age"]
    assert masked["email"].tolist() == [row["email"] for row in logged]
    as_floats = pii.mask_frame(frame.assign(zip=frame["zip"].astype(float)))
    assert as_floats["zip"].tolist() == masked["zip"].tolist() == [r["zip"] for r in logged]
    assert EMAILS[0] not in masked.to_csv()


def test_retain_raw_writes_only_to_the_raw_store_and_reading_needs_pii_read(
    tmp_path: Path,
) -> None:
    pii = policy(tmp_path, retain_raw=True)
    logs = tmp_path / ".shipyard" / "logs"
    with PredictionLogWriter(logs, pii=pii) as writer:
        writer.log(batch())
    assert EMAILS[0].encode() not in log_bytes(logs)
    store = tmp_path / ".shipyard" / "pii"
    assert mode(store) == 0o700
    files = sorted(store.rglob("*.parquet"))
    assert {f.relative_to(store).parts[0] for f in files} == {
        "pii",
        "quasi_identifier",
        "sensitive",
    }
    assert all(mode(f) == 0o600 for f in files)
    assert all(mode(d) == 0o700 for d in store.rglob("*") if d.is_dir())
    assert EMAILS[0].encode() in log_bytes(store)  # where raw values may be, and only there

    viewer = Principal("vic", "token", "viewer", role_named("viewer").scopes)
    operator = Principal("ops", "token", "operator", role_named("operator").scopes)
    for who in (viewer, operator):
        with pytest.raises(Forbidden) as refused:
            read_raw_pii(pii, "churn", who)
        assert "pii:read" in refused.value.message
    admin = Principal("root", "token", "admin", role_named("admin").scopes)
    table = read_raw_pii(pii, "churn", admin)
    rows = {row["request_id"]: row for row in table.to_pylist()}
    assert rows["req:0"]["email"] == EMAILS[0] and rows["req:1"]["zip"] == ZIPS[1]
    assert rows["req:1"]["diagnosis"] == "asthma"


def test_a_raw_store_inside_the_logs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        policy(tmp_path, retain_raw=True, raw_store=".shipyard/logs/raw")
    assert "inside the prediction logs" in refused.value.message


def test_unknown_tags_are_refused() -> None:
    with pytest.raises(ConfigError):
        PiiPolicy(columns={"email": "secret"})
    with pytest.raises(ValueError):
        PiiSettings.model_validate({"columns": {"email": "secret"}})


# --------------------------------------------------------------------------- served


@pytest.fixture(scope="module")
def tagged(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Config]:
    """The trained churn project with region a quasi-identifier and contract sensitive."""
    base = trained_examples.copy(tmp_path_factory.mktemp("pii") / "churn", {})
    pii = PiiSettings(
        columns={"region": "quasi_identifier", "contract": "sensitive"},  # type: ignore[arg-type]
        tag_policy={"sensitive": "drop"},  # type: ignore[arg-type]
    )
    yield base.model_copy(update={"pii": pii})


def test_a_served_model_logs_masked_inputs_and_drift_still_works(tagged: Config) -> None:
    project = project_of(tagged)
    served = load_served_model(project.client, "churn", "1")
    logs = tagged.resolve(tagged.serving.logs)
    golden = pd.read_csv(tagged.root / "data" / "golden.csv").head(300)
    body = golden.drop(columns=["churned"]).to_dict("records")
    log = PredictionLogWriter(logs, pii=PiiPolicy.from_config(tagged))
    with log, in_process(create_app(served, log=log)) as client:
        for start in range(0, len(body), 50):
            chunk = json.dumps({"instances": body[start : start + 50]}).encode()
            assert client.call("/v1/models/churn:predict", chunk)[0] == 200
    raw = log_bytes(logs / "predictions")
    for value in ("north", "south", "east", "west", "month-to-month", "two-year"):
        assert value.encode() not in raw, value
    rows = query_log(logs, "churn").to_pylist()
    assert set(rows[0]["inputs"]) == {"tenure_months", "monthly_charges", "support_calls", "region"}
    result = run_monitor(project, "churn", window="last:300", alerts=False)
    region = next(f for f in result.features if f["feature"] == "region")
    assert region["level"] == "ok" and not region["unseen_categories"], region
    assert "contract" not in {f["feature"] for f in result.features}
    assert result.report_path is not None
    report = Path(result.report_path).read_text(encoding="utf-8")
    for value in ("month-to-month", "two-year", ">west<", '"west"', ">north<", '"north"'):
        assert value not in report, value
    project.close()


def test_pii_features_of_views_in_the_yaml_are_tagged_wherever_the_policy_is_built(
    tmp_path: Path,
) -> None:
    """The server, references and reports all build the policy from the config, so a
    view's PII feature is masked alike in the log and in the reference."""
    config = Config.model_validate(
        {
            "root": tmp_path,
            "features": {
                "entities": [{"name": "customer", "join_keys": ["customer_id"]}],
                "views": [
                    {
                        "name": "profile",
                        "entities": ["customer"],
                        "source": {"path": "profile.parquet"},
                        "features": {"postcode": "string", "age": "int64"},
                        "pii": ["postcode"],
                    }
                ],
            },
            "pii": {"columns": {"email": "pii"}},
        }
    )
    policy = PiiPolicy.from_config(config)
    assert policy.columns == {"postcode": "pii", "email": "pii"}
    assert policy.tag_of("age") is None
