"""The demo workspace: its config loads, its data validates, it trains a model that passes.

One workspace is created and trained once for the module (loans/1); tests that change
files get their own small workspace.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from shipyard.config import Config
from shipyard.data import load_schema, read_frame, validate
from shipyard.data.frames import data_files
from shipyard.demo import (
    AFTER,
    BEFORE,
    FEATURES,
    NOISE,
    TARGET,
    LiveTraffic,
    Workspace,
    WorkspaceSettings,
    agrawal_frame,
    create_workspace,
    worse_training_frame,
)
from shipyard.errors import ConfigError, DataError
from shipyard.evaluation.evaluate import evaluate_version, load_scorecard
from shipyard.registry.refs import ModelRef
from shipyard.training import TrainResult, train
from tests.support import project_of
from tests.support.agrawal import rule_a, rule_b

PAGER = "http://127.0.0.1:9/pages"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return create_workspace(tmp_path_factory.mktemp("demo") / "loans", pager_url=PAGER)


@pytest.fixture(scope="module")
def config(workspace: Workspace) -> Config:
    return workspace.load_config(environ={})


@pytest.fixture(scope="module")
def trained(config: Config) -> TrainResult:
    return train(project_of(config))


def test_config_holds_the_demo_settings(workspace: Workspace, config: Config) -> None:
    assert config.model.name == "loans" and config.model.owner == "credit-risk"
    assert config.resolve(config.train.data or Path()) == workspace.train_folder
    assert workspace.batches() == [workspace.train_folder / "0000-initial.parquet"]
    assert config.resolve(config.evaluation.golden or Path()) == workspace.golden
    assert config.promotion.approval == "none"
    assert (config.serving.workers, config.serving.poll_seconds) == (2, 0.2)
    assert config.serving.log_roll_seconds == 1.0
    assert (config.monitoring.window, config.monitoring.every_seconds) == ("last:600", 2.0)
    [route] = config.monitoring.routes
    assert (route.kind, route.url, route.min_level) == ("webhook", PAGER, "retrain")
    assert (config.delivery.poll_seconds, config.delivery.min_samples) == (0.5, 100)
    assert config.ct.enabled and config.ct.on_drift
    assert config.ct.window_rows == 1000 and config.ct.recent_labelled == 500
    assert config.ct.canary_steps == [10.0, 50.0, 100.0]
    scorecard = load_scorecard(config)
    assert scorecard.primary is not None
    assert (scorecard.primary.metric, scorecard.primary.min) == ("accuracy", 0.85)
    assert [(m.metric, m.min) for m in scorecard.metrics] == [("roc_auc", 0.80)]
    # Every setting is explained where it is set.
    text = workspace.config_file.read_text(encoding="utf-8")
    assert text.count("#") > 30


def test_settings_and_a_missing_pager_reach_the_files(tmp_path: Path) -> None:
    settings = WorkspaceSettings(ct_window_rows=700, canary_steps=(25.0, 100.0), min_accuracy=0.8)
    small = create_workspace(tmp_path / "w", rows=400, golden_rows=50, settings=settings)
    config = small.load_config(environ={})
    assert config.monitoring.routes == []
    assert config.ct.window_rows == 700 and config.ct.canary_steps == [25.0, 100.0]
    scorecard = load_scorecard(config)
    assert scorecard.primary is not None and scorecard.primary.min == 0.8
    assert len(read_frame(small.golden)) == 50 and len(read_frame(small.valid)) == 100
    with pytest.raises(ConfigError, match="already holds"):
        create_workspace(tmp_path / "w")


def test_every_dataset_and_live_traffic_validate(workspace: Workspace) -> None:
    schema = load_schema(workspace.schema)
    live = LiveTraffic(3000, switch_at=1500, seed=7).to_frame()
    for frame in (
        read_frame(workspace.train_folder),
        read_frame(workspace.valid),
        read_frame(workspace.golden),
        live.drop(columns=["request_id", "concept"]),
        worse_training_frame(1000),
    ):
        report = validate(frame, schema)
        assert report.ok, report.to_dict()
    # A retrain's held-out share of its window is small; the schema lets it through.
    assert validate(live.drop(columns=["request_id", "concept"]).head(200), schema).ok
    broken = read_frame(workspace.valid).assign(age=200)
    assert not validate(broken, schema).ok


def test_golden_cases_have_one_answer_under_both_concepts(workspace: Workspace) -> None:
    golden = read_frame(workspace.golden)
    assert len(golden) == 2000
    assert (golden[TARGET] == rule_a(golden)).all() and (golden[TARGET] == rule_b(golden)).all()
    # Both answers occur, so accuracy on it means something.
    assert 0.5 < golden[TARGET].mean() < 0.9
    for function in (BEFORE, AFTER):
        rows = agrawal_frame(4000, function=function, seed=11, label_noise=NOISE)
        model = GradientBoostingClassifier(random_state=0).fit(rows[list(FEATURES)], rows[TARGET])
        accuracy = (model.predict(golden[list(FEATURES)]) == golden[TARGET]).mean()
        assert accuracy >= 0.9, (function, accuracy)


def test_train_registers_a_model_that_passes_the_scorecard(
    config: Config, trained: TrainResult
) -> None:
    assert (trained.name, trained.version, trained.validated) == ("loans", "1", True)
    assert trained.metrics["accuracy"] > 0.93 and trained.metrics["roc_auc"] > 0.9
    assert trained.metrics["training_duration_seconds"] > 0  # how long is a benchmark's business
    record = evaluate_version(
        project_of(config),
        ModelRef("loans", version="1"),
    )
    assert record.passed, record.failing
    primary = next(row for row in record.result["rows"] if row["kind"] == "primary")
    assert primary["candidate"] >= 0.95


def test_append_labelled_adds_numbered_batches(tmp_path: Path) -> None:
    small = create_workspace(tmp_path / "w", rows=400, golden_rows=20)
    live = LiveTraffic(300, switch_at=0, seed=3).to_frame()  # with request_id and concept
    first = small.append_labelled(live.head(100))
    second = small.append_labelled(live.tail(200))
    assert [first.name, second.name] == ["0001-batch.parquet", "0002-batch.parquet"]
    table = read_frame(small.train_folder)
    assert len(table) == 400 + 300
    assert list(table.columns) == list(read_frame(small.valid).columns)
    pd.testing.assert_frame_equal(
        table.tail(300).reset_index(drop=True),
        live.drop(columns=["request_id", "concept"]),
    )
    assert validate(table, load_schema(small.schema)).ok
    with pytest.raises(DataError, match="lack the columns"):
        small.append_labelled(live.drop(columns=[TARGET]))
    with pytest.raises(DataError, match="No labelled rows"):
        small.append_labelled(live.head(0))


def test_appends_are_never_seen_half_written(tmp_path: Path) -> None:
    small = create_workspace(tmp_path / "w", rows=400, golden_rows=20)
    batch = LiveTraffic(2000, switch_at=0, seed=4).to_frame()

    def append(part: int) -> None:
        for index in range(10):
            small.append_labelled(batch.iloc[(part * 10 + index) * 100 :][:100])

    writers = [threading.Thread(target=append, args=(part,)) for part in (0, 1)]
    for writer in writers:
        writer.start()
    # A reader of the folder's files meanwhile finds whole batches or none. Footers are
    # quick to read, so it looks ~100 times while the batches are written: with plain
    # to_parquet(path) about a quarter of those looks hit a half-written file.
    seen: list[int] = []
    while any(writer.is_alive() for writer in writers):
        _, files = data_files(small.train_folder)
        seen.append(sum(pq.read_metadata(file).num_rows for file in files))
    assert len(seen) > 10
    assert all((rows - 400) % 100 == 0 for rows in seen)
    assert len(read_frame(small.train_folder)) == 400 + 2000
    names = sorted(path.name for path in small.train_folder.iterdir())
    assert names == ["0000-initial.parquet"] + [f"{n:04d}-batch.parquet" for n in range(1, 21)]
