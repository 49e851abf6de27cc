"""A :class:`Signal` is what the monitor hands to alerting, an :class:`Alert` what routes send."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from shipyard.jsonable import plain
from shipyard.levels import ALERT_LEVELS, AlertLevel
from shipyard.monitoring.results import Bands

__all__ = [
    "SEVERITY",
    "Alert",
    "AlertStatus",
    "Severity",
    "Signal",
]

AlertStatus = Literal["opened", "resolved"]
Severity = Literal["info", "warning", "critical"]
# PagerDuty's severities; the generic webhook carries the same word.
SEVERITY: dict[AlertLevel, Severity] = {
    "inspect": "info",
    "retrain": "warning",
    "pause": "critical",
}


@dataclass(frozen=True)
class Signal:
    """One monitored quantity of one model version, and the band it is in now.

    ``name`` says what was measured: ``feature:<column>``, ``prediction`` or
    ``performance:<metric>``. ``level`` is ``None`` when the score is within bands.
    A signal whose ``score`` is ``None`` (no data in the window) never resolves an alert.
    """

    model: str
    version: str
    name: str
    level: AlertLevel | None
    score: float | None
    bands: Bands | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.level is not None and self.level not in ALERT_LEVELS:
            raise ValueError(f"level must be one of {ALERT_LEVELS} or None, got {self.level!r}")
        if not self.model or not self.name:
            raise ValueError("a signal needs a model and a name")

    @property
    def subject(self) -> str:
        """The event subject of this signal's alerts: ``alert:<model>/<name>``."""
        return f"alert:{self.model}/{self.name}"


@dataclass(frozen=True)
class Alert:
    """An alert as the routes deliver it: opened (or escalated) or resolved."""

    signal: Signal
    level: AlertLevel  # when resolved: the highest level the alert reached
    status: AlertStatus
    owner: str | None
    dedup_key: str
    time: datetime
    previous_level: AlertLevel | None = None  # set when an open alert escalates
    actions: tuple[str, ...] = ()  # what Shipyard did about it, e.g. "retrain requested"

    @property
    def severity(self) -> Severity:
        """info, warning or critical, from the level."""
        return SEVERITY[self.level]

    @property
    def summary(self) -> str:
        """One line for people: what breached, how far, who owns it."""
        signal = self.signal
        where = f"{signal.model} v{signal.version}: {signal.name}"
        if self.status == "resolved":
            return f"Resolved: {where} is back within bands (score {_number(signal.score)})"
        threshold = getattr(signal.bands, self.level) if signal.bands is not None else None
        band = f"{self.level} band" + (f" {_number(threshold)}" if threshold is not None else "")
        verb = f"escalated from {self.previous_level} to" if self.previous_level else "reached"
        owner = self.owner or "no owner set"
        return f"{where} score {_number(signal.score)} {verb} the {band} (owner: {owner})"

    def to_dict(self) -> dict[str, Any]:
        """The generic webhook body: a flat, documented JSON object."""
        signal = self.signal
        return {
            "schema": "shipyard.alert/1",
            "status": self.status,
            "model": signal.model,
            "version": signal.version,
            "signal": signal.name,
            "level": self.level,
            "previous_level": self.previous_level,
            "severity": self.severity,
            "score": plain(signal.score),
            "bands": asdict(signal.bands) if signal.bands is not None else None,
            "owner": self.owner,
            "summary": self.summary,
            "evidence": plain(signal.evidence),
            "actions": list(self.actions),
            "dedup_key": self.dedup_key,
            "time": self.time.isoformat(),
        }


def _number(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"
