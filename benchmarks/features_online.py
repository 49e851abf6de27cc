"""The online store's numbers: lookup latency (SQLite, Redis) and materialisation memory.

    python benchmarks/features_online.py                        # lookups, both backends
    python benchmarks/features_online.py --lookups 50000
    python benchmarks/features_online.py materialize            # 10,000,000 rows
    python benchmarks/features_online.py materialize --rows 1000000 --keep /tmp/mat-bench

**Lookups** (the issue's targets): one entity, 10 float features, in process, through
``OnlineStore.read`` exactly as serving calls it: p99 ≤ 1 ms on SQLite, ≤ 2 ms on Redis
(the real one at 127.0.0.1:6379; skipped with a note when unreachable). Keys are drawn at
random from 10,000 stored entities; each timing is one ``read`` of one key.
:func:`online_lookup_table` returns the rows (``benchmarks/features.py`` prints them
beside the other feature-store numbers).

**Materialisation** (target: bounded memory, ≤ 1 GiB for 10M rows): a Parquet source of
``--rows`` rows (10 float features, a tenth as many entities, written in chunks so the
generator stays small) is applied and materialised into SQLite by
``shipyard.features.materialize`` in a fresh subprocess, whose peak RSS
(``resource.getrusage``) is the number reported.

Exits 1 when a target is missed. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEATURES = 10
ENTITIES = 10_000
TARGETS_MS = {"sqlite": 1.0, "redis": 2.0}
MEMORY_TARGET_MIB = 1024.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LookupRow:
    """One backend's lookup latency."""

    backend: str
    lookups: int
    p50_ms: float | None
    p99_ms: float | None
    target_p99_ms: float
    met: bool | None
    note: str = ""


def _view() -> Any:
    from shipyard.features.definitions import Feature, FeatureView, FileSource

    return FeatureView(
        "bench_stats",
        entities=("driver",),
        source=FileSource("bench.parquet"),
        features=tuple(Feature(f"f{i}", "float64") for i in range(FEATURES)),
        created_timestamp_column="created",
        ttl=timedelta(hours=2),
    )


def _batch(first: int, count: int) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(first)
    times = pa.array([T0] * count, pa.timestamp("us", tz="UTC"))
    columns: dict[str, Any] = {
        "driver_id": pa.array(np.arange(first, first + count, dtype="int64")),
        "event_timestamp": times,
        "created": times,
    }
    for i in range(FEATURES):
        columns[f"f{i}"] = pa.array(rng.random(count))
    return pa.record_batch(columns)


def _percentile(sorted_ns: list[int], share: float) -> float:
    index = min(len(sorted_ns) - 1, round(share * (len(sorted_ns) - 1)))
    return sorted_ns[index] / 1e6


def _time_lookups(store: Any, lookups: int) -> tuple[float, float]:
    view = _view()
    for first in range(0, ENTITIES, 5_000):
        store.write(view, ["driver_id"], _batch(first, min(5_000, ENTITIES - first)))
    keys = [(random.randrange(ENTITIES),) for _ in range(lookups)]
    for key in keys[:1000]:  # warm: connection, statement cache, pages
        store.read(view, [key])
    timings: list[int] = []
    clock = time.perf_counter_ns
    for key in keys:
        started = clock()
        row = store.read(view, [key])[0]
        timings.append(clock() - started)
        if row is None:
            raise AssertionError(f"key {key} was written but not found")
    timings.sort()
    return _percentile(timings, 0.50), _percentile(timings, 0.99)


