"""What happened, read once: the events, monitor runs, CT cycles and roll-outs of a project.

The maturity assessment, the ROI metrics and the postmortem draft all read the same
history, so it is loaded once (:func:`load_history`) into plain records, oldest first,
and the computations over it are pure functions a test can feed with known timings.

    history = load_history(project.store, model="churn")
    history.events_of("alias.rollback")
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from shipyard.errors import NotFoundError
from shipyard.moments import as_utc
from shipyard.store import CycleRow, DatasetRow, EventRow, MonitorRunRow, RolloutRow
from shipyard.store.events import Event

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "CycleRecord",
    "History",
    "MonitorRunRecord",
    "RolloutRecord",
    "load_history",
    "model_of",
    "require_model",
]

CHAMPION_SUBJECT = "@champion"


@dataclass(frozen=True)
class MonitorRunRecord:
    """One stored monitor run: which version, its level, and when it started."""

    model: str
    version: str
    level: str
    at: datetime
    id: int = 0


@dataclass(frozen=True)
class CycleRecord:
    """One continuous-training cycle: its trigger kind, outcome and times."""

    id: int
    model: str
    cause: str
    trigger_kind: str
    state: str
    candidate: str | None
    started: datetime
    updated: datetime
    gates: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class RolloutRecord:
    """One roll-out: strategy, steps, outcome and the history of its steps."""

    id: int
    model: str
    candidate: str
    strategy: str
    steps: tuple[float, ...]
    state: str
    started: datetime
    history: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class History:
    """A project's (or one model's) recorded past, oldest first in every list."""

    events: tuple[Event, ...] = ()
    monitor_runs: tuple[MonitorRunRecord, ...] = ()
    cycles: tuple[CycleRecord, ...] = ()
    rollouts: tuple[RolloutRecord, ...] = ()
    datasets: dict[str, datetime] = field(default_factory=dict)  # digest → first stored

    def events_of(self, *kinds: str, model: str | None = None) -> list[Event]:
        """The events of these kinds (of ``model``, when given), oldest first."""
        wanted = set(kinds)
        return [
            event
            for event in self.events
            if event.kind in wanted and (model is None or model_of(event) == model)
        ]

    def models(self) -> list[str]:
        """Every model the history mentions, sorted."""
        names = {model_of(event) for event in self.events}
        names.update(run.model for run in self.monitor_runs)
        names.update(cycle.model for cycle in self.cycles)
        names.update(rollout.model for rollout in self.rollouts)
        return sorted(name for name in names if name)

    def for_model(self, model: str) -> History:
        """The part of this history that concerns ``model``."""
        return History(
            events=tuple(e for e in self.events if model_of(e) == model),
            monitor_runs=tuple(r for r in self.monitor_runs if r.model == model),
            cycles=tuple(c for c in self.cycles if c.model == model),
            rollouts=tuple(r for r in self.rollouts if r.model == model),
            datasets=self.datasets,
        )


def model_of(event: Event) -> str | None:
    """The model an event concerns: from its subject (``model:NAME/…``, ``model:NAME@…``,
    ``alert:NAME/…``) or, for a training run, its payload."""
    head, _, rest = event.subject.partition(":")
    if head in ("model", "alert") and rest:
        return rest.split("/", 1)[0].split("@", 1)[0]
    found = event.payload.get("model")
    return found if isinstance(found, str) else None


def is_champion_move(event: Event) -> bool:
    """Whether ``event`` pointed the champion alias at a version (not a clearing)."""
    return (
        event.kind in ("alias.promote", "alias.override", "alias.rollback")
        and event.subject.endswith(CHAMPION_SUBJECT)
        and event.payload.get("to_version") is not None
    )


def load_history(
    store: Store, *, model: str | None = None, kinds: Iterable[str] | None = None
) -> History:
    """Read the history from the control plane (every model unless ``model``).

    ``kinds`` limits the events read (the monitor's ``monitor.ran`` events are many and
    the stored runs say the same, so callers usually leave them out).
    """
    # Columns, not ORM rows: a long history has hundreds of thousands of events, and
    # building mapped objects for them costs more than reading them.
    query = select(*_EVENT_COLUMNS).order_by(EventRow.seq)
    if kinds is not None:
        query = query.where(EventRow.kind.in_(sorted(set(kinds))))
    if model is not None:
        query = query.where(
            or_(
                EventRow.subject.startswith(f"model:{model}/", autoescape=True),
                EventRow.subject.startswith(f"model:{model}@", autoescape=True),
                EventRow.subject == f"model:{model}",
                EventRow.subject.startswith(f"alert:{model}/", autoescape=True),
                EventRow.subject.startswith("run:"),
                EventRow.subject.startswith("dataset:"),
            )
        )
    # Only the columns a run's level and time need: a stored result can be large.
    runs = select(
        MonitorRunRow.model,
        MonitorRunRow.version,
        MonitorRunRow.level,
        MonitorRunRow.created_at,
        MonitorRunRow.id,
    ).order_by(MonitorRunRow.created_at, MonitorRunRow.id)
    cycles = select(CycleRow).order_by(CycleRow.id)
    rollouts = select(RolloutRow).order_by(RolloutRow.id)
    if model is not None:
        runs = runs.where(MonitorRunRow.model == model)
        cycles = cycles.where(CycleRow.model == model)
        rollouts = rollouts.where(RolloutRow.model == model)
    with store.session() as session:
        events = [_event(row) for row in session.execute(query)]
        if model is not None:  # runs and snapshots carry the model in their payload
            events = [e for e in events if model_of(e) in (model, None)]
        history = History(
            events=tuple(events),
            monitor_runs=tuple(
                MonitorRunRecord(name, version, level, as_utc(at), run_id)
                for name, version, level, at, run_id in session.execute(runs)
            ),
            cycles=tuple(_cycle(row) for row in session.scalars(cycles)),
            rollouts=tuple(_rollout(row) for row in session.scalars(rollouts)),
            datasets={
                digest: as_utc(at)
                for digest, at in session.execute(select(DatasetRow.digest, DatasetRow.created_at))
            },
        )
    return history


_EVENT_COLUMNS = (
    EventRow.id,
    EventRow.at,
    EventRow.actor,
    EventRow.kind,
    EventRow.subject,
    EventRow.payload,
    EventRow.seq,
    EventRow.token_id,
    EventRow.role,
    EventRow.reason,
)


def _event(row: Any) -> Event:
    """The event of a row of :data:`_EVENT_COLUMNS`, its time in UTC."""
    event_id, at, actor, kind, subject, payload, seq, token_id, role, reason = row
    return Event(
        event_id, as_utc(at), actor, kind, subject, dict(payload or {}), seq, token_id, role,
        reason or "",
    )  # fmt: skip


def _cycle(row: CycleRow) -> CycleRecord:
    trigger = dict(row.trigger or {})
    return CycleRecord(
        id=row.id,
        model=row.model,
        cause=row.cause,
        trigger_kind=str(trigger.get("kind") or "manual"),
        state=row.state,
        candidate=row.candidate,
        started=as_utc(row.created_at),
        updated=as_utc(row.updated_at),
        gates=tuple(row.gates or ()),
    )


def _rollout(row: RolloutRow) -> RolloutRecord:
    return RolloutRecord(
        id=row.id,
        model=row.model,
        candidate=row.candidate,
        strategy=row.strategy,
        steps=tuple(float(step) for step in row.steps),
        state=row.state,
        started=as_utc(row.created_at),
        history=tuple(row.history or ()),
    )


def require_model(project: Project, model: str) -> None:
    """Refuse (``NotFoundError``, naming the models there are) a model the project never had."""
    query = select(EventRow.subject).where(EventRow.kind == "model_version.registered")
    with project.store.session() as session:
        known = {
            subject.removeprefix("model:").split("/", 1)[0] for subject in session.scalars(query)
        }
    known.add(project.config.model.name)
    if model not in known:
        raise NotFoundError(
            f"There is no model {model!r} in this project.",
            hint=f"Models: {', '.join(sorted(known))}.",
        )
