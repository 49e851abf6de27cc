"""Business KPIs over a million logged predictions: how long ``evaluate_kpis`` takes.

    python benchmarks/kpis.py                       # 1,000,000 predictions, half labelled
    python benchmarks/kpis.py --rows 200000 --keep /tmp/kpi-bench

Builds a copy of the churn example whose prediction and label logs hold ``--rows``
predictions over 24 hours (Parquet files in the log's own layout, two versions with
churn/1 the recorded champion), and two KPIs: one joined by request id (a Parquet
file with a value for every prediction) and one by time (a CSV of 1,440 minutes).
Prints the best of ``--repeat`` timings of :func:`shipyard.monitoring.evaluate_kpis`
(both KPIs, their per-arm series, quality per bucket and the correlations) as JSON.
Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipyard.config import KpiSettings, load_config
from shipyard.logs.records import LABEL_SCHEMA, prediction_schema
from shipyard.logs.root import project_log_root
from shipyard.monitoring import evaluate_kpis
from shipyard.project import Principal, Project

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "churn"
START = datetime(2026, 11, 2, tzinfo=UTC)


def build(folder: Path, rows: int, seed: int = 0) -> Project:
    """A churn project whose logs hold ``rows`` predictions over a day, half labelled."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".shipyard"))
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, 86_400, rows))
    stamp = pa.timestamp("us", tz="UTC")
    times = pa.array([START + timedelta(seconds=float(s)) for s in seconds], stamp)
    ids = [f"r{i}" for i in range(rows)]
    versions = np.where(rng.random(rows) < 0.9, "1", "2")
    predicted = rng.integers(0, 2, rows)
    truth = np.where(rng.random(rows) < 0.8, predicted, 1 - predicted)
    p_one = np.clip(predicted * 0.6 + rng.uniform(0.1, 0.3, rows), 0, 1)
    config = load_config(folder / "shipyard.yaml", environ={})
    root = project_log_root(config)
    inputs = pa.StructArray.from_arrays([pa.array(rng.normal(size=rows))], names=["x"])
    table = pa.table(
        {
            "request_id": ids,
            "time": times,
            "model": ["churn"] * rows,
            "version": versions.tolist(),
            "role": ["live"] * rows,
            "inputs": inputs,
            "output": [str(int(v)) for v in predicted],
            "probabilities": [[1 - p, p] for p in p_one.tolist()],
            "latency_ms": rng.uniform(1, 5, rows),
            "status": ["ok"] * rows,
        },
        schema=prediction_schema(inputs.type),
    )
    day = root / "predictions" / "model=churn" / f"date={START.date().isoformat()}"
    day.mkdir(parents=True)
    pq.write_table(table, day / "part-bench.parquet")
    labelled = rng.random(rows) < 0.5
    label_rows = int(labelled.sum())
    label_times = table["time"].filter(pa.array(labelled))
    labels = pa.table(
        {
            "request_id": [i for i, keep in zip(ids, labelled, strict=True) if keep],
            "time": label_times,
            "model": ["churn"] * label_rows,
            "label": [str(int(v)) for v in truth[labelled]],
            "sender": ["bench"] * label_rows,
            "token_id": [None] * label_rows,
            "received_at": label_times,
        },
        schema=LABEL_SCHEMA,
    )
    label_day = root / "labels" / "model=churn" / f"date={START.date().isoformat()}"
    label_day.mkdir(parents=True)
    pq.write_table(labels, label_day / "part-bench.parquet")
    value = np.where(predicted == truth, rng.uniform(20, 40, rows), rng.uniform(0, 20, rows))
    pq.write_table(pa.table({"request_id": ids, "value": value}), folder / "orders.parquet")
    minutes = [START + timedelta(minutes=m) for m in range(1440)]
    pacsv.write_csv(
        pa.table({"minute": minutes, "signups": rng.poisson(30, 1440)}), folder / "signups.csv"
    )
    kpis = [
        KpiSettings(
            name="basket",
            sql="SELECT request_id, value FROM read_parquet('orders.parquet')",
            timeout_seconds=60,
        ),
        KpiSettings(
            name="signups",
            sql="SELECT minute AS time, signups AS value FROM read_csv('signups.csv')",
            join="time",
            timeout_seconds=60,
        ),
    ]
    project = Project(config.model_copy(update={"kpis": kpis}), Principal("bench", "cli"))
    return project


def main() -> None:
    """Build the project, time evaluate_kpis, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="kpi-bench-"))
    try:
        started = time.perf_counter()
        project = build(base / "churn", args.rows)
        built = time.perf_counter() - started
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            results = evaluate_kpis(project, "churn", START, START + timedelta(days=1))
            timings.append(time.perf_counter() - started)
        errors = [r.error for r in results if r.error]
        print(
            json.dumps(
                {
                    "predictions": args.rows,
                    "build_seconds": round(built, 2),
                    "evaluate_kpis_seconds": round(min(timings), 3),
                    "timings": [round(t, 3) for t in timings],
                    "kpis": {
                        r.name: {"points": len(r.points), "matched": r.matched, "r": r.correlation}
                        for r in results
                    },
                    "errors": errors,
                }
            )
        )
        project.close()
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
