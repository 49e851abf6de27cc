"""The prediction and label logs: per-worker journal, Parquet roll, DuckDB reader.

The writer lives with the server that answers; the reader serves monitoring, guardrails
and the CLI. Neither imports those users, so they never import each other. Labels go
through a :class:`LabelBook` (conflicts checked on disk, provenance kept); PII-tagged
inputs are masked by a :class:`PiiPolicy` before any file is written, and pruned per tag
by :func:`prune_logs`.
"""

from shipyard.logs.label_book import LabelBook, LabelOutcome
from shipyard.logs.losses import LogCoverage, LossRecord, log_coverage, read_losses
from shipyard.logs.outcomes import OutcomeBook, OutcomeRecord  # and registers the kind
from shipyard.logs.pii import PiiPolicy, read_raw_pii
from shipyard.logs.prune import PruneReport, prune_logs, record_prune
from shipyard.logs.reader import join_labels, joined_coverage, query_log
from shipyard.logs.traces import TRACE_SCHEMA, TraceRecord  # and registers the kind
from shipyard.logs.writer import (
    LabelRecord,
    LogHealth,
    PredictionBatch,
    PredictionLogWriter,
    PredictionRecord,
    log_schema,
    model_dir,
)

__all__ = [
    "TRACE_SCHEMA",
    "LabelBook",
    "LabelOutcome",
    "LabelRecord",
    "LogCoverage",
    "LogHealth",
    "LossRecord",
    "OutcomeBook",
    "OutcomeRecord",
    "PiiPolicy",
    "PredictionBatch",
    "PredictionLogWriter",
    "PredictionRecord",
    "PruneReport",
    "TraceRecord",
    "join_labels",
    "joined_coverage",
    "log_coverage",
    "log_schema",
    "model_dir",
    "prune_logs",
    "query_log",
    "read_losses",
    "read_raw_pii",
    "record_prune",
]
