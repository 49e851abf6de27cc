"""Detector kinds by name, to restore any stored detector."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.errors import DataError
from shipyard.monitoring.sequential.adwin import ADWIN
from shipyard.monitoring.sequential.base import SequentialDetector
from shipyard.monitoring.sequential.cusum import CUSUM
from shipyard.monitoring.sequential.page_hinkley import PageHinkley

__all__ = ["DETECTORS", "detector_from_dict"]

DETECTORS: dict[str, type[SequentialDetector]] = {
    detector.kind: detector for detector in (ADWIN, PageHinkley, CUSUM)
}


def detector_from_dict(data: Mapping[str, Any]) -> SequentialDetector:
    """The detector a ``to_dict`` output describes, whatever its kind."""
    kind = data.get("kind")
    if kind not in DETECTORS:
        raise DataError(
            f"unknown stored detector kind {kind!r}",
            hint="Reset the detectors with `shipyard monitor detectors NAME --reset`.",
        )
    return DETECTORS[str(kind)].from_dict(data)
