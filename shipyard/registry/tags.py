"""Tag names Shipyard writes on MLflow runs and model versions."""

from __future__ import annotations

__all__ = [
    "ARCHIVED",
    "DATA_DIGEST",
    "DATA_SOURCE",
    "DVC_MD5",
    "DVC_PATH",
    "DVC_POINTER_MD5",
    "ENTRYPOINT",
    "ENV_DIGEST",
    "FEATURES",
    "GIT_COMMIT",
    "GIT_DIRTY",
    "MLFLOW_GIT_BRANCH",
    "MLFLOW_GIT_COMMIT",
    "MLFLOW_GIT_REPO_URL",
    "NOT_A_GIT_REPOSITORY",
    "PROJECT",
    "REFERENCE_DIGEST",
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
# The snapshot a version is monitored against when it is not its training data (set by
# `shipyard monitor reference set`, or taken from the run's logged dataset input).
REFERENCE_DIGEST = "shipyard.reference_digest"
DVC_MD5 = "shipyard.dvc_md5"
DVC_PATH = "shipyard.dvc_path"
# Set only when the .dvc pointer was stale: what it said (DVC_MD5 is then the file's own md5).
DVC_POINTER_MD5 = "shipyard.dvc_pointer_md5"
ENV_DIGEST = "shipyard.env_digest"
GIT_COMMIT = "shipyard.git_commit"
GIT_DIRTY = "shipyard.git_dirty"
# GIT_COMMIT's value when the project folder is not in a git repository.
NOT_A_GIT_REPOSITORY = "not a git repository"
SEED = "shipyard.seed"
TARGET = "shipyard.target"
TRIGGER = "shipyard.trigger"
TRAINED_BY = "shipyard.trained_by"
# The training set's lineage (JSON): features, columns, view versions, entity keys,
# request inputs, entity digest, mode. Serving reads it to look features up online.
FEATURES = "shipyard.features"
SCORECARD_PASSED = "shipyard.scorecard.passed"
SCORECARD_GOLDEN = "shipyard.scorecard.golden_digest"
ARCHIVED = "shipyard.archived"

# What plain MLflow records when it runs inside a git checkout.
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_GIT_BRANCH = "mlflow.source.git.branch"
MLFLOW_GIT_REPO_URL = "mlflow.source.git.repoURL"
