"""Per-feature threshold bands from the reference, by bootstrap, at a stated false-alarm rate.

    bands = calibrate_bands(train_frame, window_size=5000, false_alarm_rate=0.01)
    bands["plan"]   # {"inspect": 0.131, "retrain": 0.328, "pause": 0.524, "method": "psi"}

``shipyard monitor calibrate NAME`` writes the result under ``monitoring.bands`` for
review. Each feature is scored the way monitoring scores it: PSI for categorical and
discrete features, KL divergence for continuous ones (``feature_drift.default_method``),
on the detectors' histograms (values one by one, or ``bins`` equal-mass quantile bins cut
from the reference, outer bins open). Under no drift a window is a sample of the same
population as the reference, and the reference is a sample too, so both are resampled:
``n_boot`` pairs of multinomial counts on the reference's bin shares, one of the
reference's size and one of ``window_size``, scored as the detector would score them.
``inspect`` is the ``1 − false_alarm_rate`` quantile of those null scores.

``retrain`` and ``pause`` keep the ratios of the shipped levels (DESIGN.md): PSI
0.10 / 0.25 / 0.40 gives ×2.5 and ×4, KL 0.05 / 0.15 / 0.30 gives ×3 and ×6. With
``never_below_defaults`` (the default) the levels are the shipped ones scaled up until
inspect reaches the null quantile, never down: the defaults encode what size of shift is
worth a person's time, and a large window would otherwise flag shifts too small to act
on. Calibration thus only quietens features that are noisy at this window size
(high-cardinality or rare categories, small windows). Levels are rounded up to three
significant digits. A feature with a single reference value (null scores all 0) keeps
the shipped levels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from shipyard.config import BandSettings
from shipyard.errors import ConfigError, DataError
from shipyard.monitoring import statistics as st
from shipyard.monitoring.binning import quantile_edges, reference_histogram
from shipyard.monitoring.feature_drift import default_method
from shipyard.monitoring.frames import FrameLike
from shipyard.monitoring.reference import ColumnReference, Reference
from shipyard.monitoring.results import KL_BANDS, PSI_BANDS, Bands

__all__ = ["DEFAULT_BANDS", "calibrate_bands", "null_scores"]

DEFAULT_BANDS: Mapping[str, Bands] = {"psi": PSI_BANDS, "kl": KL_BANDS}
_STATISTICS = {"psi": st.psi, "kl": st.kl_divergence}


def calibrate_bands(
    reference: FrameLike | Reference,
    window_size: int,
    *,
    false_alarm_rate: float = 0.01,
    n_boot: int = 2000,
    seed: int | None = 0,
    detectors: Mapping[str, str] | None = None,
    bins: int = 10,
    never_below_defaults: bool = True,
) -> dict[str, dict[str, Any]]:
    """Levels for every reference feature, ready for ``monitoring.bands`` in shipyard.yaml.

    ``detectors`` maps a feature to ``"psi"`` or ``"kl"`` where the default method should
    not be used. Features without finite reference values are left out. Each value is a
    plain ``{"inspect", "retrain", "pause", "method"}`` mapping that
    :class:`~shipyard.config.BandSettings` accepts.
    """
    if window_size < 1:
        raise ValueError(f"window_size must be at least 1, got {window_size}")
    if not 0 < false_alarm_rate < 1:
        raise ValueError(f"false_alarm_rate must lie in (0, 1), got {false_alarm_rate}")
    if n_boot * false_alarm_rate < 5:
        needed = math.ceil(round(5 / false_alarm_rate, 6))
        raise ValueError(
            f"n_boot={n_boot} leaves fewer than 5 null windows above the "
            f"{1 - false_alarm_rate:g} quantile; use at least {needed}."
        )
    if not isinstance(reference, Reference):
        reference = Reference.from_frame(reference)
    chosen = dict(detectors or {})
    unknown = set(chosen) - set(reference.columns)
    if unknown:
        raise DataError(
            f"detectors names columns not in the reference: {', '.join(sorted(unknown))}.",
            hint=f"Reference columns: {', '.join(reference.columns)}.",
        )
    rng = np.random.default_rng(seed)
    calibrated: dict[str, dict[str, Any]] = {}
    for name, column in reference.columns.items():
        if column.n == 0:
            continue
        method = chosen.get(name) or default_method(reference, name)
        if method not in _STATISTICS:
            raise ConfigError(
                f"Cannot calibrate {method!r} bands for feature {name!r}.",
                hint="Calibration supports the banded methods: psi, kl.",
            )
        null = null_scores(column, window_size, method, n_boot=n_boot, bins=bins, rng=rng)
        quantile = float(np.quantile(null, 1.0 - false_alarm_rate))
        calibrated[name] = _levels(quantile, DEFAULT_BANDS[method], method, never_below_defaults)
    return calibrated


def null_scores(
    column: ColumnReference,
    window_size: int,
    method: str,
    *,
    n_boot: int,
    bins: int = 10,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Scores of ``n_boot`` no-drift (reference, window) pairs for one feature."""
    counts = _histogram(column, bins)
    shares = counts / counts.sum()
    rng = rng if rng is not None else np.random.default_rng()
    resampled_reference = rng.multinomial(column.n, shares, size=n_boot)
    window = rng.multinomial(window_size, shares, size=n_boot)
    return np.asarray(_STATISTICS[method](resampled_reference, window), dtype=np.float64)


def _histogram(column: ColumnReference, bins: int) -> np.ndarray:
    """The reference counts the histogram detectors compare a window with."""
    if column.discrete:
        return column.counts.astype(np.float64)
    edges = quantile_edges(column.values, column.counts, bins)
    return reference_histogram(column.values, column.cumulative, edges).astype(np.float64)


def _levels(quantile: float, default: Bands, method: str, floor: bool) -> dict[str, Any]:
    scale = quantile / default.inspect
    if floor or quantile <= 0:
        # A feature with one value scores 0 in every null window; levels of 0 would put
        # every window at "pause", so it keeps the shipped levels.
        scale = max(scale, 1.0)
    levels = BandSettings(
        inspect=_round_up(default.inspect * scale),
        retrain=_round_up(default.retrain * scale),
        pause=_round_up(default.pause * scale),
        method=method,
    )
    return levels.model_dump()


def _round_up(value: float, digits: int = 3) -> float:
    """``value`` rounded up to ``digits`` significant digits (0 stays 0)."""
    if value <= 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return float(round(math.ceil(round(value / step, 9)) * step, 12))
