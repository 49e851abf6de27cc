"""The inference server: protocols, router, batcher, model loader, prediction log.

The ASGI app lives in :mod:`shipyard.serving.app` (imported on demand: it pulls in
Starlette); this package exports the building blocks.
"""

from shipyard.logs.writer import (
    LabelRecord,
    PredictionBatch,
    PredictionLogWriter,
    PredictionRecord,
)
from shipyard.serving.batcher import BatchSettings, MicroBatcher
from shipyard.serving.router import Decision, Route, Router, TrafficPlan

__all__ = [
    "BatchSettings",
    "Decision",
    "LabelRecord",
    "MicroBatcher",
    "PredictionBatch",
    "PredictionLogWriter",
    "PredictionRecord",
    "Route",
    "Router",
    "TrafficPlan",
]
