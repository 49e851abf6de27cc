"""Incidents as the history shows them: when trouble began, was detected, and was over.

Two kinds of incident are read from the history:

- **drift**: the onset is the first monitor run at ``inspect`` or worse after an ``ok``
  one (or the first run of all); it is detected when an alert opens, and over at the
  next ``ok`` monitor run (after a rollback or promotion, when there was one), or at a
  rollback of the champion that no monitor run has judged yet;
- **guardrail**: a roll-out's guardrail breached. The breach is the onset and the
  rollback that answers it, at once, is the recovery; it is detected by the page the
  roll-out sends (or by the rollback itself when no route is configured).

    for incident in incidents(history):
        incident.time_to_detect, incident.time_to_recover   # seconds, or None
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shipyard.jsonable import Record
from shipyard.levels import is_alert_level
from shipyard.operations.history import History, MonitorRunRecord, is_champion_move
from shipyard.store.events import Event

__all__ = ["Incident", "incidents"]

ALIAS_KINDS = ("alias.promote", "alias.override", "alias.rollback")
PAGE_KINDS = ("rollout.alert_delivered", "rollout.alert_failed")


@dataclass(frozen=True)
class Incident(Record):
    """One stretch of trouble of one model, with the events that time it."""

    model: str
    kind: Literal["drift", "guardrail"]
    signal: str  # the alert's signal (``feature:age``) or the guardrail's reason
    onset: datetime
    detected: datetime | None  # when an alert opened (or the page went out)
    recovered: datetime | None  # when the champion was healthy again
    recovery: str  # how it ended, in words ("" while it lasts)
    evidence: tuple[int, ...] = ()  # ids of the events that time it

    @property
    def time_to_detect(self) -> float | None:
        """Seconds from onset to detection, if it was detected."""
        if self.detected is None:
            return None
        return max(0.0, (self.detected - self.onset).total_seconds())

    @property
    def time_to_recover(self) -> float | None:
        """Seconds from detection to recovery (0 when the recovery came first)."""
        if self.detected is None or self.recovered is None:
            return None
        return max(0.0, (self.recovered - self.detected).total_seconds())


def incidents(history: History, model: str | None = None) -> list[Incident]:
    """Every incident in ``history`` (of ``model``, when given), by onset."""
    names = [model] if model is not None else history.models()
    found: list[Incident] = []
    for name in names:
        found.extend(_drift(history, name))
        found.extend(_guardrail(history, name))
    return sorted(found, key=lambda incident: incident.onset)


def _drift(history: History, model: str) -> list[Incident]:
    runs = [r for r in history.monitor_runs if r.model == model and r.level != "unknown"]
    alerts = _by_time(history.events_of("alert.opened", model=model))
    moves = _by_time(
        [e for e in history.events_of(*ALIAS_KINDS, model=model) if is_champion_move(e)]
    )
    following_ok: list[MonitorRunRecord | None] = [None] * len(runs)  # the next ok run after each
    upcoming: MonitorRunRecord | None = None
    for index in range(len(runs) - 1, -1, -1):
        following_ok[index] = upcoming
        if runs[index].level == "ok":
            upcoming = runs[index]
    found = []
    healthy = True
    for index, run in enumerate(runs):
        if run.level == "ok":
            healthy = True
            continue
        if not healthy or not is_alert_level(run.level):
            continue
        healthy = False
        end = following_ok[index]
        found.append(_drift_incident(model, run, end, alerts, moves))
    return found


def _drift_incident(
    model: str,
    onset: MonitorRunRecord,
    end: MonitorRunRecord | None,
    alerts: list[Event],
    moves: list[Event],
) -> Incident:
    alert = _first(alerts, onset.at, None if end is None else end.at)
    evidence = [] if alert is None else [alert.id]
    signal = alert.subject.partition("/")[2] if alert is not None else "monitor"
    detected = None if alert is None else alert.at
    move = None if alert is None else _first(moves, alert.at, None if end is None else end.at)
    recovered: datetime | None = None
    recovery = change = ""
    if move is not None:
        evidence.append(move.id)
        change = f"{move.kind.removeprefix('alias.')} to version {move.payload['to_version']}"
    if end is not None:
        recovered = end.at
        recovery = f"{change}, then an ok monitor run" if move is not None else "an ok monitor run"
    elif move is not None and move.kind == "alias.rollback":
        recovered, recovery = move.at, f"{change} (no monitor run since)"
    return Incident(
        model, "drift", signal, onset.at, detected, recovered, recovery, tuple(evidence)
    )


def _guardrail(history: History, model: str) -> list[Incident]:
    pages = _by_time(history.events_of(*PAGE_KINDS, model=model))
    found = []
    breaches = history.events_of("rollout.rolled_back", model=model)
    for index, rolled_back in enumerate(breaches):
        following = breaches[index + 1].at if index + 1 < len(breaches) else None
        page = _first(pages, rolled_back.at, following)
        evidence = (rolled_back.id,) if page is None else (rolled_back.id, page.id)
        found.append(
            Incident(
                model=model,
                kind="guardrail",
                signal=rolled_back.reason or "a guardrail breached",
                onset=rolled_back.at,
                detected=rolled_back.at if page is None else page.at,
                recovered=rolled_back.at,
                recovery="automatic rollback: the champion took all traffic back",
                evidence=evidence,
            )
        )
    return found


def _first(events: list[Event], start: datetime, end: datetime | None) -> Event | None:
    """The first of ``events`` (sorted by time) at or after ``start`` and not after ``end``."""
    index = bisect_left(events, start, key=lambda event: event.at)
    if index == len(events):
        return None
    event = events[index]
    return event if end is None or event.at <= end else None


def _by_time(events: list[Event]) -> list[Event]:
    """``events`` by time (an event's time is taken just before its seq, so rarely out of order)."""
    return sorted(events, key=lambda event: event.at)
