"""The journal behind the prediction log: durable hand-off, recovery, chunks, fsync."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from shipyard.logs.journal import frame, journal_root, segment_frames
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from tests.support import wait_for

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)

# A writer in its own process that journals `count` requests and is then killed -9: no
# close(), no roll (roll_seconds is an hour), nothing flushed by Python on the way out.
KILLED_WRITER = """
import os, signal, sys
from datetime import UTC, datetime
import numpy as np
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter

root, count = sys.argv[1], int(sys.argv[2])
writer = PredictionLogWriter(root, roll_rows=1_000_000, roll_seconds=3600)
writer.start()
for i in range(count):
    writer.log(PredictionBatch(
        request_id=f"r{i}", time=datetime(2024, 5, 17, 12, 0, tzinfo=UTC), model="churn",
        version="1", role="live", columns=("a", "plan"),
        matrix=np.array([[float(i), "basic"]], dtype=object), labels=np.array([i % 2]),
        probabilities=np.array([[0.5, 0.5]]), latency_ms=1.0, status="ok",
    ))
print("journaled", writer.written, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def batch(request_id: str, matrix: np.ndarray) -> PredictionBatch:
    rows = len(matrix)
    return PredictionBatch(
        request_id=request_id,
        time=NOW,
        model="churn",
        version="1",
        role="live",
        columns=tuple(f"c{j}" for j in range(matrix.shape[1])),
        matrix=matrix,
        labels=np.arange(rows) % 2,
        probabilities=np.tile([0.25, 0.75], (rows, 1)),
        latency_ms=float(rows),
        status="ok",
    )


def killed_writer(root: Path, count: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(root), str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    assert done.stdout.strip() == "journaled 0", done.stdout  # nothing rolled before the kill


def journals(root: Path) -> list[Path]:
    folder = journal_root(root, "predictions")
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_killed_writers_journal_is_recovered_exactly_once(tmp_path: Path) -> None:
    killed_writer(tmp_path, 500)
    (dead,) = journals(tmp_path)
    segment = sorted(dead.glob("seg-*.journal"))[-1]
    cut = frame(b'{"_type":"PredictionBatch","request_id":"cut"}', b"x" * 100)[:-10]
    with segment.open("ab") as file:  # a write the kill cut short: never answered
        file.write(cut)
    saved = tmp_path.parent / f"{tmp_path.name}-journal-copy"
    shutil.copytree(dead, saved)

    with PredictionLogWriter(tmp_path) as writer:  # the replacement worker
        wait_for(lambda: writer.recovered == 500, what="500 rows recovered")
    assert journals(tmp_path) == []
    ids = query_log(tmp_path, "churn").column("request_id").to_pylist()
    assert sorted(ids) == sorted(f"r{i}" for i in range(500))
    assert writer.dropped == 0

    # A recoverer killed after writing the Parquet files but before deleting the journal:
    # the next one rolls it again, into the same file names, so no row appears twice.
    shutil.copytree(saved, dead)
    with PredictionLogWriter(tmp_path) as again:
        wait_for(lambda: again.recovered == 500, what="the journal rolled a second time")
    table = query_log(
        tmp_path, "churn", sql="SELECT count(*) AS n, count(DISTINCT request_id) AS r FROM log"
    )
    assert table.to_pylist() == [{"n": 500, "r": 500}]
    row = query_log(tmp_path, "churn", sql="SELECT * FROM log WHERE request_id = 'r7'")
    assert row.column("inputs")[0].as_py() == {"a": 7.0, "plan": "basic"}


def test_a_live_writers_journal_is_never_taken(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, roll_seconds=3600) as live:
        live.log(batch("mine", np.ones((1, 2))))
        with PredictionLogWriter(tmp_path) as other:  # recovers on start: finds nothing dead
            other.flush()
            assert other.recovered == 0
        assert live.written == 0 and live.queue_depth == 1
    assert live.written == 1
    assert query_log(tmp_path, "churn").column("request_id").to_pylist() == ["mine"]


def test_a_request_of_255747_rows_is_logged_whole_in_chunks(tmp_path: Path) -> None:
    rows = 255_747
    matrix = np.column_stack([np.arange(rows, dtype=np.float64), np.full(rows, 0.5)])
    writer = PredictionLogWriter(tmp_path, roll_rows=100_000, roll_seconds=3600)
    assert writer.log(batch("big", matrix))
    (journal,) = journals(tmp_path)
    frames = [f for path in journal.glob("seg-*") for f in segment_frames(path)]
    assert len(frames) == 32  # 8,192 rows a frame
    writer.close()
    assert (writer.written, writer.dropped) == (rows, 0)
    table = query_log(
        tmp_path,
        "churn",
        sql="SELECT count(DISTINCT request_id) AS ids, min(inputs.c0) AS lo, max(inputs.c0) AS hi, "
        "sum(latency_ms) AS latency FROM log",
    )
    (found,) = table.to_pylist()
    assert (found["ids"], found["lo"], found["hi"]) == (rows, 0.0, rows - 1.0)
    assert abs(found["latency"] - rows) < 1e-3  # the request's latency, shared by its rows
    last = query_log(
        tmp_path, "churn", sql=f"SELECT * FROM log WHERE request_id = 'big:{rows - 1}'"
    )
    assert last.num_rows == 1
    assert all(pq.read_table(p).num_rows <= 100_000 for p in tmp_path.rglob("*.parquet"))


def test_fsync_every_write_at_zero_and_never_on_the_request_path_otherwise(
    tmp_path: Path,
) -> None:
    calls: list[int] = []
    every = PredictionLogWriter(tmp_path / "a", fsync_seconds=0, fsync=calls.append)
    for i in range(25):
        every.log(batch(str(i), np.ones((1, 2))))
    assert len(calls) == 25
    every.close()

    calls.clear()
    hourly = PredictionLogWriter(
        tmp_path / "b", fsync_seconds=3600, roll_rows=10, fsync=calls.append
    )
    hourly.start()
    for i in range(25):
        hourly.log(batch(str(i), np.ones((1, 2))))
    wait_for(lambda: hourly.written >= 10, what="a roll")  # the thread ran, and did not sync
    assert calls == []
    hourly.close()

    calls.clear()
    often = PredictionLogWriter(tmp_path / "c", fsync_seconds=0.01, fsync=calls.append)
    often.start()
    often.log(batch("x", np.ones((1, 2))))
    wait_for(lambda: calls, what="the thread to fsync the journal")
    count = len(calls)
    assert count == 1  # once per interval with writes, not once per interval
    often.close()
    assert query_log(tmp_path / "c", "churn").num_rows == 1


def test_a_journal_error_is_retried_and_nothing_is_lost_when_it_clears(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("in the way")
    writer = PredictionLogWriter(blocker, retry_seconds=600)
    writer.start()
    try:
        for i in range(5):
            assert writer.log(batch(str(i), np.ones((1, 2))))
        assert writer.health.retrying_rows == 5 and writer.failing
        blocker.unlink()  # the folder can be written again: the retry journals them
        wait_for(lambda: not writer.failing, what="the held rows journaled")
        assert writer.health.to_dict()["failing"] is False
    finally:
        writer.close()
    assert (writer.written, writer.dropped) == (5, 0)
    assert os.path.isdir(blocker)


def test_a_roll_of_mixed_requests_keeps_every_field(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path) as writer:
        writer.log(batch("a", np.array([[1.0, 2.0]])))
        failed = batch("b", np.array([[3.0, np.nan]]))
        writer.log(PredictionBatch(**{**_fields(failed), "labels": None, "probabilities": None}))
        writer.log(batch("c", np.array([[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]])))
        text = np.array([["x", 1], ["y", None]], dtype=object)
        writer.log(PredictionBatch(**{**_fields(batch("t", text)), "columns": ("name", "n")}))
    rows = {r["request_id"]: r for r in query_log(tmp_path, "churn").to_pylist()}
    assert set(rows) == {"a", "b", "c:0", "c:1", "c:2", "t:0", "t:1"}
    assert rows["a"]["probabilities"] == [0.25, 0.75] and rows["a"]["output"] == "0"
    assert rows["b"]["probabilities"] is None and rows["b"]["output"] == "null"
    assert {k: rows["c:2"]["inputs"][k] for k in ("c0", "c1")} == {"c0": 9.0, "c1": 10.0}
    assert rows["c:2"]["output"] == "0"
    assert rows["c:1"]["output"] == "1" and rows["c:1"]["latency_ms"] == 1.0  # 3 ms / 3 rows
    assert {k: rows["t:1"]["inputs"][k] for k in ("name", "n")} == {"name": "y", "n": None}
    assert all(row["time"] == NOW for row in rows.values())


def _fields(record: PredictionBatch) -> dict[str, object]:
    return {name: getattr(record, name) for name in PredictionBatch.__dataclass_fields__}
