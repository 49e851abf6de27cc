"""``monitoring.engine`` on a real prediction log: chunked and Spark equal DuckDB's one pass.

The trained churn example serves shifted traffic in process; its prediction log is read
back as ``shipyard monitor run`` reads it, and the features are scored by each engine
against the version's training reference.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from shipyard.config import Config
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import load_served_model
from shipyard.monitoring.engines import engine_feature_drift
from shipyard.monitoring.feature_drift import configured_bands, feature_drift
from shipyard.monitoring.log_window import WindowSpec, load_window
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.references import reference_set
from shipyard.registry.aliases import move_alias
from shipyard.serving.app import create_app
from tests.support import TrainedExamples, in_process, project_of, wait_for

SHIFTED = "monthly_charges"
ROWS = 400


@dataclass
class Logged:
    config: Config
    reference: Reference
    window: pd.DataFrame


@pytest.fixture(scope="module")
def logged(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Logged]:
    """The churn champion's log after 400 shifted requests, and its training reference."""
    config = trained_examples.copy(tmp_path_factory.mktemp("engines") / "churn", {})
    project = project_of(config)
    move_alias(project.store, project.client, "churn", "champion", "1", action="promote")
    model = load_served_model(project.client, "churn", "1")
    root = config.resolve(config.serving.logs)
    log = PredictionLogWriter(root, roll_seconds=0.1)
    log.start()
    rows = pd.read_csv(config.root / "data" / "golden.csv").head(ROWS).copy()
    rows[SHIFTED] = rows[SHIFTED] * 1.6 + 20
    try:
        with in_process(create_app(model, log=log)) as app:
            for i, row in rows.iterrows():
                body = json.dumps({"instances": [row.drop("churned").to_dict()]}).encode()
                status, _, payload = app.call(
                    "/v1/models/churn:predict", body, {"X-Request-ID": f"engine-{i}"}
                )
                assert status == 200, payload
    finally:
        log.close()
    spec = WindowSpec.parse(f"last:{ROWS}")
    wait_for(
        lambda: load_window(root, "churn", spec, version="1").rows == ROWS,
        what=f"{ROWS} predictions in the log",
        every=0.1,
    )
    window = load_window(root, "churn", spec, version="1")
    reference = reference_set(config, project.client, model).reference
    yield Logged(config, reference, window.inputs)


def engines() -> list[str]:
    return ["chunked", "spark"] if shutil.which("java") else ["chunked"]


@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.parametrize("engine", engines())
def test_each_engine_scores_the_log_window_as_duckdb_does(logged: Logged, engine: str) -> None:
    bands = configured_bands(logged.config)
    want = feature_drift(logged.reference, logged.window, bands)
    got = engine_feature_drift(engine, logged.reference, logged.window, bands, chunk_rows=64)
    assert [r.feature for r, _ in got] == [r.feature for r, _ in want]
    for (ours, our_bands), (theirs, their_bands) in zip(got, want, strict=True):
        assert (ours.method, ours.band, ours.drifted, our_bands) == (
            theirs.method,
            theirs.band,
            theirs.drifted,
            their_bands,
        )
        assert (ours.n_current, ours.current_nan, ours.unseen_rows) == (
            theirs.n_current,
            theirs.current_nan,
            theirs.unseen_rows,
        )
        if theirs.score is None:
            assert ours.score is None
        else:
            assert ours.score == pytest.approx(theirs.score, rel=1e-9, abs=1e-12)
    shifted = {r.feature: r.band for r, _ in got}[SHIFTED]
    assert shifted in ("inspect", "retrain", "pause")


def with_engine(config: Config, engine: str) -> Config:
    monitoring = config.monitoring.model_copy(update={"engine": engine})
    return config.model_copy(update={"monitoring": monitoring})


def test_monitor_run_reports_the_same_features_on_the_chunked_engine(logged: Logged) -> None:
    from shipyard.monitoring.run import run_monitor

    runs = {
        engine: run_monitor(
            project_of(with_engine(logged.config, engine)),
            "churn",
            version="1",
            window=f"last:{ROWS}",
            alerts=False,
            report=False,
        )
        for engine in ("duckdb", "chunked")
    }
    duckdb_run, chunked_run = runs["duckdb"], runs["chunked"]
    assert chunked_run.rows == duckdb_run.rows == ROWS
    assert chunked_run.level == duckdb_run.level
    for ours, theirs in zip(chunked_run.features, duckdb_run.features, strict=True):
        for key in ("score", "p_value"):
            want, got = theirs.pop(key), ours.pop(key)
            assert got == (want if want is None else pytest.approx(want, rel=1e-9, abs=1e-12))
        assert ours == theirs
    levels = {f["feature"]: f["level"] for f in chunked_run.features}
    assert levels[SHIFTED] in ("inspect", "retrain", "pause")
