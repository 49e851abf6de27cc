"""Detectors that compare histograms: PSI, KL divergence, Jensen–Shannon distance.

Numeric columns with more than 20 distinct reference values are binned; every other
column is compared value by value, with each value unseen in the reference in a bin of
its own (empty in the reference). ``binning="quantile"`` cuts ``bins`` equal-mass bins
from the reference at ``fit`` (outer bins open), so the reference histogram is built
once. ``binning="evidently"`` reproduces Evidently 0.7's ``get_binned_data``
(``legacy/calculations/stattests/utils.py``): Sturges' rule over the combined range of
reference and current, recomputed for each window (``bins`` is then unused, as in
Evidently).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from shipyard.levels import Level
from shipyard.monitoring import statistics as st
from shipyard.monitoring.base import DriftDetector, missing_values, out_of_range, result, unscored
from shipyard.monitoring.binning import (
    align_values,
    histograms,
    quantile_edges,
    reference_histogram,
    sturges_edges,
)
from shipyard.monitoring.reference import ColumnReference
from shipyard.monitoring.results import KL_BANDS, PSI_BANDS, Bands, DriftResult
from shipyard.monitoring.window import CurrentColumn

__all__ = ["Binning", "HistogramDetector", "JensenShannonDetector", "KLDetector", "PSIDetector"]

Binning = Literal["quantile", "evidently"]


class HistogramDetector(DriftDetector):
    """Base of the histogram detectors: bins numeric columns, counts discrete ones."""

    def __init__(
        self,
        *,
        bins: int = 10,
        binning: Binning = "quantile",
        columns: Sequence[str] | None = None,
        drift_share: float = 0.5,
    ) -> None:
        super().__init__(columns=columns, drift_share=drift_share)
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}")
        if binning not in ("quantile", "evidently"):
            raise ValueError(f"binning must be 'quantile' or 'evidently', got {binning!r}")
        self.bins = bins
        self.binning = binning

    @abstractmethod
    def _compare(self, reference: np.ndarray, current: np.ndarray) -> tuple[float, Level | None]:
        """Score two histograms of counts: ``(score, band)``."""

    def _fit_columns(self) -> None:
        self.edges_: dict[str, np.ndarray] = {}
        self.reference_histograms_: dict[str, np.ndarray] = {}
        if self.binning != "quantile":
            return
        for name in self.columns_:
            column = self.reference_[name]
            if not column.discrete:
                edges = quantile_edges(column.values, column.counts, self.bins)
                self.edges_[name] = edges
                self.reference_histograms_[name] = reference_histogram(
                    column.values, column.cumulative, edges
                )

    def _score(
        self, frame: pd.DataFrame, columns: Iterator[CurrentColumn]
    ) -> tuple[list[DriftResult], dict[str, str]]:
        # Binned columns are counted together in one vectorised pass: read them all.
        window = {current.name: current for current in columns}
        results: dict[str, DriftResult] = {}
        binned: list[str] = []
        for name, current in window.items():
            reference = self.reference_[name]
            note = missing_values(reference, current)
            if note:
                results[name] = unscored(self.method, reference, current, self.threshold, note)
            elif reference.discrete:
                results[name] = self._score_column(reference, current)
            else:
                binned.append(name)
        interiors = [self._interior(self.reference_[name], window[name]) for name in binned]
        counts = histograms([window[name].values for name in binned], interiors)
        for name, interior, current_counts in zip(binned, interiors, counts, strict=True):
            reference, current = self.reference_[name], window[name]
            reference_counts = self.reference_histograms_.get(name)
            if reference_counts is None:
                reference_counts = reference_histogram(
                    reference.values, reference.cumulative, interior
                )
            score, band = self._compare(reference_counts, current_counts)
            results[name] = result(
                self.method,
                reference,
                current,
                score=score,
                threshold=self.threshold,
                drifted=score >= self.threshold,
                band=band,
                kind="numeric",
                out_of_range=out_of_range(reference, current),
            )
        return [results[name] for name in window], {}

    def _score_column(self, reference: ColumnReference, current: CurrentColumn) -> DriftResult:
        """Compare a discrete column value by value."""
        aligned = align_values(reference.values, reference.counts, *current.distinct)
        score, band = self._compare(aligned.reference, aligned.current)
        return result(
            self.method,
            reference,
            current,
            score=score,
            threshold=self.threshold,
            drifted=score >= self.threshold,
            band=band,
            unseen=(aligned.unseen, aligned.unseen_rows),
        )

    def _interior(self, reference: ColumnReference, current: CurrentColumn) -> np.ndarray:
        if self.binning == "quantile":
            return self.edges_[reference.name]
        low = min(float(reference.values[0]), float(current.values.min()))
        high = max(float(reference.values[-1]), float(current.values.max()))
        return sturges_edges(reference.n + current.n, low, high)[1:-1]


class BandedHistogramDetector(HistogramDetector):
    """A histogram detector whose score falls in ``bands``; drift from ``bands.inspect`` up."""

    default_bands: ClassVar[Bands]

    def __init__(
        self,
        *,
        bands: Bands | None = None,
        bins: int = 10,
        binning: Binning = "quantile",
        columns: Sequence[str] | None = None,
        drift_share: float = 0.5,
    ) -> None:
        super().__init__(bins=bins, binning=binning, columns=columns, drift_share=drift_share)
        self.bands = self.default_bands if bands is None else bands

    @property
    def threshold(self) -> float:
        """The inspect band: scores from here up count as drift."""
        return self.bands.inspect

    @staticmethod
    @abstractmethod
    def statistic(reference: np.ndarray, current: np.ndarray) -> float:
        """The score of two histograms of counts."""

    def _compare(self, reference: np.ndarray, current: np.ndarray) -> tuple[float, Level | None]:
        score = self.statistic(reference, current)
        return score, self.bands.classify(score)


class PSIDetector(BandedHistogramDetector):
    """Population stability index; bands 0.10 / 0.25 / 0.40 by default (DESIGN.md)."""

    method = "psi"
    default_bands = PSI_BANDS

    @staticmethod
    def statistic(reference: np.ndarray, current: np.ndarray) -> float:
        """PSI of two histograms (``evidently .../stattests/psi.py``)."""
        return float(st.psi(reference, current))


class KLDetector(BandedHistogramDetector):
    """KL divergence KL(reference ‖ current); bands 0.05 / 0.15 / 0.30 by default (DESIGN.md)."""

    method = "kl"
    default_bands = KL_BANDS

    @staticmethod
    def statistic(reference: np.ndarray, current: np.ndarray) -> float:
        """KL divergence of two histograms (``evidently .../stattests/kl_div.py``)."""
        return float(st.kl_divergence(reference, current))


class JensenShannonDetector(HistogramDetector):
    """Jensen–Shannon distance (natural log); drift when ≥ ``threshold`` (0.1)."""

    method = "jensenshannon"

    def __init__(
        self,
        *,
        threshold: float = 0.1,
        bins: int = 10,
        binning: Binning = "quantile",
        columns: Sequence[str] | None = None,
        drift_share: float = 0.5,
    ) -> None:
        super().__init__(bins=bins, binning=binning, columns=columns, drift_share=drift_share)
        self._threshold = float(threshold)

    @property
    def threshold(self) -> float:
        """The distance at which a column counts as drifted."""
        return self._threshold

    def _compare(self, reference: np.ndarray, current: np.ndarray) -> tuple[float, Level | None]:
        return float(st.jensen_shannon_distance(reference, current)), None
