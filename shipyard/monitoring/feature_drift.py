"""Per-feature drift with the shipped threshold bands, or the bands config gives a feature.

Defaults (DESIGN.md): a categorical or discrete feature is scored with PSI against
inspect / retrain / pause levels 0.10 / 0.25 / 0.40, a continuous one with KL divergence
against 0.05 / 0.15 / 0.30. ``monitoring.bands`` overrides the levels, and the method,
per feature (``shipyard monitor calibrate`` writes such overrides). Features sharing a
method and levels are scored by one detector, in one vectorised pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from shipyard.config import BandSettings, Config
from shipyard.errors import ConfigError
from shipyard.monitoring.methods import detector
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.results import KL_BANDS, PSI_BANDS, Bands, DriftResult

__all__ = ["configured_bands", "default_method", "feature_drift"]

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
    overrides = overrides or {}
    groups: dict[tuple[str, Bands | None], list[str]] = {}
    for feature in reference.columns:
        if feature not in window.columns:
            continue
        override = overrides.get(feature)
        method = (override.method if override else None) or default_method(reference, feature)
        bands = None
        if override is not None:
            bands = Bands(override.inspect, override.retrain, override.pause)
        elif method in _BANDED:
            bands = PSI_BANDS if method == "psi" else KL_BANDS
        groups.setdefault((method, bands), []).append(feature)
    results: dict[str, tuple[DriftResult, Bands | None]] = {}
    for (method, bands), features in groups.items():
        settings: dict[str, Any] = {"columns": features}
        if method in _BANDED and bands is not None:
            settings["bands"] = bands
        drift = detector(method, **settings).fit(reference).score(window[features])
        for result in drift.columns:
            results[result.feature] = (_banded(result, bands), bands)
    return [results[f] for f in reference.columns if f in results]


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
    try:
        return {str(k): BandSettings.model_validate(v) for k, v in dict(data).items()}
    except (ValidationError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path} does not hold feature bands: {str(exc).splitlines()[0]}",
            hint="Each feature maps to {inspect, retrain, pause[, method]}.",
        ) from None
