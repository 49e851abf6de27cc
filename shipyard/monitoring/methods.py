"""Detectors by method name, as configuration names them, and loading stored detectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from shipyard.errors import ConfigError
from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.detectors import (
    ChiSquareDetector,
    KSDetector,
    WassersteinDetector,
    ZTestDetector,
)
from shipyard.monitoring.evidently_auto import AutoDriftDetector
from shipyard.monitoring.histogram_detectors import JensenShannonDetector, KLDetector, PSIDetector

__all__ = ["DETECTORS", "Method", "detector", "load_detector"]

Method = Literal["auto", "psi", "kl", "jensenshannon", "wasserstein", "ks", "chisquare", "z"]

DETECTORS: dict[str, type[DriftDetector]] = {
    cls.method: cls
    for cls in (
        AutoDriftDetector,
        PSIDetector,
        KLDetector,
        JensenShannonDetector,
        WassersteinDetector,
        KSDetector,
        ChiSquareDetector,
        ZTestDetector,
    )
}


def detector(method: Method | str, **settings: Any) -> DriftDetector:
    """An unfitted detector for ``method`` (``"auto"``, ``"psi"``, ``"kl"`` …) with ``settings``."""
    try:
        cls = DETECTORS[method]
    except KeyError:
        raise ConfigError(
            f"Unknown drift method {method!r}.",
            hint=f"Use one of: {', '.join(DETECTORS)}.",
        ) from None
    return cls(**settings)


def load_detector(data: Mapping[str, Any]) -> DriftDetector:
    """Rebuild a detector stored with ``DriftDetector.to_dict()``, fitted if it was."""
    method = data.get("method")
    if method not in DETECTORS:
        raise ConfigError(
            f"Stored detector has unknown method {method!r}.",
            hint="It was written by a different Shipyard version; fit the detector again.",
        )
    return DETECTORS[method].from_dict(data)
