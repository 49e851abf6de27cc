"""Per-feature threshold bands from the reference, by bootstrap, at a stated false-alarm rate.

    bands = calibrate_bands(train_frame, window_size=5000, false_alarm_rate=0.01)
    bands["plan"]   # {"inspect": 0.131, "retrain": 0.328, "pause": 0.524, "method": "psi"}

``shipyard monitor calibrate NAME`` writes the result under ``monitoring.bands`` for
review; with ``monitoring.calibration: auto`` monitoring calibrates on its own
(:mod:`~shipyard.monitoring.calibrated_bands`). Each feature is scored the way monitoring
scores it: PSI for categorical and discrete features, KL divergence for continuous ones
(``feature_drift.default_method``), on the detectors' histograms. Under no drift a window
is a sample of the same population as the reference, and the reference is a sample too,
so both are drawn afresh: ``n_boot`` (reference, window) pairs from the reference's bin
shares, with the unseen categories' mass added (:mod:`~shipyard.monitoring.null_model`),
scored exactly as the detector scores them. ``inspect`` is the ``1 − false_alarm_rate``
quantile of those null scores.

Two ways to set the other levels:

- ``never_below_defaults=True`` (``monitor calibrate``'s default): the shipped levels
  (DESIGN.md: PSI 0.10 / 0.25 / 0.40, KL 0.05 / 0.15 / 0.30) scaled up until inspect
  reaches the null quantile, never down. Calibration then only quietens features that
  are noisy at this window size; it never flags a shift smaller than the shipped size.
- ``never_below_defaults=False`` (monitoring's automatic mode): inspect is the null
  quantile itself, so a large window flags small shifts (a 0.2σ mean shift at 5,000
  rows). ``retrain`` is the ``1 − false_alarm_rate / 10`` null quantile and ``pause``
  the ``1 − false_alarm_rate / 100`` one, each at least its shipped level: acting on a
  window (a retrain's cost, a pause's traffic move) needs both much stronger evidence and
  a shift of the size the shipped table calls worth acting on. Those far quantiles lie
  beyond what the bootstrap resolves, so they come from a scaled chi-square matched to
  the null scores' mean and variance, as a ratio to the bootstrap's inspect quantile.

Levels are rounded up to three significant digits. A feature with a single reference
value (null scores all 0) keeps the shipped levels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from shipyard.config import BandSettings
from shipyard.errors import ConfigError, DataError
from shipyard.monitoring.feature_drift import default_method
from shipyard.monitoring.frames import FrameLike
from shipyard.monitoring.null_model import null_scores
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.results import KL_BANDS, PSI_BANDS, Bands

__all__ = ["DEFAULT_BANDS", "calibrate_bands", "null_levels", "null_scores"]

DEFAULT_BANDS: Mapping[str, Bands] = {"psi": PSI_BANDS, "kl": KL_BANDS}


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
        if method not in DEFAULT_BANDS:
            raise ConfigError(
                f"Cannot calibrate {method!r} bands for feature {name!r}.",
                hint="Calibration supports the banded methods: psi, kl.",
            )
        null = null_scores(column, window_size, method, n_boot=n_boot, bins=bins, rng=rng)
        levels = null_levels(null, false_alarm_rate, method, never_below_defaults)
        calibrated[name] = levels.model_dump()
    return calibrated


def null_levels(
    null: np.ndarray, false_alarm_rate: float, method: str, never_below_defaults: bool
) -> BandSettings:
    """Inspect / retrain / pause levels from one feature's no-drift scores (module doc)."""
    default = DEFAULT_BANDS[method]
    inspect = float(np.quantile(null, 1.0 - false_alarm_rate))
    if inspect <= 0:
        # A feature with one value scores 0 in every null window; levels of 0 would put
        # every window at "pause", so it keeps the shipped levels.
        return BandSettings(**asdict(default), method=method)
    if never_below_defaults:
        scale = max(inspect / default.inspect, 1.0)
        levels = (default.inspect * scale, default.retrain * scale, default.pause * scale)
    else:
        retrain, pause = _tail_ratios(null, false_alarm_rate)
        levels = (
            inspect,
            max(inspect * retrain, default.retrain),
            max(inspect * pause, default.pause),
        )
    return BandSettings(
        inspect=_round_up(levels[0]),
        retrain=_round_up(levels[1]),
        pause=_round_up(levels[2]),
        method=method,
    )


def _tail_ratios(null: np.ndarray, false_alarm_rate: float) -> tuple[float, float]:
    """How far the rate/10 and rate/100 quantiles lie above the rate one, by a scaled χ².

    PSI and KL of two multinomial samples are close to ``g · χ²_ν``; ``g`` cancels in
    the ratio, and ``ν = 2 mean² / variance`` (Satterthwaite).
    """
    from scipy import special  # χ² quantiles, without scipy.stats' import cost

    mean, variance = float(null.mean()), float(null.var())
    freedom = 2.0 * mean**2 / variance if variance > 0 else 1.0
    base = special.chdtri(freedom, false_alarm_rate)
    return (
        float(special.chdtri(freedom, false_alarm_rate / 10) / base),
        float(special.chdtri(freedom, false_alarm_rate / 100) / base),
    )


def _round_up(value: float, digits: int = 3) -> float:
    """``value`` rounded up to ``digits`` significant digits (0 stays 0)."""
    if value <= 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return float(round(math.ceil(round(value / step, 9)) * step, 12))
