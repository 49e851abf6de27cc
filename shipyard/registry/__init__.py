"""The model registry on MLflow: references, tracking, flavours, model cards, lineage.

Importing this package does not import MLflow; the functions that need it do.
"""

from shipyard.registry.environment import Environment, capture_environment
from shipyard.registry.git import GitState, git_state
from shipyard.registry.model_card import ModelCard
from shipyard.registry.refs import ModelRef, parse_ref
from shipyard.registry.tracking import Tracking, mlflow_errors
from shipyard.registry.views import (
    Lineage,
    ModelSummary,
    VersionDetail,
    get_version,
    lineage,
    list_models,
    show_version,
)

__all__ = [
    "Environment",
    "GitState",
    "Lineage",
    "ModelCard",
    "ModelRef",
    "ModelSummary",
    "Tracking",
    "VersionDetail",
    "capture_environment",
    "get_version",
    "git_state",
    "lineage",
    "list_models",
    "mlflow_errors",
    "parse_ref",
    "show_version",
]
