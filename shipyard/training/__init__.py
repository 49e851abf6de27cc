"""Training runs: the user's train(ctx) function run as a tracked, registered, reproducible run."""

from shipyard.training.context import TrainContext
from shipyard.training.entrypoint import load_entrypoint
from shipyard.training.params import parse_overrides
from shipyard.training.reproduce import MetricComparison, ReproduceReport, reproduce
from shipyard.training.runner import TrainResult, train

__all__ = [
    "MetricComparison",
    "ReproduceReport",
    "TrainContext",
    "TrainResult",
    "load_entrypoint",
    "parse_overrides",
    "reproduce",
    "train",
]