def online_lookup_table(lookups: int = 20_000) -> list[LookupRow]:
    """p50/p99 of one-entity, 10-feature lookups on SQLite and on the real Redis."""
    from shipyard.features.online_redis import RedisOnlineStore
    from shipyard.features.online_sqlite import SqliteOnlineStore

    rows: list[LookupRow] = []
    folder = Path(tempfile.mkdtemp(prefix="online-bench-"))
    try:
        sqlite = SqliteOnlineStore(folder / "online.db")
        p50, p99 = _time_lookups(sqlite, lookups)
        sqlite.close()
        rows.append(LookupRow("sqlite", lookups, p50, p99, 1.0, p99 <= TARGETS_MS["sqlite"]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    import redis

    try:
        redis.Redis(socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        note = f"Redis at 127.0.0.1:6379 is unreachable: {exc}"
        return [*rows, LookupRow("redis", 0, None, None, TARGETS_MS["redis"], None, note)]
    store = RedisOnlineStore(
        "redis://127.0.0.1:6379/0", prefix=f"bench-online:{uuid.uuid4().hex}", timeout_seconds=2
    )
    try:
        p50, p99 = _time_lookups(store, lookups)
        rows.append(LookupRow("redis", lookups, p50, p99, 2.0, p99 <= TARGETS_MS["redis"]))
    finally:
        store.delete_prefix()
        store.close()
    return rows


def _print_lookups(rows: list[LookupRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        for row in rows:
            print("\t".join(str(value) for value in asdict(row).values()))
        return
    table = Table("backend", "lookups", "p50 ms", "p99 ms", "target p99", "met", "note")
    table.title = f"Online lookup, one entity, {FEATURES} features, in process"
    for row in rows:
        table.add_row(
            row.backend,
            f"{row.lookups:,}",
            "-" if row.p50_ms is None else f"{row.p50_ms:.3f}",
            "-" if row.p99_ms is None else f"{row.p99_ms:.3f}",
            f"{row.target_p99_ms:g} ms",
            {True: "yes", False: "NO", None: "-"}[row.met],
            row.note,
        )
    console.print(table)


# --- materialisation memory ----------------------------------------------------------


def _write_source(path: Path, rows: int, chunk: int = 500_000) -> None:
    """A Parquet source of ``rows`` rows written chunk by chunk (the generator stays small)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    entities = max(1, rows // 10)
    writer = None
    rng = np.random.default_rng(17)
    try:
        for first in range(0, rows, chunk):
            count = min(chunk, rows - first)
            seconds = rng.integers(0, 86_400 * 30, count)
            times = pa.array(
                (np.datetime64(T0.replace(tzinfo=None), "s") + seconds).astype("datetime64[us]")
            ).cast(pa.timestamp("us", tz="UTC"))
            columns: dict[str, Any] = {
                "driver_id": pa.array(rng.integers(0, entities, count)),
                "event_timestamp": times,
                "created": times,
            }
            for i in range(FEATURES):
                columns[f"f{i}"] = pa.array(rng.random(count))
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=100_000)
    finally:
        if writer is not None:
            writer.close()


def _bench_project(root: Path, rows: int) -> Path:
    import yaml

    (root / "data").mkdir(parents=True, exist_ok=True)
    _write_source(root / "data" / "bench.parquet", rows)
    document = {
        "project": "bench",
        "features": {
            "entities": [{"name": "driver", "join_keys": ["driver_id"]}],
            "views": [
                {
                    "name": "bench_stats",
                    "entities": ["driver"],
                    "source": {"path": "data/bench.parquet"},
                    "created_timestamp_column": "created",
                    "ttl": "2h",
                    "features": {f"f{i}": "float64" for i in range(FEATURES)},
                }
            ],
        },
    }
    (root / "shipyard.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return root


def _child(root: Path) -> None:
    """In a fresh process: apply and materialise, then report rows, seconds, peak RSS."""
    from shipyard.config import load_config
    from shipyard.features.materialize import materialize
    from shipyard.features.registry import apply
    from shipyard.project import Principal, Project

    project = Project(load_config(root / "shipyard.yaml", environ={}), Principal("bench", "cli"))
    apply(project)
    started = time.perf_counter()
    [result] = materialize(project)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "rows": result.rows,
                "written": result.written,
                "batches": result.batches,
                "seconds": seconds,
                "peak_rss_mib": peak_kib / 1024,
                "batch_rows": project.config.features.batch_rows,
            }
        )
    )
    project.close()


def materialize_memory(rows: int, keep: Path | None = None) -> dict[str, Any]:
    """Materialise a ``rows``-row source in a subprocess; its rows, time and peak RSS."""
    root = keep or Path(tempfile.mkdtemp(prefix="materialize-bench-"))
    try:
        _bench_project(root, rows)
        done = subprocess.run(
            [sys.executable, __file__, "_child", str(root)],
            capture_output=True,
            text=True,
            check=False,
            cwd=root,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the materialise run failed:\n{done.stderr}")
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        report["target_mib"] = MEMORY_TARGET_MIB
        report["met"] = report["peak_rss_mib"] <= MEMORY_TARGET_MIB
        return report
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the lookup benchmark (default) or the materialisation one; 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="lookup", choices=["lookup", "materialize"])
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the bench project here.")
    args = parser.parse_args(argv)
    if args.mode == "lookup":
        rows = online_lookup_table(args.lookups)
        _print_lookups(rows)
        return 1 if any(row.met is False for row in rows) else 0
    report = materialize_memory(args.rows, args.keep)
    print(
        f"materialised {report['rows']:,} rows ({report['written']:,} entities, "
        f"{report['batches']} batches of ≤ {report['batch_rows']:,}) in {report['seconds']:.1f} s; "
        f"peak RSS {report['peak_rss_mib']:.0f} MiB (target ≤ {report['target_mib']:.0f} MiB): "
        + ("met" if report["met"] else "MISSED")
    )
    return 0 if report["met"] else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_child":
        _child(Path(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
