"""Projects with a prediction log and monitor runs, built fast, for the dashboard's data.

The log is written as Parquet the way the writer lays it out
(``<root>/predictions/model=<name>/date=YYYY-MM-DD/part-….parquet``, the prediction
log's schema with one numeric input), so DuckDB reads it exactly as it reads a served
model's. Monitor runs are stored as the monitor stores them (``save_monitor_run``).
Nothing here trains a model: combine with the ``two_versions`` fixture when a test
needs the registry.

    project = bare_project(tmp_path, "m00")
    rows = synthetic_rows(100_000, since, until, versions=("1", "2"), seed=1)
    write_prediction_log(project.config, "m00", rows)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from shipyard.config import Config, load_config
from shipyard.logs.records import prediction_schema
from shipyard.logs.root import project_log_root
from shipyard.logs.writer import write_log_file
from shipyard.project import Principal, Project
from shipyard.store.monitor_runs import save_monitor_run
from shipyard.store.tables import MonitorRunRow

__all__ = [
    "LogRows",
    "bare_project",
    "monitor_result",
    "save_run",
    "synthetic_rows",
    "write_prediction_log",
]

_INPUTS = pa.struct([pa.field("x", pa.float64())])


@dataclass
class LogRows:
    """Prediction-log rows as columns: times (UTC), versions, roles, latencies, statuses."""

    time: np.ndarray  # datetime64[us], UTC
    version: np.ndarray  # str
    role: np.ndarray  # "live" / "shadow"
    latency_ms: np.ndarray
    status: np.ndarray  # "ok" / "error"
    request_id: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))

    def __post_init__(self) -> None:
        if len(self.request_id) != len(self.time):
            self.request_id = np.array([f"r{i}" for i in range(len(self.time))], dtype=object)

    def __len__(self) -> int:
        return len(self.time)


def bare_project(
    root: Path, model: str = "m00", *, extra: str = "", actor: str = "tester"
) -> Project:
    """A fresh project folder (SQLite, local logs) with no model trained, acting as admin."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "shipyard.yaml").write_text(
        f"project: dashboard-data\nmodel:\n  name: {model}\n{extra}", encoding="utf-8"
    )
    config = load_config(root / "shipyard.yaml", environ={})
    return Project(config, Principal(actor, "test"))


def synthetic_rows(
    n: int,
    since: datetime,
    until: datetime,
    *,
    versions: tuple[str, ...] = ("1",),
    weights: tuple[float, ...] | None = None,
    shadow: str | None = None,
    error_rate: float = 0.01,
    seed: int = 0,
) -> LogRows:
    """``n`` rows at random times in ``[since, until)``: live rows split over ``versions``
    by ``weights``, plus a shadow copy of every tenth live row to ``shadow`` if given."""
    rng = np.random.default_rng(seed)
    start = np.datetime64(since.astimezone(UTC).replace(tzinfo=None), "us")
    span = int((until - since) / timedelta(microseconds=1))
    offsets = np.sort(rng.integers(0, span, size=n))
    times = start + offsets.astype("timedelta64[us]")
    chosen = rng.choice(np.array(versions, dtype=object), size=n, p=weights)
    roles = np.full(n, "live", dtype=object)
    latency = rng.lognormal(mean=1.5, sigma=0.5, size=n)
    status = np.where(rng.random(n) < error_rate, "error", "ok").astype(object)
    if shadow is not None:
        copy = np.arange(0, n, 10)
        times = np.concatenate([times, times[copy]])
        chosen = np.concatenate([chosen, np.full(len(copy), shadow, dtype=object)])
        roles = np.concatenate([roles, np.full(len(copy), "shadow", dtype=object)])
        latency = np.concatenate([latency, rng.lognormal(1.7, 0.5, size=len(copy))])
        status = np.concatenate([status, np.full(len(copy), "ok", dtype=object)])
    return LogRows(times, chosen, roles, latency, status)


