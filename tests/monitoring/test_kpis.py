"""Business KPIs: the team's own CSV, Parquet or PostgreSQL rows joined to a real prediction
log by request id or time bucket, per arm during a challenger split, beside realised
quality, with a correlation computed from the data; every broken KPI is an error on its
result, never an exception."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shipyard.config import Config, KpiSettings
from shipyard.errors import NotFoundError
from shipyard.logs.root import project_log_root
from shipyard.logs.writer import LabelRecord, PredictionBatch, PredictionLogWriter
from shipyard.monitoring import KpiResult, evaluate_kpis
from shipyard.project import Project
from shipyard.registry import Tracking
from shipyard.registry.aliases import CHAMPION, alias_moves, move_alias
from shipyard.store import Store
from tests.support import free_port, load, project_of

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a bucket boundary: buckets are [8:00, 9:00) …
HOURS = 8


@dataclass(frozen=True)
class Logged:
    """One logged prediction and what the test knows about it."""

    request_id: str
    time: datetime
    version: str
    role: str
    predicted: int
    label: int

    @property
    def correct(self) -> bool:
        return self.predicted == self.label


def write_log(config: Config, rows: Sequence[Logged], *, probabilities: bool = False) -> None:
    """The prediction and label logs a server and POST /v1/feedback would have written."""
    root = project_log_root(config)
    with PredictionLogWriter(root) as writer:
        for row in rows:
            p_one = 0.8 if row.predicted == 1 else 0.2
            writer.log(
                PredictionBatch(
                    request_id=row.request_id,
                    time=row.time,
                    model="churn",
                    version=row.version,
                    role=row.role,
                    columns=("x",),
                    matrix=np.array([[1.0]]),
                    labels=np.array([row.predicted]),
                    probabilities=np.array([[1 - p_one, p_one]]) if probabilities else None,
                    latency_ms=1.0,
                    status="ok",
                )
            )
    with PredictionLogWriter(root, kind="labels") as writer:
        for row in rows:
            if row.role == "live":
                writer.log(LabelRecord(row.request_id, row.time, "churn", row.label))


def hourly(seed: int, per_hour: int = 20, version: str = "1") -> list[Logged]:
    """Predictions over HOURS hourly buckets whose accuracy differs from hour to hour."""
    rng = np.random.default_rng(seed)
    rows = []
    for hour in range(HOURS):
        accuracy = rng.uniform(0.3, 0.95)
        for i in range(per_hour):
            label = int(rng.integers(0, 2))
            predicted = label if rng.random() < accuracy else 1 - label
            moment = START + timedelta(hours=hour, minutes=i * 2)
            rows.append(Logged(f"r{hour}-{i}", moment, version, "live", predicted, label))
    return rows


def with_kpis(config: Config, *kpis: dict[str, Any]) -> Project:
    settings = [KpiSettings(**kpi) for kpi in kpis]
    return project_of(config.model_copy(update={"kpis": settings}))


def evaluate(project: Project, **window: datetime) -> dict[str, KpiResult]:
    since = window.get("since", START - timedelta(hours=1))
    until = window.get("until", START + timedelta(hours=HOURS + 1))
    return {result.name: result for result in evaluate_kpis(project, "churn", since, until)}


def bucket_means(rows: Sequence[Logged], value: dict[str, float]) -> list[float]:
    sums: dict[datetime, list[float]] = {}
    for row in rows:
        bucket = row.time.replace(minute=0, second=0, microsecond=0)
        sums.setdefault(bucket, []).append(value[row.request_id])
    return [float(np.mean(sums[b])) for b in sorted(sums)]


@pytest.fixture
def config(initialised_example: Path) -> Config:
    return load(initialised_example)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """Run from another folder: KPI paths are relative to the project, not the cwd."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    before = Path.cwd()
    os.chdir(folder)
    yield folder
    os.chdir(before)


