"""Tag names Shipyard writes on MLflow runs and model versions."""

from __future__ import annotations

__all__ = [
    "ARCHIVED",
    "DATA_DIGEST",
    "DATA_SOURCE",
    "DVC_MD5",
    "DVC_PATH",
    "ENTRYPOINT",
    "ENV_DIGEST",
    "GIT_COMMIT",
    "GIT_DIRTY",
    "MLFLOW_GIT_COMMIT",
    "PROJECT",
    "SCORECARD_GOLDEN",
    "SCORECARD_PASSED",
    "SEED",
    "TARGET",
    "TRAINED_BY",
    "TRIGGER",
    "VALIDATION_DIGEST",
]

PROJECT = "shipyard.project"
ENTRYPOINT = "shipyard.entrypoint"
DATA_DIGEST = "shipyard.data_digest"
DATA_SOURCE = "shipyard.data_source"
VALIDATION_DIGEST = "shipyard.validation_digest"
DVC_MD5 = "shipyard.dvc_md5"
DVC_PATH = "shipyard.dvc_path"
ENV_DIGEST = "shipyard.env_digest"
GIT_COMMIT = "shipyard.git_commit"
GIT_DIRTY = "shipyard.git_dirty"
SEED = "shipyard.seed"
TARGET = "shipyard.target"
TRIGGER = "shipyard.trigger"
TRAINED_BY = "shipyard.trained_by"
SCORECARD_PASSED = "shipyard.scorecard.passed"
SCORECARD_GOLDEN = "shipyard.scorecard.golden_digest"
ARCHIVED = "shipyard.archived"

# What plain MLflow records when it runs inside a git checkout.
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
