"""The monitor run judges training-serving skew of a model served with features.

The trained churn model gets a ``shipyard.features`` tag: three of its columns come from
the view ``customer_stats`` (keyed by ``customer_id``), materialised once. Requests are
logged as a feature-serving server logs them (model columns as served, the entity key,
``feature_ts__customer_stats``); one window is clean, one has ``monthly_charges``
served 10 % too high (the online pipeline computed it differently from the offline one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from shipyard.cli import run
from shipyard.config import Config
from shipyard.features.repo import load_repo
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.monitoring.results import MonitorResult
from shipyard.monitoring.run import run_monitor
from shipyard.project import Project
from shipyard.registry.aliases import move_alias
from shipyard.store.tables import MaterializationRow
from tests.support import TrainedExamples, in_process, project_of
from tests.support.features import log_served_churn, register_tagged_drivers

NOW = pd.Timestamp.now(tz="UTC").floor("s")
FEATURES = ("tenure_months", "monthly_charges", "support_calls")
COLUMNS = ("tenure_months", "monthly_charges", "contract", "support_calls", "region")
ROWS = 400

FEATURES_PY = """\
from datetime import timedelta

from shipyard.features import Entity, Feature, FeatureView, FileSource

customer = Entity("customer", join_keys=("customer_id",))