def test_a_csv_kpi_by_request_id_follows_correctness(config: Config, elsewhere: Path) -> None:
    rows = hourly(seed=1)
    write_log(config, rows)
    rng = np.random.default_rng(2)
    # A conversion that happens far more often when the model was right.
    value = {r.request_id: float(rng.random() < (0.8 if r.correct else 0.1)) for r in rows}
    (config.root / "outcomes").mkdir()
    pacsv.write_csv(
        pa.table({"order": list(value), "converted": list(value.values())}),
        config.root / "outcomes" / "conversions.csv",
    )
    project = with_kpis(
        config,
        {
            "name": "conversion",
            "sql": 'SELECT "order" AS request_id, converted AS value '
            "FROM read_csv('outcomes/conversions.csv')",
        },
    )
    result = evaluate(project)["conversion"]
    assert result.error is None
    assert [p.value for p in result.points] == pytest.approx(bucket_means(rows, value))
    assert [p.n for p in result.points] == [20] * HOURS
    assert result.rows == result.matched == len(rows)
    assert result.quality_metric == "accuracy"  # roc_auc is primary; this log has no probabilities
    accuracy = bucket_means(rows, {r.request_id: float(r.correct) for r in rows})
    assert [q.value for q in result.quality] == pytest.approx(accuracy)
    assert result.n == HOURS
    assert result.correlation is not None and result.correlation > 0.5
    assert result.per_arm == {"live": result.points}  # no champion recorded yet
    assert result.arm_versions == {"live": ["1"]}


def test_a_parquet_kpi_against_correctness_correlates_negatively(config: Config) -> None:
    rows = hourly(seed=3)
    write_log(config, rows, probabilities=True)
    losses = {r.request_id: (0.0 if r.correct else 50.0) + (r.time.minute % 7) for r in rows}
    pq.write_table(
        pa.table({"request_id": list(losses), "loss": list(losses.values())}),
        config.root / "losses.parquet",
    )
    project = with_kpis(
        config,
        {
            "name": "fraud_losses",
            "sql": "SELECT request_id, loss AS value FROM read_parquet('losses.parquet')",
            "higher_is_better": False,
        },
    )
    result = evaluate(project)["fraud_losses"]
    assert result.error is None, result.error
    assert result.quality_metric == "roc_auc"  # the scorecard's primary, from probabilities
    assert len(result.quality) == HOURS
    assert result.correlation is not None and result.correlation < 0
    assert not result.higher_is_better


def test_request_ids_match_as_their_sender_wrote_them(config: Config) -> None:
    """The log keeps "<principal>/<id>" for an authenticated sender; the team's table has <id>."""
    rows = [
        Logged(f"alice/o{i}", START + timedelta(minutes=i), "1", "live", 1, 1) for i in range(4)
    ]
    write_log(config, rows)
    pacsv.write_csv(
        pa.table({"request_id": ["o0", "o1", "o2", "alice/o3"], "value": [1.0, 2.0, 3.0, 10.0]}),
        config.root / "kpi.csv",
    )
    project = with_kpis(
        config, {"name": "k", "sql": "SELECT * FROM read_csv('kpi.csv', header = true)"}
    )
    result = evaluate(project)["k"]
    assert result.error is None, result.error
    assert result.matched == 4
    assert [p.value for p in result.points] == [pytest.approx(4.0)]


def test_a_kpi_by_time_is_averaged_per_bucket_inside_the_window(config: Config) -> None:
    rows = hourly(seed=4)
    write_log(config, rows)
    accuracy = bucket_means(rows, {r.request_id: float(r.correct) for r in rows})
    times, values = [], []
    for hour, correct in enumerate(accuracy):
        for quarter in range(4):  # four readings an hour, around the hour's accuracy
            times.append(START + timedelta(hours=hour, minutes=15 * quarter))
            values.append(100 * correct + quarter - 1.5)
    times.append(START - timedelta(days=3))  # outside the window
    values.append(1e6)
    pq.write_table(pa.table({"ts": times, "revenue": values}), config.root / "revenue.parquet")
    project = with_kpis(
        config,
        {
            "name": "revenue",
            "sql": "SELECT ts AS time, revenue AS value FROM read_parquet('revenue.parquet')",
            "join": "time",
        },
    )
    result = evaluate(project)["revenue"]
    assert result.error is None, result.error
    assert [p.value for p in result.points] == pytest.approx([100 * a for a in accuracy])
    assert result.matched == 4 * HOURS and result.rows == 4 * HOURS + 1
    assert result.per_arm == {}
    assert result.correlation == pytest.approx(1.0)
    later = evaluate(project, since=START + timedelta(hours=4))["revenue"]
    assert len(later.points) == HOURS - 4