def write_prediction_log(
    config: Config, model: str, rows: LogRows, *, rows_per_file: int = 250_000
) -> list[Path]:
    """Write ``rows`` as ``model``'s prediction log under the project's log root, one
    folder per UTC day, as the writer lays it out; returns the files written."""
    root = project_log_root(config)
    assert isinstance(root, Path), "a bucket log root needs the writer itself"
    folder = root / "predictions" / f"model={quote(model, safe='')}"
    days = rows.time.astype("datetime64[D]")
    written = []
    for day in np.unique(days):
        picked = np.flatnonzero(days == day)
        for start in range(0, len(picked), rows_per_file):
            chunk = picked[start : start + rows_per_file]
            written.append(write_log_file(folder / f"date={day}", _table(model, rows, chunk)))
    return written


def _table(model: str, rows: LogRows, index: np.ndarray) -> pa.Table:
    n = len(index)
    schema = prediction_schema(_INPUTS)
    inputs = pa.StructArray.from_arrays([pa.array(np.zeros(n))], fields=list(_INPUTS))
    return pa.Table.from_arrays(
        [
            pa.array(rows.request_id[index].tolist(), pa.string()),
            pa.array(rows.time[index], pa.timestamp("us", tz="UTC")),
            pa.array([model] * n, pa.string()),
            pa.array(rows.version[index].tolist(), pa.string()),
            pa.array(rows.role[index].tolist(), pa.string()),
            inputs,
            pa.array(["0"] * n, pa.string()),
            pa.array([None] * n, pa.list_(pa.float64())),
            pa.array(rows.latency_ms[index], pa.float64()),
            pa.array(rows.status[index].tolist(), pa.string()),
        ],
        schema=schema,
    )


def monitor_result(
    model: str,
    version: str,
    at: datetime,
    *,
    features: dict[str, float] | None = None,
    feature_retrain: float = 0.15,
    prediction: float | None = None,
    prediction_band: float = 0.1,
    realised: dict[str, float] | None = None,
    estimated: dict[str, float] | None = None,
    coverage: float | None = None,
    lag_p50: float | None = None,
    level: str = "ok",
    breaches: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A stored monitor result with the fields the monitor writes (``MonitorResult.to_dict``)."""
    bands = {
        "inspect": feature_retrain / 3,
        "retrain": feature_retrain,
        "pause": feature_retrain * 2,
    }
    result: dict[str, Any] = {
        "model": model,
        "version": version,
        "window": "24h",
        "rows": 1000,
        "created_at": at.isoformat(),
        "features": [
            {"feature": name, "score": score, "bands": bands, "method": "kl", "level": "ok"}
            for name, score in (features or {}).items()
        ],
        "level": level,
        "signals": [],
        "prediction": None,
        "performance": None,
        "estimated": None,
    }
    if prediction is not None:
        result["prediction"] = {
            "method": "wasserstein",
            "score": prediction,
            "bands": {
                "inspect": prediction_band,
                "retrain": 1.5 * prediction_band,
                "pause": 3 * prediction_band,
            },
            "level": "ok",
        }
    if realised is not None or coverage is not None:
        result["performance"] = {
            "metrics": realised or {},
            "labelled": 500,
            "coverage": coverage,
            "lag_seconds": {
                "n": 500,
                "p50": lag_p50,
                "p95": lag_p50,
                "max": lag_p50,
                "negative": 0,
            },
            "breaches": breaches or [],
        }
    if estimated is not None:
        result["estimated"] = {
            name: {
                "value": value,
                "low": value - 0.02,
                "high": value + 0.02,
                "standard_error": 0.01,
            }
            for name, value in estimated.items()
        }
    return result


def save_run(project: Project, result: dict[str, Any]) -> None:
    """Store ``result`` (from :func:`monitor_result`) as the monitor stores a run."""
    save_monitor_run(
        project.store,
        MonitorRunRow(
            model=result["model"],
            version=result["version"],
            window_spec=result["window"],
            rows=result["rows"],
            level=result["level"],
            result=result,
            created_at=datetime.fromisoformat(result["created_at"]),
        ),
    )
