"""Shared set-up for roll-out tests: a project with two versions, and logged requests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shipyard.config import Config, load_config
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.store import Store
from shipyard.training import train
from tests.support import project_of


def two_versions(project: Path) -> tuple[Config, Store, Tracking]:
    """The churn project trained twice (churn/1 champion, churn/2 the candidate)."""
    config = load_config(project / "shipyard.yaml", environ={})
    store, tracking = Store(config.db_url, actor="tester"), Tracking(config)
    train(project_of(config))
    train(project_of(config))
    move_alias(store, tracking.client, "churn", "champion", "1", action="promote")
    return config, store, tracking


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
