"""Per-feature drift with the shipped threshold bands, or the bands config gives a feature.

Defaults (DESIGN.md): a categorical or discrete feature is scored with PSI against
inspect / retrain / pause levels 0.10 / 0.25 / 0.40, a continuous one with KL divergence
against 0.05 / 0.15 / 0.30. ``monitoring.bands`` overrides the levels, and the method,
per feature (``shipyard monitor calibrate`` writes such overrides). With
``monitoring.calibration: auto`` (the default), ``shipyard monitor run`` passes
``calibrated_bands.window_bands`` instead: those overrides plus levels calibrated for
the window's size for every other feature with enough reference rows. Features sharing
a method and levels are scored by one detector, in one vectorised pass.

The levels of a statistical test (``ks``, ``chisquare``, ``z``) are p-values, checked at
config load to lie in (0, 1) with inspect ≥ retrain ≥ pause: a window breaches a level
when its p-value is at or below it. The statistic itself (a chi² of 49, say) is never
held to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from shipyard.config import BandSettings, Config
from shipyard.config.monitoring import P_VALUE_METHODS
from shipyard.errors import ConfigError
from shipyard.levels import Level
from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.methods import detector
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.results import KL_BANDS, PSI_BANDS, Bands, DriftResult

__all__ = [
    "configured_bands",
    "default_method",
    "drift_groups",
    "feature_drift",
    "group_detector",
    "levelled",
]

_BANDED = ("psi", "kl")  # methods whose detectors take inspect/retrain/pause levels


def default_method(reference: Reference, feature: str) -> str:
    """PSI for categorical or discrete features, KL for continuous ones."""
    return "psi" if reference[feature].discrete else "kl"


def feature_drift(
    reference: Reference,
    window: pd.DataFrame,
    overrides: Mapping[str, BandSettings] | None = None,
) -> list[tuple[DriftResult, Bands | None]]:
    """Score every reference feature present in ``window``, with the levels it was held to.

    Results come in reference column order.
    """
    groups, tested = drift_groups(reference, window.columns, overrides)
    results: dict[str, tuple[DriftResult, Bands | None]] = {}
    for (method, bands, threshold), features in groups.items():
        drift = group_detector(method, bands, threshold, features).fit(reference)
        for item in drift.score(window[features]).columns:
            results[item.feature] = levelled(item, tested, bands)
    return [results[f] for f in reference.columns if f in results]


GroupKey = tuple[str, Bands | None, float | None]
"""A detector's method, its levels (banded methods) and its threshold (tested ones)."""


def drift_groups(
    reference: Reference,
    columns: Iterable[str],
    overrides: Mapping[str, BandSettings] | None = None,
) -> tuple[dict[GroupKey, list[str]], dict[str, BandSettings]]:
    """The reference features present in ``columns``, grouped by method and levels (one
    detector per group), and the features whose levels are p-values."""
    overrides = overrides or {}
    present = set(columns)
    groups: dict[GroupKey, list[str]] = {}
    tested: dict[str, BandSettings] = {}  # features whose levels are p-values
    for feature in reference.columns:
        if feature not in present:
            continue
        override = overrides.get(feature)
        method = (override.method if override else None) or default_method(reference, feature)
        bands = None
        if override is not None and method in P_VALUE_METHODS:
            tested[feature] = override
        elif override is not None:
            bands = Bands(override.inspect, override.retrain, override.pause)
        elif method in _BANDED:
            bands = PSI_BANDS if method == "psi" else KL_BANDS
        # A test's "drifted" flag agrees with its inspect level.
        threshold = tested[feature].inspect if feature in tested else None
        groups.setdefault((method, bands, threshold), []).append(feature)
    return groups, tested


def group_detector(
    method: str, bands: Bands | None, threshold: float | None, features: list[str]
) -> DriftDetector:
    """The (unfitted) detector scoring one group of :func:`drift_groups`."""
    settings: dict[str, Any] = {"columns": features}
    if method in _BANDED and bands is not None:
        settings["bands"] = bands
    if threshold is not None:
        settings["threshold"] = threshold
    return detector(method, **settings)


def levelled(
    result: DriftResult, tested: Mapping[str, BandSettings], bands: Bands | None
) -> tuple[DriftResult, Bands | None]:
    """A group's result with the level it was held to: a p-value's, or its bands'."""
    if result.feature in tested:
        return _tested(result, tested[result.feature]), None
    return _banded(result, bands), bands


def _tested(result: DriftResult, levels: BandSettings) -> DriftResult:
    """A statistical test's level from its p-value: at or below a level breaches it."""
    if result.p_value is None:
        return result
    p = result.p_value
    band: Level = "ok"
    if p <= levels.pause:
        band = "pause"
    elif p <= levels.retrain:
        band = "retrain"
    elif p <= levels.inspect:
        band = "inspect"
    return replace(result, band=band)


def _banded(result: DriftResult, bands: Bands | None) -> DriftResult:
    """Give a result from an unbanded method (KS, Wasserstein …) its configured level.

    Levels apply to the statistic (a KS distance, say), never to a p-value.
    """
    if result.band is not None or bands is None or result.score is None:
        return result
    return replace(result, band=bands.classify(result.score))


def configured_bands(config: Config) -> dict[str, BandSettings]:
    """``monitoring.bands``, read from its YAML file when it names one."""
    declared = config.monitoring.bands
    if not isinstance(declared, Path):
        return dict(declared)
    path = config.resolve(declared)
    if not path.is_file():
        raise ConfigError(
            f"monitoring.bands names {path}, which does not exist.",
            hint="Run `shipyard monitor calibrate NAME --write`, or set the bands inline.",
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} does not hold feature bands: it is a {type(data).__name__}.",
            hint="Each feature maps to {inspect, retrain, pause[, method]}.",
        )
    bands = {}
    for feature, levels in data.items():
        try:
            bands[str(feature)] = BandSettings.model_validate(levels)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in (feature, *error["loc"]))
            raise ConfigError(
                f"{path}: {where}: {error['msg'].removeprefix('Value error, ')}.",
                hint="Each feature maps to {inspect, retrain, pause[, method]}.",
            ) from None
    return bands
