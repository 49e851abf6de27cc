"""Whether the dataset as a whole drifted: ``monitoring.dataset_drift``.

- ``share`` (Evidently's rule, the default): at least ``drift_share`` (half) of the tested
  features drifted. A shift in one feature of four is then "no dataset drift", however
  large.
- ``any_retrain``: the share rule, or any one feature at retrain or worse. One feature
  far enough off to retrain for is reason enough to call the data drifted.

The verdict reports; it never raises a level of its own beyond the worst feature's, so
alerts and CT triggers still follow the features' signals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from shipyard.levels import Level, worst
from shipyard.monitoring.results import DriftResult

__all__ = ["DatasetVerdict", "dataset_verdict"]

Rule = Literal["share", "any_retrain"]
_ACTING: tuple[Level, ...] = ("retrain", "pause")


@dataclass(frozen=True)
class DatasetVerdict:
    """The dataset-level drift verdict of one window, and what it rests on."""

    rule: Rule
    drifted: bool
    share: float
    drift_share: float
    tested: int
    drifted_features: tuple[str, ...]
    acting_features: tuple[str, ...]  # at retrain or worse
    level: Level

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        data = asdict(self)
        data["drifted_features"] = list(self.drifted_features)
        data["acting_features"] = list(self.acting_features)
        return data


def dataset_verdict(
    results: Iterable[DriftResult], rule: Rule = "share", drift_share: float = 0.5
) -> DatasetVerdict:
    """Apply ``rule`` to one window's per-feature results (untested features don't count).

    ``level`` is ``ok`` without dataset drift, else the worst feature level (at least
    ``inspect``).
    """
    tested = [r for r in results if r.score is not None]
    drifted = tuple(r.feature for r in tested if r.drifted or r.band not in (None, "ok"))
    acting = tuple(r.feature for r in tested if r.band in _ACTING)
    share = len(drifted) / len(tested) if tested else 0.0
    verdict = bool(tested) and share >= drift_share
    if rule == "any_retrain":
        verdict = verdict or bool(acting)
    levels: list[Level] = [r.band for r in tested if r.band is not None]
    level: Level = worst(["inspect", *levels]) if verdict else "ok"
    return DatasetVerdict(rule, verdict, share, drift_share, len(tested), drifted, acting, level)
