"""The latency probe: in-process predict time on golden rows, at 1 row and at a batch size.

Each timed call is :func:`~shipyard.evaluation.predict` (``predict_proba`` for
classifiers that have it), after a few untimed warm-up calls that pay for lazy imports
and caches. The garbage collector is paused while timing, as :mod:`timeit` does, so a
collection triggered by someone else's garbage does not land in one sample.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.evaluation.predictions import predict

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.models.loading import LoadedModel

__all__ = ["LatencyMeasurement", "measure_latency", "time_calls"]

WARMUP_CALLS = 5
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True, eq=False)
class LatencyMeasurement:
    """Raw predict timings in milliseconds at 1 row (``single_ms``) and ``batch_size`` rows."""

    batch_size: int
    single_ms: np.ndarray
    batch_ms: np.ndarray

    def percentile(self, q: float, *, batch: bool = False) -> float:
        """The ``q``-th percentile (0–100) of the 1-row or batch timings, in ms."""
        return float(np.percentile(self.batch_ms if batch else self.single_ms, q))

    @property
    def p50_ms(self) -> float:
        """Median 1-row predict time."""
        return self.percentile(50)

    @property
    def p95_ms(self) -> float:
        """95th-percentile 1-row predict time."""
        return self.percentile(95)

    @property
    def p99_ms(self) -> float:
        """99th-percentile 1-row predict time."""
        return self.percentile(99)

    @property
    def batch_p99_ms(self) -> float:
        """99th-percentile predict time at ``batch_size`` rows."""
        return self.percentile(99, batch=True)

    def to_dict(self) -> dict[str, Any]:
        """Percentiles and sample counts (no raw samples)."""
        single = np.percentile(self.single_ms, PERCENTILES)
        batch = np.percentile(self.batch_ms, PERCENTILES)
        return {
            "batch_size": self.batch_size,
            "repeats": len(self.single_ms),
            "single_ms": {f"p{q}": float(v) for q, v in zip(PERCENTILES, single, strict=True)},
            "batch_ms": {f"p{q}": float(v) for q, v in zip(PERCENTILES, batch, strict=True)},
        }


def time_calls(
    call: Callable[[], object], repeats: int, *, warmup: int = WARMUP_CALLS
) -> np.ndarray:
    """Milliseconds taken by each of ``repeats`` calls of ``call``, after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    samples = np.empty(repeats, dtype=np.int64)
    collecting = gc.isenabled()
    gc.disable()
    try:
        clock = time.perf_counter_ns
        for i in range(repeats):
            started = clock()
            call()
            samples[i] = clock() - started
    finally:
        if collecting:
            gc.enable()
    return samples / 1e6


def measure_latency(
    loaded: LoadedModel, features: pd.DataFrame, *, batch_size: int, repeats: int
) -> LatencyMeasurement:
    """Time ``predict`` on the first row of ``features`` and on ``batch_size`` of its rows.

    A frame shorter than ``batch_size`` is repeated to make up the batch.
    """
    one = features.iloc[:1]
    batch = features.iloc[np.arange(batch_size) % len(features)]
    return LatencyMeasurement(
        batch_size=batch_size,
        single_ms=time_calls(lambda: predict(loaded, one), repeats),
        batch_ms=time_calls(lambda: predict(loaded, batch), repeats),
    )
