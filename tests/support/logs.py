"""Prediction-log rows written as a server would have logged them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from shipyard.config import Config
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter

__all__ = ["log_requests"]


def log_requests(config: Config, version: str, latencies_ms: np.ndarray, prefix: str) -> None:
    """Write what a server would have logged: one single-row request per latency."""
    with PredictionLogWriter(config.resolve(config.serving.logs)) as writer:
        for i, latency in enumerate(latencies_ms):
            writer.log(
                PredictionBatch(
                    request_id=f"{prefix}{i}",
                    time=datetime.now(UTC),
                    model="churn",
                    version=version,
                    role="live",
                    columns=("x",),
                    matrix=np.array([[float(i)]]),
                    labels=np.array([0]),
                    probabilities=None,
                    latency_ms=float(latency),
                    status="ok",
                )
            )
