"""The one ``Level`` a monitored signal, a monitor run or an alert is at, and their order.

    rank("retrain") > rank("inspect")           # True
    worst(["ok", "pause", "inspect"])           # "pause"
    ALERT_LEVELS                                # ("inspect", "retrain", "pause")

From least to most severe: ``unknown`` (no evidence yet), ``ok`` (within every band),
then the three bands that act: ``inspect`` asks a person to look, ``retrain`` requests a
retrain, ``pause`` sends traffic to the fallback version. Only those three raise an
alert (:data:`AlertLevel`). The values are the words stored and sent everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeGuard, get_args

__all__ = ["ALERT_LEVELS", "LEVELS", "AlertLevel", "Level", "is_alert_level", "rank", "worst"]

Level = Literal["unknown", "ok", "inspect", "retrain", "pause"]
AlertLevel = Literal["inspect", "retrain", "pause"]

LEVELS: tuple[Level, ...] = get_args(Level)  # in rising severity
ALERT_LEVELS: tuple[AlertLevel, ...] = get_args(AlertLevel)  # in rising severity
_RANK: dict[str, int] = {level: index for index, level in enumerate(LEVELS)}


def rank(level: Level) -> int:
    """The level's severity as a number: higher is more severe (``unknown`` lowest)."""
    try:
        return _RANK[level]
    except KeyError:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}") from None


def worst(levels: Iterable[Level], default: Level = "ok") -> Level:
    """The most severe of ``levels``; ``default`` when there are none."""
    return max(levels, key=rank, default=default)


def is_alert_level(level: object) -> TypeGuard[AlertLevel]:
    """Whether ``level`` is one of the levels that raise an alert."""
    return level in ALERT_LEVELS
