"""The prediction log: a background Parquet writer and its DuckDB query side."""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.errors import ConfigError, DataError
from shipyard.logs.losses import log_coverage, read_losses
from shipyard.logs.reader import join_labels, query_log
from shipyard.logs.writer import (
    LABEL_SCHEMA,
    PREDICTION_SCHEMA,
    LabelRecord,
    PredictionBatch,
    PredictionLogWriter,
    PredictionRecord,
    prediction_schema,
)
from tests.support import wait_for

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)


def prediction(
    request_id: str,
    *,
    model: str = "churn",
    version: str = "1",
    at: datetime = NOW,
    probabilities: list[float] | None = None,
    inputs: dict[str, object] | None = None,
) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        time=at,
        model=model,
        version=version,
        role="live",
        inputs=inputs if inputs is not None else {"age": 42, "plan": "pro"},
        output=1,
        probabilities=probabilities,
        latency_ms=3.5,
        status="ok",
    )


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


# --- writer -----------------------------------------------------------------------------


def test_concurrent_producers_lose_nothing(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, roll_rows=1_000)
    writer.start()

    def produce(thread: int) -> None:
        for i in range(2_500):
            assert writer.log(prediction(f"{thread}-{i}"))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()

    assert (writer.written, writer.dropped, writer.queue_depth) == (10_000, 0, 0)
    ids = query_log(tmp_path, "churn").column("request_id").to_pylist()
    assert len(ids) == 10_000
    assert set(ids) == {f"{t}-{i}" for t in range(4) for i in range(2_500)}


def test_rolls_a_file_every_roll_rows(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, roll_rows=100, roll_seconds=3600) as writer:
        for i in range(350):
            writer.log(prediction(str(i)))
        # roll_rows journaled rows wake the roll: no timer, no close needed.
        wait_for(lambda: writer.written >= 100, what="a roll of 100 rows")
    rows = sorted(pq.read_table(path).num_rows for path in parquet_files(tmp_path))
    assert sum(rows) == 350 and max(rows) <= 100


def test_rolls_a_file_after_roll_seconds_without_close(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, roll_rows=10_000, roll_seconds=0.2)
    writer.start()
    try:
        for i in range(5):
            writer.log(prediction(str(i)))
        wait_for(lambda: writer.written == 5, what="5 records written")
        assert len(parquet_files(tmp_path)) == 1
    finally:
        writer.close()


def test_no_record_is_dropped_for_room_even_without_the_thread(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, max_queue=100)  # thread never started
    # max_queue bounds only what waits in memory for a failing journal: the journal
    # takes everything, and log() never waits for room.
    assert all(writer.log(prediction(str(i))) for i in range(10_150))
    assert (writer.dropped, writer.queue_depth) == (0, 10_150)
    writer.close()
    assert writer.written == 10_150
    assert query_log(tmp_path, "churn").num_rows == 10_150


def test_flush_writes_everything_queued_before_it_returns(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, roll_seconds=60) as writer:
        for i in range(7):
            writer.log(prediction(str(i)))
        writer.flush()
        assert (writer.written, writer.queue_depth) == (7, 0)
        assert query_log(tmp_path, "churn").num_rows == 7


def test_close_is_idempotent_and_later_records_are_dropped(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path)
    writer.start()
    writer.log(prediction("a"))
    writer.close()
    writer.close()
    assert not writer.running
    assert writer.log(prediction("late")) is False
    assert (writer.written, writer.dropped) == (1, 1)


