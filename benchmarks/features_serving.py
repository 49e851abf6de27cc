"""Serving with online features against the same model sent its features, with ``wrk`` at c=16.

One project, one scikit-learn GradientBoostingClassifier trained twice on the same rows
(``f0 … f9`` of drivers 0–1,999, same target, same seed): ``bench-plain/1`` is trained
from a CSV and sent the 10 values in each request; ``bench-enriched/1`` from
``ctx.training_set(entities, "stats:*")``, so training gives its version the
``shipyard.features`` tag, each request sends only ``driver_id``, and the server's
enrich step reads the 10 values from the SQLite online store, filled by
``shipyard features materialize`` (10,000 drivers, rows 10 minutes old, ttl 2 h).
Both servers run at once (``shipyard serve``, one process each, prediction log on);
wrk runs alternate (plain, enriched, enriched, plain, …) so the machine's drift falls on
both alike. The server harness (``Server``, ``run_wrk``, the Lua reporter) is ``serving.py``'s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from features_data import INT_FEATURES, feature_names
from serving import BIN, ENV, Server, check_once, free_port, lua_script, run_wrk

__all__ = ["serving_comparison"]

TRAIN_PY = """
from sklearn.ensemble import GradientBoostingClassifier


def train_plain(ctx):
    X, y = ctx.features()
    return GradientBoostingClassifier(random_state=ctx.seed).fit(X, y)


def train_enriched(ctx):
    found = ctx.training_set("data/entities.parquet", "stats:*")
    X, y = found.inputs("target")
    return GradientBoostingClassifier(random_state=ctx.seed).fit(X, y)
"""
TRAIN_ROWS = 2_000
DRIVERS = 10_000
CONNECTIONS = 16


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in ENV.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_SECURITY__CREDENTIALS"] = str(folder / "credentials.json")
    return env


def _write_project(folder: Path, features: int) -> Path:
    """The view's source, the same rows as a CSV and as entity rows, train.py, shipyard.yaml."""
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(11)
    names = feature_names(features)
    ints = set(names[features - INT_FEATURES :])
    (folder / "data").mkdir(parents=True)
    now = time.time()
    stamp = pa.array(np.full(DRIVERS, int((now - 600) * 1e6)), pa.timestamp("us", tz="UTC"))
    source: dict[str, Any] = {
        "driver_id": np.arange(DRIVERS, dtype=np.int64),
        "event_timestamp": stamp,
        "created": stamp,
    }
    for n in names:
        source[n] = rng.integers(0, 1000, DRIVERS) if n in ints else rng.normal(size=DRIVERS)
    pq.write_table(pa.table(source), folder / "data" / "stats.parquet")
    target = (np.asarray(source[names[0]][:TRAIN_ROWS]) > 0).astype(np.int64)
    train = {n: np.asarray(source[n][:TRAIN_ROWS]) for n in names} | {"target": target}
    pacsv.write_csv(pa.table(train), folder / "data" / "train.csv")
    seen = pa.array(np.full(TRAIN_ROWS, int((now - 300) * 1e6)), pa.timestamp("us", tz="UTC"))
    entities = {"driver_id": np.arange(TRAIN_ROWS), "event_timestamp": seen, "target": target}
    pq.write_table(pa.table(entities), folder / "data" / "entities.parquet")
    (folder / "train.py").write_text(TRAIN_PY)
    document = {
        "project": "features-serving-bench",
        "model": {"name": "bench-plain"},
        "train": {"entrypoint": "train:train_plain", "data": "data/train.csv", "target": "target"},
        "features": {
            "entities": [{"name": "driver", "join_keys": ["driver_id"]}],
            "views": [
                {
                    "name": "stats",
                    "entities": ["driver"],
                    "source": {"path": "data/stats.parquet"},
                    "created_timestamp_column": "created",
                    "ttl": "2h",
                    "features": {n: "int64" if n in ints else "float64" for n in names},
                }
            ],
        },
    }
    config = folder / "shipyard.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def _cli(folder: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "shipyard"), *argv],
        cwd=folder,
        env={**_env(folder), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"shipyard {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _start(folder: Path, model: str, logs: Path) -> tuple[Server, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(BIN / "shipyard"), "serve", f"{model}/1", "--port", str(port)]
    server = Server(command, folder, _env(folder), logs / f"{model}.log")
    server.wait_ready(f"{base}/v2/health/ready")
    return server, f"{base}/v1/models/{model}:predict"


def serving_comparison(
    folder: Path, features: int, *, duration: int, smoke: bool
) -> dict[str, float] | str:
    """Mean req/s and p99 of each side, or why it could not be measured."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install wrk)"
    _write_project(folder, features)
    _cli(folder, "features", "apply")
    _cli(folder, "train")
    enriched = {
        "SHIPYARD_MODEL__NAME": "bench-enriched",
        "SHIPYARD_TRAIN__ENTRYPOINT": "train:train_enriched",
        "SHIPYARD_TRAIN__DATA": "null",  # the training set is the run's data
    }
    _cli(folder, "train", env=enriched)
    _cli(folder, "features", "materialize")
    rng = np.random.default_rng(2)
    names = feature_names(features)
    ints = set(names[features - INT_FEATURES :])
    row = {n: int(rng.integers(0, 1000)) if n in ints else float(rng.normal()) for n in names}
    bodies = {
        "plain": json.dumps({"instances": [row]}),
        "enriched": json.dumps({"instances": [{"driver_id": 42}]}),
    }
    logs = folder / "logs"
    logs.mkdir()
    servers: dict[str, tuple[Server, str]] = {}
    results: dict[str, list[dict[str, Any]]] = {"plain": [], "enriched": []}
    try:
        for side, model in (("plain", "bench-plain"), ("enriched", "bench-enriched")):
            servers[side] = _start(folder, model, logs)
        for side, (_, url) in servers.items():
            check_once(url, bodies[side])
            lua = folder / f"{side}.lua"
            lua.write_text(lua_script(bodies[side]))
            run_wrk(url, lua, CONNECTIONS, 1 if smoke else 2, folder)  # warm-up
        order = ["plain", "enriched"] if smoke else ["plain", "enriched", "enriched", "plain"] * 2
        for side in order:
            url = servers[side][1]
            results[side].append(
                run_wrk(url, folder / f"{side}.lua", CONNECTIONS, duration, folder)
            )
    finally:
        for server, _ in servers.values():
            server.stop()
    out: dict[str, float] = {}
    for side, runs in results.items():
        errors = sum(r["status"] + r["socket"] for r in runs)
        if errors:
            return f"{errors} failed requests on the {side} server; see {logs}"
        out[f"{side}_rps"] = float(
            np.mean([r["requests"] / (r["duration_us"] / 1e6) for r in runs])
        )
        out[f"{side}_p99_ms"] = float(np.mean([r["p99"] / 1000 for r in runs]))
    return out
