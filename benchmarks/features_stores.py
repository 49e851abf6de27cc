"""Online lookups and materialisation for the feature benchmark, with Shipyard's own stores.

- :func:`lookup_latencies`: one entity, all of a view's features, read ``lookups`` times
  from :class:`~shipyard.features.online_sqlite.SqliteOnlineStore` or
  :class:`~shipyard.features.online_redis.RedisOnlineStore` (in process, as serving
  reads them), after the rows were written with the store's own ``write``; p50 / p99.
- :func:`materialize_peak_rss`: ``shipyard features apply`` and then
  ``shipyard features materialize`` on a project over a large Parquet source, the
  latter in a fresh process whose children's peak RSS (``RUSAGE_CHILDREN``
  ``ru_maxrss``) is read, so nothing else is counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from features_data import INT_FEATURES, feature_names

from shipyard.features.definitions import Feature, FeatureView, FileSource

__all__ = [
    "bench_view",
    "lookup_latencies",
    "materialize_peak_rss",
    "online_batch",
    "project_yaml",
]

BIN = Path(sys.executable).parent


def bench_view(source: Path, features: int, ttl_hours: int = 2) -> FeatureView:
    """The benchmark's view ``stats`` of entity ``driver``, as Shipyard defines it."""
    from datetime import timedelta

    names = feature_names(features)
    return FeatureView(
        "stats",
        entities=("driver",),
        source=FileSource(str(source)),
        features=tuple(
            Feature(n, "int64" if i >= features - INT_FEATURES else "float64")
            for i, n in enumerate(names)
        ),
        created_timestamp_column="created",
        ttl=timedelta(hours=ttl_hours),
    )


def online_batch(view: FeatureView, entities: int) -> pa.RecordBatch:
    """``entities`` drivers' rows, event time now, for the online stores."""
    rng = np.random.default_rng(3)
    now = int(time.time() * 1e6)
    stamps = pa.array(np.full(entities, now), pa.timestamp("us", tz="UTC"))
    columns: dict[str, Any] = {
        "driver_id": np.arange(entities, dtype=np.int64),
        "event_timestamp": stamps,
        "created": stamps,
    }
    for feature in view.features:
        columns[feature.name] = (
            rng.integers(0, 1000, entities)
            if feature.dtype == "int64"
            else rng.normal(size=entities)
        )
    return pa.RecordBatch.from_pydict(columns)


def lookup_latencies(
    backend: str, view: FeatureView, folder: Path, *, entities: int, lookups: int, redis_url: str
) -> dict[str, float] | str:
    """p50 / p99 (ms) of one-entity reads, or why it could not be measured."""
    if backend == "sqlite":
        from shipyard.features.online_sqlite import SqliteOnlineStore

        store: Any = SqliteOnlineStore(folder / f"online-{uuid.uuid4().hex[:8]}.db")
    else:
        from shipyard.errors import FeatureStoreUnavailable
        from shipyard.features.online_redis import RedisOnlineStore

        store = RedisOnlineStore(redis_url, prefix=f"bench-features-{uuid.uuid4().hex[:10]}")
        try:
            store.read(view, [(0,)])
        except FeatureStoreUnavailable as exc:
            return f"Redis unreachable: {exc.message}"
    try:
        store.write(view, ["driver_id"], online_batch(view, entities))
        rng = np.random.default_rng(5)
        keys = [(int(k),) for k in rng.integers(0, entities, lookups)]
        for key in keys[: min(200, lookups)]:  # warm the connection and caches
            store.read(view, [key])
        took = np.empty(len(keys))
        misses = 0
        clock = time.perf_counter_ns
        for i, key in enumerate(keys):
            start = clock()
            found = store.read(view, [key])
            took[i] = clock() - start
            misses += found[0] is None
        if misses:
            return f"{misses} of {lookups} lookups found no row"
        return {
            "p50_ms": float(np.percentile(took, 50)) / 1e6,
            "p99_ms": float(np.percentile(took, 99)) / 1e6,
        }
    finally:
        if backend == "redis":
            store.delete_prefix()
        store.close()


def project_yaml(source: Path, features: int, batch_rows: int) -> str:
    """A project's ``shipyard.yaml`` declaring the view over ``source``."""
    import yaml

    names = feature_names(features)
    view = {
        "name": "stats",
        "entities": ["driver"],
        "source": {"path": str(source.resolve())},
        "timestamp_field": "event_timestamp",
        "created_timestamp_column": "created",
        "ttl": "2h",
        "features": {
            n: "int64" if i >= features - INT_FEATURES else "float64" for i, n in enumerate(names)
        },
    }
    document = {
        "project": "features-bench",
        "features": {
            "batch_rows": batch_rows,
            "entities": [{"name": "driver", "join_keys": ["driver_id"]}],
            "views": [view],
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


PEAK = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "seconds": time.perf_counter() - start,
    "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "stdout": done.stdout[-4000:], "stderr": done.stderr[-4000:]}))
"""


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_SECURITY__CREDENTIALS"] = str(folder / "credentials.json")
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def materialize_peak_rss(
    folder: Path, source: Path, features: int, batch_rows: int
) -> dict[str, Any]:
    """Apply and materialise a project over ``source``: peak RSS (MiB), seconds, rows."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "shipyard.yaml"
    config.write_text(project_yaml(source, features, batch_rows))
    shipyard = str(BIN / "shipyard")
    env = _env(folder)
    applied = subprocess.run(
        [shipyard, "--config", str(config), "features", "apply", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if applied.returncode != 0:
        raise SystemExit(f"features apply failed:\n{applied.stderr[-3000:]}")
    command = [shipyard, "--config", str(config), "features", "materialize", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command], capture_output=True, text=True, env=env, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    if found["rc"] != 0:
        raise SystemExit(f"features materialize failed:\n{found['stderr']}")
    return {
        "peak_rss_mib": found["maxrss_kib"] / 1024,
        "seconds": found["seconds"],
        "result": found["stdout"],
    }