def test_an_unwritable_folder_is_retried_then_lost_counted_and_recorded(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log's parent directory should be")
    root = blocker / "logs"
    writer = PredictionLogWriter(root, roll_rows=10, roll_seconds=60, retry_seconds=0.2)
    writer.start()
    try:
        for i in range(10):
            assert writer.log(prediction(f"lost-{i}"))  # held for a retry, not lost yet
        assert writer.failing
        wait_for(lambda: writer.dropped == 10, what="10 records lost after their retries")
        assert isinstance(writer.last_error, OSError)
        health = writer.health
        assert health.failing and health.lost_rows == 10
        assert health.reason is not None and "journal" in health.reason
        assert writer.running

        blocker.unlink()  # the "disk" is back
        for i in range(10):
            writer.log(prediction(f"kept-{i}"))
        wait_for(lambda: writer.written == 10, what="10 records written")
        assert not writer.failing and writer.health.reason is None
        # The loss is on disk with its time and model, for the window's coverage.
        wait_for(lambda: read_losses(root, "churn"), what="the loss recorded beside the log")
    finally:
        writer.close()
    ids = query_log(root, "churn").column("request_id").to_pylist()
    assert sorted(ids) == sorted(f"kept-{i}" for i in range(10))
    (loss,) = read_losses(root, "churn")
    assert (loss.time, loss.model, loss.version, loss.rows) == (NOW, "churn", "1", 10)
    assert "Not a directory" in loss.reason or "File exists" in loss.reason
    day = (NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    coverage = log_coverage(root, "churn", 10, since=day[0], until=day[1], roles=["live"])
    assert (coverage.logged, coverage.lost, coverage.ratio) == (10, 10, 0.5)
    assert not coverage.enough(0.99)


def test_one_bad_record_does_not_sink_its_batch(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path) as writer:
        writer.log(prediction("good"))
        writer.log(prediction("bad", probabilities=["not", "numbers"]))  # type: ignore[list-item]
        assert writer.log("not a record") is False
    assert (writer.written, writer.dropped) == (1, 2)
    assert writer.last_error is not None


def test_unknown_kind_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="predictions"):
        PredictionLogWriter(tmp_path, kind="metrics")


# --- files ------------------------------------------------------------------------------


def test_partition_layout_names_and_column_types(tmp_path: Path) -> None:
    tomorrow = NOW + timedelta(days=1)
    with PredictionLogWriter(tmp_path) as writer:
        writer.log(prediction("a", probabilities=[0.25, 0.75]))
        writer.log(prediction("b", at=tomorrow))
        writer.log(prediction("c", model="fraud"))
    files = [path.relative_to(tmp_path) for path in parquet_files(tmp_path)]
    assert sorted(path.parent.as_posix() for path in files) == [
        "predictions/model=churn/date=2024-05-17",
        "predictions/model=churn/date=2024-05-18",
        "predictions/model=fraud/date=2024-05-17",
    ]
    for path in files:
        assert path.name.startswith("part-")
        assert f"-{os.getpid()}-" in path.name
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left behind"

    table = pq.read_table(tmp_path / files[0])
    inputs = pa.struct([("age", pa.int64()), ("plan", pa.string())])
    assert table.schema.equals(prediction_schema(inputs))
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    row = table.to_pylist()[0]
    assert row["inputs"] == {"age": 42, "plan": "pro"}
    assert json.loads(row["output"]) == 1
    assert row["probabilities"] == [0.25, 0.75]


def test_file_names_never_collide_between_writers(tmp_path: Path) -> None:
    writers = [PredictionLogWriter(tmp_path) for _ in range(3)]
    for n, writer in enumerate(writers):
        writer.log(prediction(str(n)))
    for writer in writers:
        writer.close()
    assert len(parquet_files(tmp_path)) == 3


def test_inputs_keep_their_types(tmp_path: Path) -> None:
    inputs = {"x": np.float32(1.5), "n": np.int64(3), "v": np.array([1, 2]), "gap": math.nan}
    with PredictionLogWriter(tmp_path) as writer:
        writer.log(prediction("a", inputs=inputs))
    stored = query_log(tmp_path, "churn").column("inputs")[0].as_py()
    assert {k: v for k, v in stored.items() if k != "gap"} == {"x": 1.5, "n": 3, "v": [1, 2]}
    assert math.isnan(stored["gap"])


def test_batches_become_one_row_per_input_row_with_typed_inputs(tmp_path: Path) -> None:
    matrix = np.array([[1.0, 2.0], [3.0, np.nan]])
    with PredictionLogWriter(tmp_path) as writer:
        writer.log(
            PredictionBatch(
                request_id="req",
                time=NOW,
                model="churn",
                version="3",
                role="live",
                columns=("a", "b"),
                matrix=matrix,
                labels=np.array([0, 1]),
                probabilities=np.array([[0.9, 0.1], [0.2, 0.8]]),
                latency_ms=4.0,
                status="ok",
            )
        )
        writer.log(prediction("single"))  # another layout: its own file, read together
        writer.log(
            PredictionBatch(
                "bad", NOW, "churn", "3", "shadow", ("a", "b"), matrix[:1], None, None, 1.0, "error"
            )
        )
    sql = (
        "SELECT request_id, inputs.a AS a, inputs.age AS age, output, probabilities, "
        "latency_ms, status FROM log ORDER BY request_id"
    )
    rows = query_log(tmp_path, "churn", sql=sql).to_pylist()
    assert [r["request_id"] for r in rows] == ["bad", "req:0", "req:1", "single"]
    assert [r["a"] for r in rows] == [1.0, 1.0, 3.0, None]
    assert rows[3]["age"] == 42 and rows[1]["age"] is None
    assert [json.loads(r["output"]) for r in rows] == [None, 0, 1, 1]
    assert rows[2]["probabilities"] == [0.2, 0.8] and rows[0]["probabilities"] is None
    assert rows[1]["latency_ms"] == 2.0 and rows[0]["status"] == "error"
    assert writer.written == 4


def test_label_log_schema(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, kind="labels") as writer:
        writer.log(LabelRecord("a", NOW, "churn", {"churned": True}))
    (path,) = parquet_files(tmp_path)
    assert path.relative_to(tmp_path).parts[:2] == ("labels", "model=churn")
    assert pq.read_table(path).schema.equals(LABEL_SCHEMA)


# --- query ------------------------------------------------------------------------------


@pytest.fixture
def log_root(tmp_path: Path) -> Path:
    with PredictionLogWriter(tmp_path) as writer:
        for day in range(3):
            for i in range(4):
                version = "1" if i < 3 else "2"
                at = NOW + timedelta(days=day, minutes=i)
                writer.log(prediction(f"d{day}-{i}", version=version, at=at))
        writer.log(prediction("other", model="fraud"))
    return tmp_path


def test_query_filters_by_model_and_since(log_root: Path) -> None:
    everything = query_log(log_root, "churn")
    assert everything.num_rows == 12
    assert everything.schema.names == PREDICTION_SCHEMA.names
    assert everything.column("time").to_pylist() == sorted(everything.column("time").to_pylist())

    since = NOW + timedelta(days=1, minutes=2)
    recent = query_log(log_root, "churn", since=since)
    assert recent.column("request_id").to_pylist() == [
        "d1-2",
        "d1-3",
        *(f"d2-{i}" for i in range(4)),
    ]
    naive = query_log(log_root, "churn", since=since.replace(tzinfo=None))
    assert naive.num_rows == 6
    assert query_log(log_root, "fraud").column("request_id").to_pylist() == ["other"]


def test_query_runs_sql_over_the_log_view(log_root: Path) -> None:
    counts = query_log(
        log_root,
        "churn",
        since=NOW + timedelta(days=1),
        sql="SELECT version, count(*) AS n FROM log GROUP BY 1 ORDER BY 1",
    )
    assert counts.to_pylist() == [{"version": "1", "n": 6}, {"version": "2", "n": 2}]
    ages = query_log(log_root, "churn", sql="SELECT DISTINCT inputs.age AS a FROM log")
    assert ages.to_pylist() == [{"a": 42}]


def test_bad_sql_is_a_data_error_naming_the_view(log_root: Path) -> None:
    with pytest.raises(DataError) as raised:
        query_log(log_root, "churn", sql="SELECT nope FROM log")
    message = str(raised.value)
    assert "nope" in message  # DuckDB's own words
    assert "`log`" in message
    assert "request_id" in message and "latency_ms" in message


def test_no_files_yet_is_an_empty_table_with_columns(tmp_path: Path) -> None:
    empty = query_log(tmp_path, "churn")
    assert empty.num_rows == 0
    assert empty.schema.names == PREDICTION_SCHEMA.names
    counted = query_log(tmp_path, "churn", sql="SELECT count(*) AS n FROM log")
    assert counted.to_pylist() == [{"n": 0}]
    assert query_log(tmp_path, "churn", kind="labels").schema.names == LABEL_SCHEMA.names


def test_join_labels_takes_the_latest_label(log_root: Path) -> None:
    with PredictionLogWriter(log_root, kind="labels") as labels:
        labels.log(LabelRecord("d2-0", NOW + timedelta(days=3), "churn", 0))
        labels.log(LabelRecord("d2-0", NOW + timedelta(days=4), "churn", 1))  # a correction
        labels.log(LabelRecord("d2-1", NOW + timedelta(days=3), "churn", 0))
        labels.log(LabelRecord("d2-0", NOW + timedelta(days=5), "fraud", 7))  # other model
    joined = join_labels(log_root, "churn", since=NOW + timedelta(days=2))
    assert joined.schema.names == [*PREDICTION_SCHEMA.names, "label", "label_time", "label_sender"]
    by_id = {row["request_id"]: row for row in joined.to_pylist()}
    assert len(by_id) == 4
    assert json.loads(by_id["d2-0"]["label"]) == 1
    assert by_id["d2-0"]["label_time"] == NOW + timedelta(days=4)
    assert json.loads(by_id["d2-1"]["label"]) == 0
    assert by_id["d2-2"]["label"] is None


def test_join_labels_without_any_labels(log_root: Path) -> None:
    joined = join_labels(log_root, "churn")
    assert joined.num_rows == 12
    assert joined.column("label").null_count == 12


def test_query_ignores_files_being_written(log_root: Path) -> None:
    first = parquet_files(log_root)[0]
    shutil.copy(first, first.parent / ".part-x.parquet.tmp")
    assert query_log(log_root, "churn").num_rows == 12