def test_arms_during_a_challenger_split_and_after_a_promotion(
    two_versions: tuple[Config, Store, Tracking],
) -> None:
    config, store, tracking = two_versions
    (first,) = [m.at for m in alias_moves(store, "churn", CHAMPION)]  # churn/1 champion
    rows = []
    for i in range(60):  # a 50/50 split before churn/2 is promoted; churn/2 also shadows v1
        moment = first + timedelta(microseconds=i + 1)
        version = "1" if i % 2 == 0 else "2"
        rows.append(Logged(f"s{i}", moment, version, "live", int(i % 3 == 0), 1))
        if version == "1":
            rows.append(Logged(f"s{i}", moment, "2", "shadow", 1, 1))
    move_alias(store, tracking.client, "churn", CHAMPION, "2", action="promote")
    second = alias_moves(store, "churn", CHAMPION)[-1].at
    assert second > rows[-1].time
    for i in range(40):  # an hour later, the split goes on with churn/2 as champion
        version = "2" if i % 2 == 0 else "1"
        moment = second + timedelta(hours=1, seconds=i)
        rows.append(Logged(f"t{i}", moment, version, "live", 1, 1))
    write_log(config, rows)
    value = {r.request_id: 10.0 if r.version == "1" else 30.0 for r in rows if r.role == "live"}
    pacsv.write_csv(
        pa.table({"request_id": list(value), "value": list(value.values())}),
        config.root / "kpi.csv",
    )
    project = with_kpis(config, {"name": "basket", "sql": "SELECT * FROM read_csv('kpi.csv')"})
    window = {"since": first, "until": second + timedelta(hours=3)}
    result = evaluate(project, **window)["basket"]
    assert result.error is None, result.error
    assert result.arm_versions == {
        "champion": ["1", "2"],
        "challenger": ["1", "2"],
        "shadow": ["2"],
    }
    assert [p.value for p in result.per_arm["champion"]] == pytest.approx([10.0, 30.0])
    assert [p.value for p in result.per_arm["challenger"]] == pytest.approx([30.0, 10.0])
    assert [p.n for p in result.per_arm["champion"]] == [30, 20]
    assert "shadow" not in result.per_arm  # its answers reached no one
    assert [p.value for p in result.points] == pytest.approx([20.0, 20.0])
    champion_quality = [p.value for p in result.per_arm_quality["champion"]]
    assert champion_quality == pytest.approx([1 / 3, 1.0], abs=0.02)  # churn/1 right 1 in 3
    # A shadow answer is scored against the label of the request it shadowed.
    assert [(p.value, p.n) for p in result.per_arm_quality["shadow"]] == [(1.0, 30)]


