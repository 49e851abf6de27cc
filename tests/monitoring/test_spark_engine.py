"""The Spark engine equals the DuckDB path on the same data.

One real local Spark session (``local[1]``, UI off, quiet logs) for the test session: Spark
reads the window's Parquet files, each partition summarises its Arrow batches with the
chunked engine's code, and the merged summary is scored. DuckDB reads the same files
into one frame that the detectors score in one pass. Skipped only when Java is missing
(Spark needs a JVM; ``.ci/run`` installs Java 17).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.config import BandSettings
from shipyard.monitoring import DETECTORS, DatasetDrift, DriftResult, Reference, detector
from shipyard.monitoring.chunk_scores import score_summary
from shipyard.monitoring.chunks import SummaryPlan
from shipyard.monitoring.engines import engine_feature_drift
from shipyard.monitoring.feature_drift import feature_drift

pytestmark = [
    pytest.mark.skipif(
        shutil.which("java") is None, reason="Java is missing: Spark needs a JVM (Java 17)"
    ),
    # PySpark 4.3 notes that it is not yet tested on pandas 3; these tests check the results.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

CASES = [(method, {}) for method in DETECTORS] + [
    (method, {"binning": "evidently"}) for method in ("psi", "kl", "jensenshannon")
]


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from shipyard.monitoring.spark_engine import local_session

    session = local_session(1, app="shipyard-tests")
    yield session
    session.stop()


def table(seed: int, rows: int, shift: float) -> pa.Table:
    rng = np.random.default_rng(seed)
    continuous = rng.normal(shift, 1.0, rows).round(3)
    continuous[rng.choice(rows, 3, replace=False)] = [np.nan, np.inf, -np.inf]
    letters = rng.choice(list("abcde" if shift else "abcd"), rows).astype(object)
    letters[rng.choice(rows, 2, replace=False)] = None
    return pa.table(
        {
            "continuous": continuous,
            "wide": rng.integers(0, 60 + int(shift * 20), rows),
            "small": rng.integers(0, 4 + int(shift > 0.5), rows),
            "flag": rng.random(rows) < 0.3 + shift / 4,
            "letters": pa.array(letters, pa.string()),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, list[str]]:
    """A reference frame and a drifted window written as three Parquet files."""
    folder = tmp_path_factory.mktemp("window")
    files = []
    for part in range(3):
        path = folder / f"part-{part}.parquet"
        pq.write_table(table(part + 1, 700, 0.8), path, row_group_size=256)
        files.append(str(path))
    return table(0, 2000, 0.0).to_pandas(), files


def duckdb_window(files: list[str]) -> pd.DataFrame:
    """The window as the DuckDB path reads it: every file, one frame."""
    listed = ", ".join(f"'{Path(f).as_posix()}'" for f in files)
    return duckdb.connect().execute(f"SELECT * FROM read_parquet([{listed}])").df()


def assert_same(single: DatasetDrift, other: DatasetDrift) -> None:
    assert other.skipped == single.skipped
    assert (other.features, other.drifted, other.share) == (
        single.features,
        single.drifted,
        single.share,
    )
    for want, got in zip(single.columns, other.columns, strict=True):
        for field in fields(DriftResult):
            a, b = getattr(want, field.name), getattr(got, field.name)
            if field.name in ("score", "p_value") and a is not None and b is not None:
                assert b == pytest.approx(a, rel=1e-9, abs=1e-12) or (math.isinf(a) and a == b)
            else:
                assert a == b, (want.feature, field.name, a, b)


def test_spark_summaries_score_like_duckdb_for_every_method(spark, data) -> None:
    from shipyard.monitoring.spark_engine import summarize_parquet

    reference, files = data
    detectors = [detector(method, **settings).fit(reference) for method, settings in CASES]
    summary = summarize_parquet(SummaryPlan.for_detectors(detectors), files, spark)
    window = duckdb_window(files)
    assert summary.rows == len(window) == 2100
    for fitted in detectors:
        assert_same(fitted.score(window), score_summary(fitted, summary))
    assert score_summary(detectors[1], summary).drifted  # PSI sees the shift


def test_monitoring_engine_spark_gives_feature_drifts_results(spark, data) -> None:
    reference_frame, files = data
    reference = Reference.from_frame(reference_frame)
    window = duckdb_window(files)
    overrides = {"wide": BandSettings(inspect=0.05, retrain=0.01, pause=0.001, method="ks")}
    want = feature_drift(reference, window, overrides)
    got = engine_feature_drift("spark", reference, window, overrides)
    assert [bands for _, bands in got] == [bands for _, bands in want]
    assert_same(
        DatasetDrift("features", tuple(r for r, _ in want), 0.5),
        DatasetDrift("features", tuple(r for r, _ in got), 0.5),
    )


def test_spark_summarises_the_prediction_logs_shape_with_its_filters(spark, data, tmp_path) -> None:
    """Log files hold the features in an ``inputs`` struct beside status and role."""
    from shipyard.monitoring.spark_engine import summarize_spark

    reference, _ = data
    features = table(9, 1200, 0.8)
    rng = np.random.default_rng(9)
    logged = pa.table(
        {
            "status": pa.array(rng.choice(["ok", "error"], 1200, p=[0.9, 0.1])),
            "role": pa.array(rng.choice(["live", "shadow"], 1200, p=[0.8, 0.2])),
            "inputs": pa.StructArray.from_arrays(
                [column.combine_chunks() for column in features.columns], features.column_names
            ),
        }
    )
    pq.write_table(logged, tmp_path / "log.parquet", row_group_size=300)
    fitted = detector("auto").fit(reference)
    rows = spark.read.parquet(str(tmp_path / "log.parquet"))
    window = rows.where("status = 'ok' AND role = 'live'").select("inputs.*")
    summary = summarize_spark(fitted, window)
    single = (
        duckdb.connect()
        .execute(
            f"SELECT unnest(inputs) FROM read_parquet('{(tmp_path / 'log.parquet').as_posix()}') "
            "WHERE status = 'ok' AND role = 'live'"
        )
        .df()
    )
    assert summary.rows == len(single) > 0
    assert_same(fitted.score(single), score_summary(fitted, summary))
