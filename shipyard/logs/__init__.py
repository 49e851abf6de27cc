"""The prediction and label logs: per-worker journal, Parquet roll, DuckDB reader.

The writer lives with the server that answers; the reader serves monitoring, guardrails
and the CLI. Neither imports those users, so they never import each other.
"""

from shipyard.logs.reader import join_labels, query_log
from shipyard.logs.writer import (
    LabelRecord,
    PredictionBatch,
    PredictionLogWriter,
    PredictionRecord,
    log_schema,
    model_dir,
)

__all__ = [
    "LabelRecord",
    "PredictionBatch",
    "PredictionLogWriter",
    "PredictionRecord",
    "join_labels",
    "log_schema",
    "model_dir",
    "query_log",
]
