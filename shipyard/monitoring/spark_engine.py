"""The chunk-summary step on Apache Spark, for windows larger than one machine holds.

Each Spark partition runs :func:`~shipyard.monitoring.chunks.summarize_batches` on its
Arrow batches (``mapInPandas``); the partitions' summaries merge column by column on
the executors (``reduceByKey``), and only the window's summary reaches the driver. The
numbers are the chunked engine's, computed by the same code, so the scores equal the
DuckDB path's on the same rows.

    spark = local_session()                               # or your cluster's session
    summary = summarize_parquet(detector, ["s3a://bucket/logs/*.parquet"], spark)
    drift = score_summary(detector, summary)

``pyspark`` is an optional extra (``pip install 'shipyard-mlops[spark]'``, plus Java 17); it
is imported only inside these functions.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from shipyard.errors import ConfigError
from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.chunks import (
    ColumnSummary,
    SummaryPlan,
    WindowSummary,
    as_plan,
    empty_summary,
    merge_columns,
    summarize_batches,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["local_session", "summarize_pandas", "summarize_parquet", "summarize_spark"]

_BATCH_ROWS = 1 << 18  # rows summarised at a time in a partition
_HINT = "Install the extra: pip install 'shipyard-mlops[spark]' (Spark also needs Java 17)."


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise ConfigError(f"The Spark engine needs pyspark: {exc}.", hint=_HINT) from None
    return pyspark


def local_session(
    cores: int = 1, *, app: str = "shipyard-drift", memory: str = "2g"
) -> SparkSession:
    """A local-mode Spark session (``local[cores]``) with the UI off and quiet logs.

    ``memory`` is the JVM heap (``spark.driver.memory``, which in local mode is also the
    executors'): a continuous column over a large reference carries about 16 bytes of
    cell counts and sums per reference value through it.

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
        .config("spark.driver.memory", memory)
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
        # One row per column (and one for the row count), so no Arrow batch or JVM row
        # holds more than one column's summary.
        total = summarize_batches(plan, _regrouped(batches, _BATCH_ROWS))
        yield pd.DataFrame({"column": [None], "summary": [_pack(total.rows)]})
        for name, column in total.columns.items():
            yield pd.DataFrame({"column": [name], "summary": [_pack(column)]})

    with _pandas_3_accepted():
        rows = frame.select(*names).mapInPandas(partition, schema="column string, summary binary")
        pairs = rows.rdd.map(lambda row: (row[0], _unpack(row[1])))
        merged = dict(pairs.reduceByKey(_merge_part).collect())  # merged per column on executors
    if not merged:  # a window without partitions
        return empty_summary(plan)
    columns = {name: merged[name] for name in names}
    return WindowSummary(plan.digest, int(merged[None]), columns)


def _regrouped(batches: Iterator[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Arrow's batches (10,000 rows by default) joined into frames of about ``rows`` rows.

    Each summary step costs the size of the reference's cells whatever the batch size,
    so small batches would pay it hundreds of times per partition.
    """
    pending: list[pd.DataFrame] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += len(batch)
        if size >= rows:
            yield pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            pending, size = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]


def _merge_part(a: ColumnSummary | int, b: ColumnSummary | int) -> ColumnSummary | int:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    assert isinstance(a, ColumnSummary) and isinstance(b, ColumnSummary)
    return merge_columns(a, b)


def _pack(part: ColumnSummary | int) -> bytes:
    """A partition's column summary on the wire between Python workers (never stored)."""
    return zlib.compress(pickle.dumps(part, protocol=5), 1)


def _unpack(data: bytes | bytearray) -> ColumnSummary | int:
    part: ColumnSummary | int = pickle.loads(zlib.decompress(data))
    return part


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