def test_kpis_read_from_postgresql(config: Config, postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    rows = hourly(seed=5, per_hour=5)
    write_log(config, rows)
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE outcomes (order_id text, amount numeric, at timestamptz)"))
        conn.execute(
            text("INSERT INTO outcomes VALUES (:i, :a, :t)"),
            [{"i": r.request_id, "a": 3 if r.correct else 1, "t": r.time} for r in rows],
        )
    engine.dispose()
    plain_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    project = with_kpis(
        config,
        {
            "name": "by_request",
            "sql": "SELECT order_id AS request_id, amount AS value FROM outcomes",
            "source": plain_url,
        },
        {
            "name": "by_hour",
            "sql": "SELECT date_trunc('hour', at) AS time, sum(amount) AS value "
            "FROM outcomes GROUP BY 1",
            "source": plain_url,
            "join": "time",
        },
    )
    results = evaluate(project)
    by_request, by_hour = results["by_request"], results["by_hour"]
    assert by_request.error is None and by_hour.error is None, (by_request.error, by_hour.error)
    expected = bucket_means(rows, {r.request_id: 3.0 if r.correct else 1.0 for r in rows})
    assert [p.value for p in by_request.points] == pytest.approx(expected)
    assert [p.value for p in by_hour.points] == pytest.approx([5 * e for e in expected])
    assert by_request.correlation == pytest.approx(1.0)


def test_postgresql_errors_name_the_kpi_and_hide_the_password(
    config: Config, postgres_url: str
) -> None:
    write_log(config, hourly(seed=6, per_hour=2))
    down = f"postgresql://analyst:hunter2secret@127.0.0.1:{free_port()}/finance"
    project = with_kpis(
        config,
        {
            "name": "slow",
            "sql": "SELECT 'a' AS request_id, 1 AS value FROM pg_sleep(30)",
            "source": postgres_url,
            "timeout_seconds": 0.5,
        },
        {"name": "down", "sql": "SELECT 1", "source": down, "timeout_seconds": 2},
        {
            "name": "typo",
            "sql": "SELECT request_id, value FROM no_such_table",
            "source": postgres_url,
        },
    )
    results = evaluate(project)
    assert "'slow'" in str(results["slow"].error) and "timeout_seconds" in str(
        results["slow"].error
    )
    down_error = str(results["down"].error)
    assert "'down'" in down_error and "cannot reach PostgreSQL" in down_error
    assert "hunter2secret" not in down_error and "***" in down_error
    assert "no_such_table" in str(results["typo"].error)
    assert all(not r.points for r in results.values())
    assert all(r.quality for r in results.values())  # quality is still shown beside the error


BROKEN = [
    ("syntax", "SELEC request_id, value FROM x", "does not parse"),
    ("missing_file", "SELECT * FROM read_csv('nowhere.csv')", "relative to the project folder"),
    ("missing_column", "SELECT request_id, amount FROM read_csv('good.csv')", "Binder"),
    (
        "wrong_columns",
        "SELECT request_id AS id, value FROM read_csv('good.csv')",
        "without request_id",
    ),
    ("not_a_number", "SELECT request_id, 'many' AS value FROM read_csv('good.csv')", "a number"),
    ("two_statements", "SELECT 1; SELECT 2", "exactly one SELECT"),
    ("writes", "COPY (SELECT 1) TO 'out.csv'", "exactly one SELECT"),
]


def test_every_broken_kpi_is_an_error_on_its_result(config: Config) -> None:
    write_log(config, hourly(seed=7, per_hour=3))
    pacsv.write_csv(pa.table({"request_id": ["r0-0"], "value": [1.0]}), config.root / "good.csv")
    project = with_kpis(
        config,
        *({"name": name, "sql": sql} for name, sql, _ in BROKEN),
        {
            "name": "too_slow",
            "sql": "SELECT 'x' AS request_id, sum(hash(range)) AS value FROM range(1000000000000)",
            "timeout_seconds": 0.3,
        },
        {"name": "fine", "sql": "SELECT * FROM read_csv('good.csv')"},
    )
    results = evaluate(project)
    for name, _, says in BROKEN:
        error = results[name].error
        assert error is not None and f"KPI {name!r}" in error and says in error, (name, error)
    assert "timeout_seconds" in str(results["too_slow"].error)
    assert not (config.root / "out.csv").exists()
    assert results["fine"].error is None and results["fine"].matched == 1


def test_a_kpi_for_another_model_is_not_evaluated_and_an_unknown_model_is_refused(
    config: Config,
) -> None:
    write_log(config, hourly(seed=8, per_hour=1))
    project = with_kpis(
        config, {"name": "other", "sql": "SELECT 1 AS request_id, 1 AS value", "model": "fraud"}
    )
    assert evaluate_kpis(project, "churn") == []
    with pytest.raises(NotFoundError, match="nonesuch"):
        evaluate_kpis(project, "nonesuch")


def test_a_source_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(ValidationError, match="read_csv"):
        KpiSettings(name="k", sql="SELECT 1", source="mysql://db/x")


def test_the_cli_prints_json_and_a_table_and_fails_on_a_broken_kpi(config: Config) -> None:
    rows = hourly(seed=9, per_hour=4)
    write_log(config, rows)
    pacsv.write_csv(
        pa.table({"request_id": [r.request_id for r in rows], "value": [1.0] * len(rows)}),
        config.root / "kpi.csv",
    )
    config_file = config.root / "shipyard.yaml"
    config_file.write_text(
        config_file.read_text()
        + "\nkpis:\n  - name: signups\n    sql: SELECT * FROM read_csv('kpi.csv')\n"
    )
    since = ["--since", (START - timedelta(hours=1)).isoformat()]
    code, out, err = shipyard(config.root, "monitor", "kpis", "churn", *since, "--json")
    assert code == 0, err
    (found,) = json.loads(out)
    assert found["name"] == "signups" and len(found["points"]) == HOURS
    code, out, err = shipyard(config.root, "monitor", "kpis", "churn", *since)
    assert code == 0, err
    assert "signups" in out and out.count("2026-11-02") == HOURS
    config_file.write_text(config_file.read_text().replace("kpi.csv", "gone.csv"))
    code, out, err = shipyard(config.root, "monitor", "kpis", "churn", *since)
    assert code == 1
    assert "KPI 'signups'" in out and "Traceback" not in out + err


def shipyard(root: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def test_the_docs_declarations_are_valid_kpis() -> None:
    import yaml

    page = (Path(__file__).resolve().parents[2] / "docs" / "kpis.md").read_text(encoding="utf-8")
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    declared = [KpiSettings(**kpi) for kpi in yaml.safe_load(block)["kpis"]]
    assert [k.join for k in declared] == ["request_id", "time"]
    assert declared[1].source is not None and not declared[1].higher_is_better


def quality_rows(outputs: list[Any], labels: list[Any], probabilities: Any = None) -> pa.Table:
    n = len(outputs)
    as_json = pa.types.is_floating(pa.array(outputs).type) is False
    return pa.table(
        {
            "bucket": [START + timedelta(hours=i % 2) for i in range(n)],
            "arm": ["champion"] * n,
            "output": [json.dumps(o) for o in outputs] if as_json else outputs,
            "probabilities": pa.array(probabilities or [None] * n, pa.list_(pa.float64())),
            "label": [json.dumps(v) for v in labels] if as_json else labels,
        }
    )


def test_quality_of_a_regressor_is_its_rmse_per_bucket() -> None:
    from shipyard.monitoring.kpi_quality import bucket_quality

    outputs = [1.0, 10.0, 2.0, 10.0]
    labels = [2.0, 10.0, 4.0, 13.0]  # bucket 8:00 errs by 1 and 2, bucket 9:00 by 0 and 3
    metric, overall, per_arm = bucket_quality(quality_rows(outputs, labels), "rmse", "regression")
    assert metric == "rmse"
    assert [v for v, _ in overall.values()] == pytest.approx([np.sqrt(2.5), np.sqrt(4.5)])
    assert per_arm["champion"] == overall


def test_probabilities_over_unseen_classes_fall_back_to_accuracy() -> None:
    from shipyard.monitoring.kpi_quality import bucket_quality

    outputs, labels = ["a", "b", "a", "a"], ["a", "b", "b", "a"]
    three = [[0.7, 0.2, 0.1]] * 4  # the model knows a third class this window never shows
    metric, overall, _ = bucket_quality(
        quality_rows(outputs, labels, three), "roc_auc", "classification"
    )
    assert metric == "accuracy"
    assert [v for v, _ in overall.values()] == pytest.approx([0.5, 1.0])  # rows 0, 2 | 1, 3


def test_an_unreadable_prediction_log_is_an_error_on_each_kpi(config: Config) -> None:
    rows = hourly(seed=10, per_hour=2)
    write_log(config, rows)
    pacsv.write_csv(pa.table({"request_id": ["r0-0"], "value": [1.0]}), config.root / "kpi.csv")
    day = next((project_log_root(config) / "predictions" / "model=churn").glob("date=*"))
    (day / "part-stray.parquet").write_bytes(b"not parquet at all")
    project = with_kpis(config, {"name": "k", "sql": "SELECT * FROM read_csv('kpi.csv')"})
    (result,) = evaluate_kpis(project, "churn")
    assert result.error is not None
    assert "KPI 'k'" in result.error and "cannot be read" in result.error
    assert "move files" in result.error


@settings(max_examples=60)
@given(
    xs=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=40, unique=True),
    slope=st.floats(0.01, 100) | st.floats(-100, -0.01),
    noise_seed=st.integers(0, 2**32 - 1),
)
def test_pearson_is_the_sign_of_a_line_and_stays_within_one(
    xs: list[float], slope: float, noise_seed: int
) -> None:
    from shipyard.monitoring.kpi_quality import pearson

    line = [slope * x + 3.0 for x in xs]
    r = pearson(xs, line)
    assume(r is not None)  # a spread too small for float arithmetic is "flat"
    assert r == pytest.approx(np.sign(slope), abs=1e-6)
    noisy = np.asarray(xs) + np.random.default_rng(noise_seed).normal(size=len(xs))
    found = pearson(xs, list(noisy))
    assert found is None or -1.0 - 1e-9 <= found <= 1.0 + 1e-9
    assert pearson(xs[:2], line[:2]) is None and pearson(xs, [1.0] * len(xs)) is None
