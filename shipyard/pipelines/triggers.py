"""What starts a retrain: monitoring's request, a cron schedule, new data, or a person.

Each trigger has a ``key`` that names it once: the ``retrain_requested`` event's id, the
schedule's fire time, the new data's digest, the manual request's moment. A trigger is
pending until a cycle spends its key (any stored cycle but a ``deferred`` one), so an
agent restart neither loses nor repeats one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.errors import ConfigError
from shipyard.moments import as_utc
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from shipyard.pipelines.cycles import Cycle
    from shipyard.store import Store

__all__ = [
    "DataWatch",
    "Trigger",
    "TriggerKind",
    "drift_trigger",
    "manual_trigger",
    "next_fire",
    "schedule_trigger",
    "spent_keys",
]

TriggerKind = Literal["drift", "schedule", "new_data", "manual"]


@dataclass(frozen=True)
class Trigger:
    """One reason to retrain."""

    kind: TriggerKind
    key: str
    cause: str  # as recorded on the run (``shipyard.trigger``) and in lineage
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"kind": self.kind, "key": self.key, "cause": self.cause, **self.details}


def spent_keys(cycles: list[Cycle]) -> set[str]:
    """Keys of the triggers these cycles used up (deferred ones stay pending)."""
    return {str(c.trigger.get("key")) for c in cycles if c.state != "deferred"}


def drift_trigger(
    store: Store, model: str, champion: str | None, spent: set[str]
) -> Trigger | None:
    """The newest ``retrain_requested`` of ``model``'s champion, unless a cycle spent it."""
    subject = f"model:{model}"
    for event in store.events(kind=EventKind.RETRAIN_REQUESTED, subject=subject, limit=20):
        if event.subject != subject:
            continue  # a prefix match: model:loans also finds model:loans2
        version = event.payload.get("version")
        if champion is not None and version is not None and str(version) != champion:
            return None  # evidence about a version that no longer serves
        key = f"drift:{event.id}"
        if key in spent:
            return None
        signal = event.payload.get("signal") or event.payload.get("cause") or "monitor"
        level = event.payload.get("level", "retrain")
        return Trigger(
            "drift",
            key,
            f"drift:{signal}",
            {"event": event.id, "signal": signal, "level": level, "version": version},
        )
    return None


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that the cron ``expression`` names (UTC)."""
    from cronsim import CronSim, CronSimError

    start = as_utc(after).replace(tzinfo=None)  # CronSim counts in naive UTC
    try:
        fire = next(CronSim(expression, start))
    except CronSimError as error:
        raise ConfigError(
            f"ct.schedule {expression!r} is not a cron expression: {error}",
            hint='Use five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * 1".',
        ) from error
    return as_utc(fire)


def schedule_trigger(
    expression: str, *, last: datetime, now: datetime, spent: set[str]
) -> Trigger | None:
    """The schedule's newest fire time in ``(last, now]``, unless a cycle spent it."""
    fire = next_fire(expression, last)
    if fire > now:
        return None
    while True:  # after a long stop, catch up once with the latest fire time, not each one
        later = next_fire(expression, fire)
        if later > now:
            break
        fire = later
    key = f"schedule:{fire.isoformat()}"
    if key in spent:
        return None
    return Trigger("schedule", key, f"schedule:{expression}", {"fired_at": fire.isoformat()})


def manual_trigger(reason: str = "") -> Trigger:
    """A person asked (``shipyard retrain``)."""
    moment = datetime.now(UTC).isoformat()
    details = {"requested_at": moment, "reason": reason} if reason else {"requested_at": moment}
    return Trigger("manual", f"manual:{moment}", "manual", details)


class DataWatch:
    """Notices a new snapshot digest at the training data source, cheaply.

    The source's file listing (names, sizes, modification times) is compared first;
    only when it changed is the data read and its content digest computed, at most
    every ``every`` seconds.
    """

    def __init__(self, path: Path, every: float) -> None:
        self.path = path
        self.every = every
        self._listing: tuple[tuple[str, int, int], ...] | None = None
        self._digest: str | None = None
        self._rows = 0
        self._checked = 0.0

    def digest(self, clock: float) -> tuple[str, int] | None:
        """The source's digest and row count, re-read only when its files changed."""
        if self._digest is not None and clock - self._checked < self.every:
            return self._digest, self._rows
        self._checked = clock
        listing = _listing(self.path)
        if listing != self._listing or self._digest is None:
            from shipyard.data import dataset_digest, read_frame

            frame = read_frame(self.path)
            self._digest, self._rows, self._listing = dataset_digest(frame), len(frame), listing
        return self._digest, self._rows

    def trigger(self, clock: float, baseline: str | None, spent: set[str]) -> Trigger | None:
        """A ``new_data`` trigger when the digest differs from ``baseline``."""
        found = self.digest(clock)
        if found is None or baseline is None or found[0] == baseline:
            return None
        digest, rows = found
        key = f"new_data:{digest}"
        if key in spent:
            return None
        return Trigger("new_data", key, f"new_data:{digest[:12]}", {"digest": digest, "rows": rows})


def _listing(path: Path) -> tuple[tuple[str, int, int], ...]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    found = []
    for file in files:
        try:
            stat = os.stat(file)
        except FileNotFoundError:  # renamed under us: the next check sees the new listing
            continue
        found.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(found)
