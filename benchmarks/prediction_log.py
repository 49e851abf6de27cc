"""The prediction log's cost on the request path, and how fast the journal rolls to Parquet.

    python benchmarks/prediction_log.py                  # 20,000 calls, 100,000-row roll
    python benchmarks/prediction_log.py --calls 50000 --roll-rows 200000

``log()`` of one single-row request of 30 float inputs (what the server logs per
request), timed call by call:

- **journal, fsync 1 s** (the default): one ``orjson.dumps`` and one ``os.write``;
- **journal, fsync 0**: the same and an ``fsync`` per call (a machine crash loses nothing);
- **in-memory queue (before)**: what ``log()`` did before the journal, a lock and a
  ``deque.append``; the Arrow conversion then happened in a thread sharing the GIL.

Then the roll: journaled requests read back, converted to Arrow and written as Parquet
(``close()`` of a writer whose thread never ran), against converting the same requests
straight from memory, as the queue did. Best of ``--repeat`` each; run it on an idle
machine. The figures of one run are in docs/prediction-log.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from shipyard.logs.kinds import log_kind
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter, write_log_file

COLUMNS = tuple(f"f{j}" for j in range(30))


class QueueLog:
    """``log()`` as it was before the journal: a bounded in-memory queue."""

    def __init__(self, max_queue: int = 100_000) -> None:
        self.max_queue = max_queue
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.dropped = 0

    def log(self, record: PredictionBatch) -> bool:
        rows = record.rows
        with self._lock:
            if self._queued + rows > self.max_queue:
                self.dropped += rows
                return False
            self._queue.append(record)
            self._queued += rows
        if self._queued >= 10_000 and not self._wake.is_set():
            self._wake.set()
        return True


def requests(count: int, seed: int = 0) -> list[PredictionBatch]:
    """``count`` single-row requests as the server logs them."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    return [
        PredictionBatch(
            request_id=f"bench-{i}",
            time=now,
            model="bench",
            version="1",
            role="live",
            columns=COLUMNS,
            matrix=rng.normal(size=(1, len(COLUMNS))),
            labels=np.array([i % 2]),
            probabilities=np.array([[0.3, 0.7]]),
            latency_ms=0.8,
            status="ok",
        )
        for i in range(count)
    ]


def per_call(log: Any, records: list[PredictionBatch]) -> tuple[float, float]:
    """Mean and p99 of one ``log()`` call, in microseconds."""
    times = np.empty(len(records))
    clock = time.perf_counter_ns
    for i, record in enumerate(records):
        start = clock()
        log(record)
        times[i] = clock() - start
    return float(times.mean() / 1000), float(np.percentile(times, 99) / 1000)


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return min(runs, key=lambda run: run[0])


def bench_log(calls: int, repeat: int, folder: Path) -> dict[str, tuple[float, float]]:
    records = requests(calls)
    results: dict[str, tuple[float, float]] = {}
    for name, fsync_seconds in (("journal, fsync 1 s", 1.0), ("journal, fsync 0", 0.0)):
        runs = []
        for attempt in range(repeat):
            root = folder / f"log-{fsync_seconds}-{attempt}"
            # No thread: the request path alone (the thread's fsync is off the path).
            writer = PredictionLogWriter(root, fsync_seconds=fsync_seconds, roll_seconds=3600)
            runs.append(per_call(writer.log, records))
            writer.close()
            shutil.rmtree(root)
        results[name] = best(runs)
    results["in-memory queue (before)"] = best(
        [per_call(QueueLog(max_queue=calls + 1).log, records) for _ in range(repeat)]
    )
    return results


def bench_roll(rows: int, repeat: int, folder: Path) -> dict[str, float]:
    """Rows a second: from the journal to Parquet, and from memory to Parquet."""
    records = requests(rows, seed=1)
    journal_runs, memory_runs = [], []
    predictions = log_kind("predictions")
    for attempt in range(repeat):
        root = folder / f"roll-{attempt}"
        writer = PredictionLogWriter(root, roll_rows=10_000, roll_seconds=3600)
        for record in records:
            writer.log(record)
        start = time.perf_counter()
        writer.close()  # reads the journal back, converts, writes, fsyncs
        journal_runs.append(rows / (time.perf_counter() - start))
        assert writer.written == rows, (writer.written, writer.dropped)
        shutil.rmtree(root)

        start = time.perf_counter()
        for begin in range(0, rows, 10_000):
            table = predictions.to_table(records[begin : begin + 10_000])
            write_log_file(folder / f"memory-{attempt}", table)
        memory_runs.append(rows / (time.perf_counter() - start))
        shutil.rmtree(folder / f"memory-{attempt}")
    return {
        "journal → Parquet (now)": max(journal_runs),
        "memory → Parquet (before)": max(memory_runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--roll-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="shipyard-log-bench-") as temporary:
        folder = Path(temporary)
        logged = bench_log(args.calls, args.repeat, folder)
        rolled = bench_roll(args.roll_rows, args.repeat, folder)
    table = Table(title=f"log() of a single-row request, 30 inputs ({args.calls:,} calls)")
    table.add_column("path")
    table.add_column("mean µs", justify="right")
    table.add_column("p99 µs", justify="right")
    for name, (mean, p99) in logged.items():
        table.add_row(name, f"{mean:.1f}", f"{p99:.1f}")
    console.print(table)
    roll = Table(title=f"Roll to Parquet ({args.roll_rows:,} single-row requests)")
    roll.add_column("path")
    roll.add_column("rows/s", justify="right")
    for name, rate in rolled.items():
        roll.add_row(name, f"{rate:,.0f}")
    console.print(roll)


if __name__ == "__main__":
    main()