customer_stats = FeatureView(
    "customer_stats",
    entities=("customer",),
    source=FileSource("data/customer_stats.parquet"),
    ttl=timedelta(days=1),
    created_timestamp_column="created",
    freshness_sla=timedelta(hours={sla_hours}),
    features=(
        Feature("tenure_months", "int64"),
        Feature("monthly_charges", "float64"),
        Feature("support_calls", "int64"),
    ),
)
"""


@dataclass
class FeatureModel:
    config: Config
    project: Project
    clean: str  # window of clean traffic
    skewed: str  # window of skewed traffic


def _window(start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"range:{start.isoformat()}/{end.isoformat()}"


def _log(config: Config, frame: pd.DataFrame, start: pd.Timestamp, factor: float) -> None:
    log_served_churn(config, frame, start, factor, role="live")


def set_up_feature_model(config: Config, sla_hours: float = 1) -> FeatureModel:
    """Tag churn/1 as trained on customer_stats, materialise it once, log two windows."""
    (config.root / "features.py").write_text(FEATURES_PY.format(sla_hours=sla_hours))
    train = pd.read_csv(config.root / "data" / "golden.csv").head(ROWS)
    train["customer_id"] = np.arange(1, ROWS + 1)
    train["event_timestamp"] = (NOW - pd.Timedelta(minutes=30)).as_unit("us")
    train["created"] = (NOW - pd.Timedelta(minutes=29)).as_unit("us")
    train[["customer_id", "event_timestamp", "created", *FEATURES]].to_parquet(
        config.root / "data" / "customer_stats.parquet", index=False
    )
    project = project_of(config)
    view = load_repo(config).views["customer_stats"]
    tag = {
        "features": [f"customer_stats:{name}" for name in FEATURES],
        "columns": {f"customer_stats:{name}": name for name in FEATURES},
        "views": {"customer_stats": view.version},
        "entity_keys": ["customer_id"],
        "request_inputs": ["contract", "region"],
        "entities_digest": "test",
        "mode": "event_time",
    }
    project.client.set_model_version_tag("churn", "1", "shipyard.features", json.dumps(tag))
    move_alias(project.store, project.client, "churn", "champion", "1", action="promote")
    with project.store.session() as session:
        session.add(
            MaterializationRow(
                view="customer_stats",
                version=view.version,
                backend="sqlite",
                start_ts=None,
                end_ts=(NOW - pd.Timedelta(minutes=20)).to_pydatetime(),
                started_at=(NOW - pd.Timedelta(minutes=20)).to_pydatetime(),
                finished_at=(NOW - pd.Timedelta(minutes=19)).to_pydatetime(),
                rows=ROWS,
                max_event_ts=(NOW - pd.Timedelta(minutes=30)).to_pydatetime(),
                status="done",
            )
        )
    clean_start, skewed_start = NOW - pd.Timedelta(minutes=15), NOW - pd.Timedelta(minutes=8)
    _log(config, train, clean_start, 1.0)
    _log(config, train, skewed_start, 1.1)
    return FeatureModel(
        config,
        project,
        _window(clean_start, clean_start + pd.Timedelta(minutes=5)),
        _window(skewed_start, skewed_start + pd.Timedelta(minutes=5)),
    )


@pytest.fixture(scope="module")
def feature_model(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeatureModel]:
    config = trained_examples.copy(tmp_path_factory.mktemp("skew") / "churn", {})
    built = set_up_feature_model(config)
    yield built
    built.project.close()


def _signal(result: MonitorResult, name: str) -> dict[str, Any]:
    (found,) = [s for s in result.signals if s["name"] == name]
    return found


def test_seeded_value_skew_is_caught_in_one_run(feature_model: FeatureModel) -> None:
    result = run_monitor(feature_model.project, "churn", window=feature_model.skewed)
    assert result.skew is not None
    charges = _signal(result, "skew:value:customer_stats:monthly_charges")
    assert charges["level"] == "pause"
    assert charges["score"] == pytest.approx(1.0)
    assert charges["mismatched"] == charges["compared"] == ROWS
    example = charges["examples"][0]
    assert example["served"] == pytest.approx(example["expected"] * 1.1)
    assert "customer_id" in example["entity"]
    assert _signal(result, "skew:value:customer_stats:tenure_months")["level"] == "ok"
    assert result.skew["value"]["level"] == "pause"
    assert result.level == "pause"
    assert result.alerts is not None
    assert "skew:value:customer_stats:monthly_charges" in result.alerts["opened"]
    assert result.alerts["retrain_requested"]  # routes into the CT trigger like drift
    events = feature_model.project.store.events(kind="retrain_requested", subject="model:churn")
    assert any(e.payload.get("signal") == charges["name"] for e in events)


def test_clean_traffic_gives_no_skew_alarm(feature_model: FeatureModel) -> None:
    result = run_monitor(feature_model.project, "churn", window=feature_model.clean)
    assert result.skew is not None
    skew = [s for s in result.signals if s["name"].startswith("skew:")]
    assert {s["name"] for s in skew} == {
        *(f"skew:value:customer_stats:{name}" for name in FEATURES),
        "skew:freshness:customer_stats",
    }
    assert all(s["level"] == "ok" and s["score"] == 0 for s in skew)
    assert result.skew["value"]["level"] == "ok"
    assert result.skew["freshness"]["level"] == "ok"
    assert result.alerts is not None
    assert not any(name.startswith("skew:") for name in result.alerts["opened"])


def test_distribution_skew_reuses_the_runs_drift(feature_model: FeatureModel) -> None:
    result = run_monitor(feature_model.project, "churn", window=feature_model.skewed)
    assert result.skew is not None
    served = {f["feature"] for f in result.features if f.get("skew") == "distribution"}
    assert served == set(FEATURES)  # contract and region are request inputs, not served
    distribution = result.skew["distribution"]
    by_feature = {f["feature"]: f for f in result.features}
    for item in distribution["features"]:
        assert item["score"] == by_feature[item["feature"]]["score"]  # the same numbers
    assert distribution["level"] == max(
        (by_feature[name]["level"] for name in FEATURES),
        key=["unknown", "ok", "inspect", "retrain", "pause"].index,
    )
    charges = _signal(result, "feature:monthly_charges")
    assert charges["skew"] == "distribution"
    assert not [s for s in result.signals if s["name"].startswith("skew:distribution")]


def test_a_small_window_judges_values_but_not_distributions(feature_model: FeatureModel) -> None:
    result = run_monitor(
        feature_model.project, "churn", window="last:30", alerts=False, report=False
    )
    assert result.skew is not None
    assert result.skew["distribution"]["level"] == "unknown"
    assert "monitoring.min_rows" in result.skew["distribution"]["note"]
    charges = _signal(result, "skew:value:customer_stats:monthly_charges")
    assert (charges["compared"], charges["level"]) == (30, "pause")  # exact, not statistical
    assert result.skew["level"] == "pause"


def test_freshness_breach(trained_examples: TrainedExamples, tmp_path: Path) -> None:
    config = trained_examples.copy(tmp_path / "churn", {})
    built = set_up_feature_model(config, sla_hours=0.1)  # 6 minutes; values are 30 old
    try:
        result = run_monitor(built.project, "churn", window=built.clean, report=False)
    finally:
        built.project.close()
    fresh = _signal(result, "skew:freshness:customer_stats")
    assert fresh["level"] == "pause" and fresh["score"] == pytest.approx(1.0)
    assert fresh["p95_age_seconds"] > 6 * 60
    assert result.skew is not None and result.skew["freshness"]["level"] == "pause"


def test_an_unreadable_source_leaves_drift_monitoring_working(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    config = trained_examples.copy(tmp_path / "churn", {})
    built = set_up_feature_model(config)
    (config.root / "data" / "customer_stats.parquet").unlink()
    try:
        result = run_monitor(built.project, "churn", window=built.clean)
    finally:
        built.project.close()
    assert result.skew is not None and result.skew["level"] == "unknown"
    assert "customer_stats" in result.skew["error"]
    assert not [s for s in result.signals if s["name"].startswith("skew:")]
    assert {f"feature:{name}" for name in COLUMNS} <= {s["name"] for s in result.signals}
    assert result.report_path is not None
    assert "Training-serving skew: not checked" in Path(result.report_path).read_text()


def test_monitor_json_and_report_show_skew(
    feature_model: FeatureModel, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(feature_model.config.root)
    window = feature_model.skewed
    code = run(["monitor", "run", "churn", "--window", window, "--json", "--no-alerts"])
    out = capsys.readouterr().out
    assert code == 0, out
    data = orjson.loads(out)
    assert data["skew"]["value"]["level"] == "pause"
    report = Path(data["report_path"]).read_text()
    assert "Training-serving skew: pause" in report
    assert "monthly_charges" in report


def test_a_model_without_features_has_no_skew(
    trained_examples: TrainedExamples,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = trained_examples.copy(tmp_path / "churn", {})
    project = project_of(config)
    try:
        frame = pd.read_csv(config.root / "data" / "golden.csv").head(50)
        start = NOW - pd.Timedelta(minutes=3)
        with PredictionLogWriter(config.resolve(config.serving.logs)) as writer:
            for i, row in enumerate(frame[list(COLUMNS)].itertuples(index=False)):
                writer.log(
                    PredictionBatch(
                        request_id=f"plain-{i}",
                        time=datetime.fromtimestamp(start.timestamp() + i, tz=start.tzinfo),
                        model="churn",
                        version="1",
                        role="live",
                        columns=COLUMNS,
                        matrix=np.array([list(row)], dtype=object),
                        labels=np.array([0]),
                        probabilities=None,
                        latency_ms=1.0,
                        status="ok",
                    )
                )
        result = run_monitor(project, "churn", version="1", window="last:50", report=False)
    finally:
        project.close()
    monkeypatch.chdir(config.root)
    assert run(["features", "skew", "churn", "--version", "1", "--window", "last:50"]) != 0
    assert "not trained on feature views" in capsys.readouterr().err
    assert result.skew is None
    assert "skew" not in result.to_dict() or result.to_dict()["skew"] is None
    assert not [s for s in result.signals if s["name"].startswith("skew:") or "skew" in s]


def test_features_skew_command(
    feature_model: FeatureModel, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(feature_model.config.root)
    window = feature_model.skewed
    assert run(["features", "skew", "churn", "--window", window, "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert (data["model"], data["version"], data["rows"]) == ("churn", "1", ROWS)
    assert data["level"] == "pause"
    value = {item["feature"]: item for item in data["value"]["features"]}
    charges = value["customer_stats:monthly_charges"]
    assert (charges["mismatched"], charges["level"]) == (ROWS, "pause")
    assert len(charges["examples"]) == 5
    assert value["customer_stats:tenure_months"]["mismatched"] == 0
    assert {f["feature"] for f in data["distribution"]["features"]} == set(FEATURES)
    assert data["freshness"]["views"][0]["stale"] == 0
    store = data["freshness"]["store"]["customer_stats"]
    assert store["last_run_at"] is not None and store["age_seconds"] >= 30 * 60

    assert run(["features", "skew", "churn", "--window", feature_model.clean]) == 0
    out = capsys.readouterr().out
    assert "Value skew OK" in out and "customer_stats:monthly_charges: 0/400" in out
    assert "Freshness OK" in out and "online store now: last materialised" in out


# --- end to end: applied, materialised, served by build_server, monitored ---------------


@dataclass
class Served:
    config: Config
    windows: dict[str, str]


def _driver_source(root: Path) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    event = (NOW - pd.Timedelta(minutes=30)).as_unit("us")
    frame = pd.DataFrame(
        {
            "driver_id": np.arange(40, dtype=np.int64),
            "event_timestamp": event,
            "created": event,
            "conv_rate": rng.uniform(0, 1, 40),
            "trips": rng.integers(0, 50, 40).astype(np.int64),
        }
    )
    (root / "data").mkdir(exist_ok=True)
    frame.to_parquet(root / "data" / "driver_stats.parquet", index=False)
    return frame


def _serve(config: Config, requests: int) -> str:
    """Send ``requests`` one-row requests through the real server; the window they fill."""
    from shipyard.serving.server import ServeSpec, build_server

    start = pd.Timestamp.now(tz="UTC")
    server = build_server(ServeSpec.of(config, "drivers/1"))
    with in_process(server.app) as client:
        for i in range(requests):
            body = json.dumps({"instances": [{"driver_id": i % 40, "speed": 40.0 + i % 7}]})
            status, _, payload = client.call(
                "/v1/models/drivers:predict", body.encode(), {"Content-Type": "application/json"}
            )
            assert status == 200, payload
    return _window(start, pd.Timestamp.now(tz="UTC"))


@pytest.fixture(scope="module")
def served(trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """Clean traffic first; then the online store is overwritten with conv_rate × 1.1 (the
    same event times: a second pipeline that computes it differently) and served again."""
    import pyarrow as pa
    import yaml

    from shipyard.config import load_config
    from shipyard.features.materialize import materialize
    from shipyard.features.online import open_online_store
    from shipyard.features.registry import apply
    from tests.support.features import driver_yaml

    root = trained_examples.copy(tmp_path_factory.mktemp("served-skew") / "churn").root
    source = _driver_source(root)
    path = root / "shipyard.yaml"
    document = yaml.safe_load(path.read_text())
    document["features"] = driver_yaml()["features"]
    document.setdefault("monitoring", {})["min_rows"] = 20
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    config = load_config(path, environ={})
    project = project_of(config)
    try:
        apply(project)
        materialize(project)
        register_tagged_drivers(config)
        windows = {"clean": _serve(config, 60)}
        skewed = pa.RecordBatch.from_pandas(
            source.assign(conv_rate=source["conv_rate"] * 1.1), preserve_index=False
        )
        online = open_online_store(config)
        try:
            online.write(load_repo(config).views["driver_stats"], ["driver_id"], skewed)
        finally:
            online.close()
        windows["skewed"] = _serve(config, 60)
    finally:
        project.close()
    return Served(config, windows)


def test_served_clean_traffic_is_silent_and_seeded_skew_is_caught(served: Served) -> None:
    project = project_of(served.config)
    try:
        clean = run_monitor(project, "drivers", version="1", window=served.windows["clean"])
        skewed = run_monitor(project, "drivers", version="1", window=served.windows["skewed"])
    finally:
        project.close()
    assert clean.skew is not None and clean.skew["value"]["level"] == "ok", clean.skew
    assert all(s["level"] == "ok" for s in clean.signals if s["name"].startswith("skew:value:"))
    assert clean.alerts is not None
    assert not [name for name in clean.alerts["opened"] if name.startswith("skew:")]

    conv = _signal(skewed, "skew:value:driver_stats:conv_rate")
    assert conv["level"] == "pause" and conv["score"] == pytest.approx(1.0)
    assert conv["compared"] == 60
    assert _signal(skewed, "skew:value:driver_stats:trips")["level"] == "ok"
    assert skewed.alerts is not None
    assert "skew:value:driver_stats:conv_rate" in skewed.alerts["opened"]
