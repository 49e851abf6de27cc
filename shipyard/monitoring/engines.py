"""``monitoring.engine``: feature drift in one pass (DuckDB), from chunk summaries, or on Spark.

:func:`engine_feature_drift` is ``feature_drift`` with a choice of engine, for
``shipyard monitor run``; :class:`FeatureDriftPlan` fits ``feature_drift``'s detectors
once and gives the summary plan that serves them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from shipyard.errors import ConfigError
from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.chunk_plan import SummaryPlan
from shipyard.monitoring.chunk_scores import score_summary
from shipyard.monitoring.chunks import WindowSummary, summarize_batches
from shipyard.monitoring.feature_drift import (
    drift_groups,
    feature_drift,
    group_detector,
    levelled,
)
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.results import Bands, DriftResult

if TYPE_CHECKING:
    from shipyard.config import BandSettings

__all__ = ["ENGINES", "FeatureDriftPlan", "engine_feature_drift"]

ENGINES = ("duckdb", "chunked", "spark")
_DEFAULT_CHUNK_ROWS = 1 << 20


@dataclass(frozen=True, eq=False)
class FeatureDriftPlan:
    """``feature_drift``'s detectors for a window's columns, fitted once, and their plan.

    Group features by method and levels exactly as ``feature_drift`` does; summarise
    the window under :attr:`plan`, then :meth:`score` it.
    """

    groups: Sequence[tuple[DriftDetector, Bands | None]]
    plan: SummaryPlan
    order: Sequence[str]
    tested: Mapping[str, BandSettings]

    @classmethod
    def build(
        cls,
        reference: Reference,
        columns: Iterable[str],
        overrides: Mapping[str, BandSettings] | None = None,
    ) -> FeatureDriftPlan:
        """The detectors ``feature_drift`` would use on a window with ``columns``."""
        present = set(columns)
        groups, tested = drift_groups(reference, present, overrides)
        fitted = [
            (group_detector(method, bands, threshold, features).fit(reference), bands)
            for (method, bands, threshold), features in groups.items()
        ]
        plan = SummaryPlan.for_detectors(detector for detector, _ in fitted)
        order = [feature for feature in reference.columns if feature in present]
        return cls(fitted, plan, order, tested)

    def score(self, summary: WindowSummary) -> list[tuple[DriftResult, Bands | None]]:
        """``feature_drift``'s results, in reference column order, from a summary."""
        results: dict[str, tuple[DriftResult, Bands | None]] = {}
        for detector, bands in self.groups:
            for item in score_summary(detector, summary).columns:
                results[item.feature] = levelled(item, self.tested, bands)
        return [results[feature] for feature in self.order if feature in results]


def engine_feature_drift(
    engine: str,
    reference: Reference,
    window: pd.DataFrame,
    overrides: Mapping[str, BandSettings] | None = None,
    *,
    chunk_rows: int = _DEFAULT_CHUNK_ROWS,
) -> list[tuple[DriftResult, Bands | None]]:
    """``feature_drift`` on ``monitoring.engine``: ``duckdb`` (one pass), ``chunked``, ``spark``.

    The chunked engine summarises ``chunk_rows`` rows at a time; the Spark engine runs
    the same summary step on a local Spark session. All three give the same results.
    """
    if engine == "duckdb":
        return feature_drift(reference, window, overrides)
    if engine not in ENGINES:
        raise ConfigError(
            f"monitoring.engine {engine!r} is not an engine.",
            hint=f"Use one of: {', '.join(ENGINES)}.",
        )
    plan = FeatureDriftPlan.build(reference, [str(c) for c in window.columns], overrides)
    if engine == "chunked":
        summary = summarize_batches(plan.plan, _slices(window, chunk_rows))
    else:
        from shipyard.monitoring.spark_engine import local_session, summarize_pandas

        summary = summarize_pandas(plan.plan, window, local_session())
    return plan.score(summary)


def _slices(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, max(len(frame), 1), rows):
        yield frame.iloc[start : start + rows]
