"""Prediction drift: the model's outputs now against its outputs on the reference set.

    band = PredictionDriftBand(window_size=5000).fit(validation_scores)   # once per model
    store(band.to_dict())
    result = PredictionDriftBand.from_dict(stored).score(window_scores)
    result.score, result.bands, result.level        # Wasserstein; band / 1.5 × / 3 ×

The score is the first Wasserstein distance between the reference outputs and the
window's, in the outputs' own units (probability, or the regression target's unit). A
1-D array is one output per row: the positive-class probability of a binary classifier
or a regressor's value. A ``(rows, classes)`` probability matrix is scored class by
class and the distances averaged, so the score stays in probability units and a binary
matrix scores exactly as its positive column; a shift of mass between two classes shows
even when the top probability (``max`` per row) keeps its distribution.

The per-model band is the ``quantile`` (0.99) of the distances between the reference
and ``n_boot`` bootstrap resamples of it of ``window_size`` rows. A resample is drawn
from the reference itself, while a live window is a fresh sample compared with a
reference that is also just a sample, so the raw quantile is too tight (false alarms
above the nominal rate, the more so the smaller the reference). Both statistics, scaled
by ``sqrt(m)`` and ``sqrt(n m / (n + m))`` respectively, tend to the same limit
(∫|B(F(x))| dx for a Brownian bridge B), so the quantile is multiplied by
``sqrt(1 + m / n)``; a window of another size ``c`` gets the band scaled by
``sqrt((1/c + 1/n) / (1/m + 1/n))`` by the same argument. Levels follow DESIGN.md:
inspect = band, retrain = 1.5 × band, pause = 3 × band.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from shipyard.errors import DataError
from shipyard.jsonable import Record
from shipyard.levels import Level
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.results import Bands
from shipyard.monitoring.statistics import wasserstein_distance

__all__ = ["PredictionDriftBand", "PredictionDriftResult", "bootstrap_distances"]

# Bootstrap index arrays built at once stay below this many elements.
_CHUNK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class PredictionDriftResult(Record):
    """Wasserstein distance of a window's outputs from the reference's, and its level.

    ``band`` is the inspect level for a window of ``n_current`` rows; ``dropped`` counts
    window rows left out for a non-finite output.
    """

    score: float
    band: float
    bands: Bands
    level: Level
    n_reference: int
    n_current: int
    window_size: int
    dropped: int = 0
    method: str = "wasserstein"


class PredictionDriftBand:
    """A per-model Wasserstein band on the model's outputs, calibrated by bootstrap.

    Settings are stored by ``__init__``; :meth:`fit` learns ``reference_`` (the
    outputs, as a :class:`Reference` with one column per output), ``n_reference_``,
    ``outputs_`` (0 for 1-D scores, else the number of columns), ``bootstrap_quantile_``
    (the raw quantile) and ``band_`` (the inspect level for ``window_size`` rows).
    """

    method = "wasserstein"

    def __init__(
        self,
        window_size: int,
        *,
        n_boot: int = 1000,
        quantile: float = 0.99,
        retrain_factor: float = 1.5,
        pause_factor: float = 3.0,
        seed: int | None = 0,
    ) -> None:
        if window_size < 1:
            raise ValueError(f"window_size must be at least 1, got {window_size}")
        if not 0 < quantile < 1:
            raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
        if n_boot * (1 - quantile) < 5:
            raise ValueError(
                f"n_boot={n_boot} leaves fewer than 5 resamples above the {quantile} quantile; "
                f"use at least {math.ceil(round(5 / (1 - quantile), 6))}."
            )
        if not 1 <= retrain_factor <= pause_factor:
            raise ValueError("factors must satisfy 1 ≤ retrain_factor ≤ pause_factor")
        self.window_size = int(window_size)
        self.n_boot = int(n_boot)
        self.quantile = float(quantile)
        self.retrain_factor = float(retrain_factor)
        self.pause_factor = float(pause_factor)
        self.seed = seed

    def fit(self, reference_scores: ArrayLike) -> Self:
        """Bootstrap the band from the reference outputs; returns ``self``."""
        matrix, outputs, _ = _outputs(reference_scores, "reference")
        n = len(matrix)
        if n < 2:
            raise DataError(
                f"The reference has {n} finite outputs; a band needs at least 2.",
                hint="Score the model on its validation or golden set first.",
            )
        distances = bootstrap_distances(
            matrix, self.window_size, n_boot=self.n_boot, seed=self.seed
        )
        self.outputs_ = outputs
        self.n_reference_ = n
        self.bootstrap_quantile_ = float(np.quantile(distances, self.quantile))
        self.band_ = self.bootstrap_quantile_ * math.sqrt(1.0 + self.window_size / n)
        columns = {str(k): matrix[:, k] for k in range(matrix.shape[1])}
        self.reference_ = Reference.from_frame(columns)
        return self

    def bands_for(self, n_current: int) -> Bands:
        """Inspect / retrain / pause levels for a window of ``n_current`` rows."""
        self._check_fitted()
        n = self.n_reference_
        scale = math.sqrt((1.0 / n_current + 1.0 / n) / (1.0 / self.window_size + 1.0 / n))
        band = self.band_ * scale
        return Bands(band, self.retrain_factor * band, self.pause_factor * band)

    def score(self, current_scores: ArrayLike) -> PredictionDriftResult:
        """Distance of the window's outputs from the reference's, with its level."""
        self._check_fitted()
        matrix, outputs, dropped = _outputs(current_scores, "current window")
        if outputs != self.outputs_:
            raise DataError(
                f"The window has {_describe(outputs)} but the band was fitted on "
                f"{_describe(self.outputs_)}.",
                hint="Score the same kind of output (1-D scores or the probability matrix).",
            )
        if len(matrix) == 0:
            raise DataError(
                "The current window has no finite outputs.",
                hint="Check the prediction log: every output is NaN or infinite.",
            )
        columns = self.reference_.columns.values()
        score = float(
            np.mean(
                [
                    wasserstein_distance(column.values, np.sort(matrix[:, k]), column.counts)
                    for k, column in enumerate(columns)
                ]
            )
        )
        bands = self.bands_for(len(matrix))
        return PredictionDriftResult(
            score=score,
            band=bands.inspect,
            bands=bands,
            # A constant reference has a zero band: only a window that differs breaches it.
            level=bands.classify(score) if score > 0 else "ok",
            n_reference=self.n_reference_,
            n_current=len(matrix),
            window_size=self.window_size,
            dropped=dropped,
        )

    def get_params(self) -> dict[str, Any]:
        """The settings, by ``__init__`` argument name."""
        return {
            "window_size": self.window_size,
            "n_boot": self.n_boot,
            "quantile": self.quantile,
            "retrain_factor": self.retrain_factor,
            "pause_factor": self.pause_factor,
            "seed": self.seed,
        }

    def to_dict(self) -> dict[str, Any]:
        """Settings and fitted state as strict-JSON-ready data; :meth:`from_dict` loads it."""
        state: dict[str, Any] = {"method": self.method, "params": self.get_params()}
        if hasattr(self, "band_"):
            state.update(
                outputs=self.outputs_,
                n_reference=self.n_reference_,
                bootstrap_quantile=self.bootstrap_quantile_,
                band=self.band_,
                reference=self.reference_.to_dict(),
            )
        return state

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a band from :meth:`to_dict` output without bootstrapping again."""
        band = cls(**data["params"])
        if "band" in data:
            band.outputs_ = int(data["outputs"])
            band.n_reference_ = int(data["n_reference"])
            band.bootstrap_quantile_ = float(data["bootstrap_quantile"])
            band.band_ = float(data["band"])
            band.reference_ = Reference.from_dict(data["reference"])
        return band

    def _check_fitted(self) -> None:
        if not hasattr(self, "band_"):
            raise RuntimeError("PredictionDriftBand is not fitted: call fit(reference) first.")

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"


