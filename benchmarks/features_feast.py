"""Feast's side of the feature benchmark, run in Feast's own venv (never imported by Shipyard).

:func:`feast_python` finds (or builds, with ``make .venv-feast/.installed``) the cached
venv; :func:`write_feast_repo` writes a Feast repo over the benchmark's Parquet source
(DuckDB offline store, SQLite online store); :func:`feast_pit` runs ``feast apply`` and
then, in one Feast process, ``get_historical_features(...).to_df()`` ``repeat`` times on
entity rows read before the clock starts, timing only those calls, and writes the last
result as Parquet for the row comparison; :func:`feast_online` times
``get_online_features`` for one entity on Feast's SQLite online store.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from features_data import feature_names

__all__ = ["ROOT", "feast_online", "feast_pit", "feast_python", "write_feast_repo"]

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-feast"

FEATURE_STORE_YAML = """\
project: bench
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""

DEFINITIONS = """\
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
stats = FeatureView(
    name="stats",
    entities=[driver],
    ttl=timedelta(seconds={ttl}),
    schema=[Field(name="driver_id", dtype=Int64), {fields}],
    source=FileSource(
        path={path!r}, timestamp_field="event_timestamp", created_timestamp_column="created"
    ),
)
"""

TIMED = """
import json, sys, time
import pandas as pd
from feast import FeatureStore

repo, entities_path, refs, out, repeat = sys.argv[1:6]
store = FeatureStore(repo_path=repo)
entities = pd.read_parquet(entities_path)
seconds = []
for _ in range(int(repeat)):
    start = time.perf_counter()
    frame = store.get_historical_features(entity_df=entities, features=refs.split(",")).to_df()
    seconds.append(time.perf_counter() - start)
frame.to_parquet(out, index=False)
print(json.dumps({"seconds": seconds, "rows": len(frame)}))
"""


ONLINE = """
import json, sys, time
import numpy as np
import pandas as pd
from feast import FeatureStore

repo, source, refs, lookups = sys.argv[1:5]
store = FeatureStore(repo_path=repo)
rows = pd.read_parquet(source)
store.write_to_online_store("stats", rows)
rng = np.random.default_rng(5)
keys = [int(k) for k in rng.integers(0, len(rows), int(lookups))]
features = refs.split(",")
for key in keys[:200]:
    store.get_online_features(features=features, entity_rows=[{"driver_id": key}]).to_dict()
took, missing = [], 0
for key in keys:
    start = time.perf_counter_ns()
    found = store.get_online_features(features=features, entity_rows=[{"driver_id": key}]).to_dict()
    took.append(time.perf_counter_ns() - start)
    missing += found[features[0].split(":")[1]][0] is None
print(json.dumps({"p50_ms": float(np.percentile(took, 50)) / 1e6,
                  "p99_ms": float(np.percentile(took, 99)) / 1e6, "missing": missing}))
"""


def feast_python(given: str | None) -> Path:
    """The Feast venv's python: ``given``, ``SHIPYARD_FEAST_PYTHON``, or the cached venv."""
    chosen = given or os.environ.get("SHIPYARD_FEAST_PYTHON")
    if chosen:
        return Path(chosen)
    if not (VENV / ".installed").exists():
        subprocess.run(["make", ".venv-feast/.installed"], cwd=ROOT, check=True)
    return VENV / "bin" / "python"


def write_feast_repo(repo: Path, source: Path, features: int, ttl_seconds: int) -> list[str]:
    """A Feast repo over ``source``; returns the feature refs (``stats:f0`` …)."""
    from features_data import INT_FEATURES

    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    names = feature_names(features)
    fields = ", ".join(
        f'Field(name="{n}", dtype={"Int64" if i >= features - INT_FEATURES else "Float64"})'
        for i, n in enumerate(names)
    )
    text = DEFINITIONS.format(ttl=ttl_seconds, fields=fields, path=str(source.resolve()))
    (repo / "definitions.py").write_text(text)
    return [f"stats:{n}" for n in names]


def _env() -> dict[str, str]:
    # Feast's telemetry off; nothing of Shipyard's settings leaks into it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["FEAST_USAGE"] = "False"
    return env


def feast_pit(
    python: Path, repo: Path, entities: Path, refs: list[str], out: Path, repeat: int
) -> dict[str, Any]:
    """``{"seconds": [...], "rows": n}`` of Feast's timed calls; the frame is in ``out``."""
    feast = str(python.parent / "feast")
    done = subprocess.run(
        [feast, "apply"], cwd=repo, capture_output=True, text=True, env=_env(), check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"feast apply failed:\n{done.stderr[-3000:]}")
    argv = [str(python), "-c", TIMED, str(repo), str(entities), ",".join(refs), str(out)]
    done = subprocess.run(
        [*argv, str(repeat)], cwd=repo, capture_output=True, text=True, env=_env(), check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"Feast's get_historical_features failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def feast_online(python: Path, repo: Path, source: Path, refs: list[str], lookups: int) -> Any:
    """p50 / p99 (ms) of Feast's ``get_online_features`` for one entity on its SQLite store.

    The rows of ``source`` are written with ``write_to_online_store`` after
    ``feast apply``; each lookup is one ``get_online_features(...).to_dict()`` call.
    """
    feast = str(python.parent / "feast")
    done = subprocess.run(
        [feast, "apply"], cwd=repo, capture_output=True, text=True, env=_env(), check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"feast apply failed:\n{done.stderr[-3000:]}")
    argv = [str(python), "-c", ONLINE, str(repo), str(source), ",".join(refs), str(lookups)]
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, env=_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"Feast's get_online_features failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
