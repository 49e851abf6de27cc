"""The chunk-summary step on Apache Spark, for windows larger than one machine holds.

Each Spark partition runs :func:`~shipyard.monitoring.chunks.summarize` on its Arrow
batches (``mapInPandas``) and merges them into one summary; the partition summaries
then merge in a tree on the executors (``treeReduce``), and only the window's summary
reaches the driver. The numbers are the chunked engine's, computed by the same code,
so the scores equal the DuckDB path's on the same rows.

    spark = local_session()                               # or your cluster's session
    summary = summarize_parquet(detector, ["s3a://bucket/logs/*.parquet"], spark)
    drift = score_summary(detector, summary)

``pyspark`` is an optional extra (``pip install 'shipyard[spark]'``, plus Java 17); it
is imported only inside these functions.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from shipyard.errors import ConfigError
from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.chunks import (
    SummaryPlan,
    WindowSummary,
    as_plan,
    dropped_values,
    empty_summary,
    merge_summaries,
    summarize,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["local_session", "summarize_pandas", "summarize_parquet", "summarize_spark"]

_HINT = "Install the extra: pip install 'shipyard[spark]' (Spark also needs Java 17)."


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise ConfigError(f"The Spark engine needs pyspark: {exc}.", hint=_HINT) from None
    return pyspark


def local_session(cores: int = 1, *, app: str = "shipyard-drift") -> SparkSession:
    """A local-mode Spark session (``local[cores]``) with the UI off and quiet logs.

    Python workers run this interpreter, so they import the same Shipyard. An active
    session is reused (``getOrCreate``).
    """
    _pyspark()
    from pyspark.sql import SparkSession

    # PySpark starts its Python workers with $PYSPARK_PYTHON (else "python3"), which
    # may be an interpreter without Shipyard; a user's own choice is kept.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def summarize_spark(
    fitted: SummaryPlan | DriftDetector | Iterable[DriftDetector], frame: DataFrame
) -> WindowSummary:
    """Summarise a Spark DataFrame holding the window's columns, partition by partition."""
    _pyspark()
    plan = as_plan(fitted)
    names = list(plan.columns)
    missing = [name for name in names if name not in frame.columns]
    if missing:
        from shipyard.errors import DataError

        raise DataError(
            f"The Spark window has no column {', '.join(map(repr, missing))}.",
            hint="Select the columns the detectors were fitted on.",
        )

    def partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        total = empty_summary(plan)
        for batch in batches:
            chunk = summarize(plan, batch, dropped=dropped_values(plan, total))
            total = merge_summaries(total, chunk)
        yield pd.DataFrame({"summary": [total.to_json().encode()]})

    with _pandas_3_accepted():
        summaries = frame.select(*names).mapInPandas(partition, schema="summary binary")
        parts = summaries.rdd.map(lambda row: WindowSummary.from_json(bytes(row[0])))
        if parts.getNumPartitions() == 0:
            return empty_summary(plan)
        return parts.treeReduce(merge_summaries, depth=2)


def summarize_parquet(
    fitted: SummaryPlan | DriftDetector | Iterable[DriftDetector],
    paths: Sequence[str],
    spark: SparkSession | None = None,
) -> WindowSummary:
    """Summarise the window held in Parquet files (local paths or ``s3a://`` URLs) on Spark."""
    if not paths:
        raise ConfigError("No Parquet files to summarise.", hint="Pass at least one path.")
    session = spark or local_session()
    return summarize_spark(fitted, session.read.parquet(*[str(path) for path in paths]))


def summarize_pandas(
    fitted: SummaryPlan | DriftDetector | Iterable[DriftDetector],
    frame: pd.DataFrame,
    spark: SparkSession | None = None,
) -> WindowSummary:
    """Summarise an in-memory window on Spark (for ``monitor run`` with ``engine: spark``)."""
    plan = as_plan(fitted)
    session = spark or local_session()
    with _pandas_3_accepted():
        spark_frame = session.createDataFrame(frame[list(plan.columns)])
    return summarize_spark(plan, spark_frame)


@contextmanager
def _pandas_3_accepted() -> Iterator[None]:
    """Silence PySpark's "does not yet fully support pandas >= 3" notice.

    The summary step only hands Spark plain columns and takes back bytes; the tests
    prove its results equal the DuckDB path's under the pandas installed.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "PySpark does not yet fully support pandas", FutureWarning
        )
        yield