def bootstrap_distances(
    reference: ArrayLike, window_size: int, *, n_boot: int, seed: int | None = 0
) -> np.ndarray:
    """Wasserstein distances between a reference and ``n_boot`` resamples of it.

    ``reference`` is 1-D, or ``(rows, outputs)`` with rows resampled together and the
    per-column distances averaged. Exact, and vectorised: a resample's values are
    reference values, so both CDFs step only at reference points; between two
    consecutive resampled points the resample's CDF is a constant ``t / m``, and the
    integral of ``|F_ref − t/m|`` over that run of reference intervals comes from two
    prefix sums, split where the (monotone) reference CDF crosses ``t / m``. The cost is
    ``O(n_boot · m · log m)``, independent of the reference size beyond one sort.
    """
    matrix = np.asarray(reference, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    n, columns = matrix.shape
    m = int(window_size)
    order = np.argsort(matrix, axis=0, kind="stable")
    ordered = np.take_along_axis(matrix, order, axis=0)
    # rank[row, k]: position of the row's value in column k's sorted order.
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[:, None], axis=0)
    # Interval i = [x_i, x_{i+1}) has reference CDF F_i = (i + 1) / n and width Δ_i.
    width = np.diff(ordered, axis=0)
    cdf = np.arange(1, n, dtype=np.float64) / n
    length = np.vstack([np.zeros((1, columns)), np.cumsum(width, axis=0)])  # Σ_{l<i} Δ_l
    area = np.vstack([np.zeros((1, columns)), np.cumsum(cdf[:, None] * width, axis=0)])
    level = np.arange(m + 1, dtype=np.float64) / m  # the resample's CDF on run t
    # First interval where F_i ≥ t / m, i.e. (i + 1) m ≥ t n, in integer arithmetic.
    crossing = (np.arange(m + 1, dtype=np.int64) * n + m - 1) // m - 1
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // (m + 1))
    distances = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, per_chunk):
        rows = rng.integers(0, n, size=(min(per_chunk, n_boot - start), m))
        total = np.zeros(len(rows))
        for k in range(columns):
            points = np.sort(rank[rows, k], axis=1)
            edge = np.zeros((len(rows), m + 2), dtype=np.int64)
            edge[:, 1:-1] = points
            edge[:, -1] = n - 1
            low, high = edge[:, :-1], edge[:, 1:]
            split = np.clip(crossing, low, high)
            len_k, area_k = length[:, k], area[:, k]
            below = level * (len_k[split] - len_k[low]) - (area_k[split] - area_k[low])
            above = (area_k[high] - area_k[split]) - level * (len_k[high] - len_k[split])
            total += (below + above).sum(axis=1)
        distances[start : start + len(rows)] = total / columns
    return distances


def _outputs(scores: ArrayLike, side: str) -> tuple[np.ndarray, int, int]:
    """Finite rows as a ``(rows, outputs)`` matrix, the output count (0 for 1-D), drops."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (1, 2):
        raise DataError(
            f"The {side} outputs have shape {array.shape}; expected (rows,) or (rows, classes).",
            hint="Pass one score per row, or predict_proba's matrix.",
        )
    outputs = 0 if array.ndim == 1 else array.shape[1]
    matrix = array[:, None] if array.ndim == 1 else array
    finite = np.isfinite(matrix).all(axis=1)
    return matrix[finite], outputs, int(len(matrix) - finite.sum())


def _describe(outputs: int) -> str:
    return "one score per row" if outputs == 0 else f"{outputs} outputs per row"
