"""A/B experiments as stored: one row per experiment, every change an audited event.

The statistics and the decisions live in :mod:`shipyard.delivery.experiments`; this
module only reads and writes ``shipyard_experiments``. Each write is one transaction
with the event that records it and, when the experiment moves traffic (start, stop,
a decision that ends it), with the traffic settings servers follow
(:func:`~shipyard.store.traffic.write_traffic`), so the row, the split and the audit
leaves commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from shipyard.errors import NotFoundError
from shipyard.moments import as_utc
from shipyard.store.audit_leaf import row_digest, row_values
from shipyard.store.event_kinds import EventKind
from shipyard.store.tables import ExperimentRow
from shipyard.store.traffic import TrafficSettings, write_traffic

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = [
    "ACTIVE_STATES",
    "Experiment",
    "ExperimentState",
    "active_experiment",
    "change_experiment",
    "find_experiment",
    "insert_experiment",
    "list_experiments",
]

ExperimentState = Literal["running", "decided", "promoting", "promoted", "stopped"]
ACTIVE_STATES: tuple[ExperimentState, ...] = ("running", "decided", "promoting")
"""States in which an experiment holds its model's traffic (and blocks another one)."""


@dataclass(frozen=True)
class Experiment:
    """An experiment as stored: arms (versions) with their shares, the metric and where
    its values come from (``labels`` or ``outcomes``), the test's settings, its state."""

    id: int
    model: str
    name: str
    arms: tuple[str, ...]
    split: tuple[float, ...]
    metric: str
    source: str
    min_effect: float | None
    alpha: float
    power: float
    state: ExperimentState
    winner: str | None
    decision: dict[str, Any]
    started_by: str
    created_at: datetime
    updated_at: datetime
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def active(self) -> bool:
        """Whether it still holds its model's traffic."""
        return self.state in ACTIVE_STATES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "id": self.id,
            "model": self.model,
            "name": self.name,
            "arms": list(self.arms),
            "split": list(self.split),
            "metric": self.metric,
            "source": self.source,
            "min_effect": self.min_effect,
            "alpha": self.alpha,
            "power": self.power,
            "state": self.state,
            "winner": self.winner,
            "decision": self.decision,
            "started_by": self.started_by,
            "created_at": as_utc(self.created_at).isoformat(),
            "updated_at": as_utc(self.updated_at).isoformat(),
            "history": list(self.history),
        }


def insert_experiment(
    store: Store, row: ExperimentRow, traffic: TrafficSettings, reason: str
) -> Experiment:
    """Store a new experiment, set its traffic and record ``experiment.started``."""
    with store.session() as session:
        session.add(row)
        session.flush()
        write_traffic(store, row.model, traffic, session=session, reason=reason)
        session.refresh(row)
        experiment = _experiment(row)
        store.record(
            EventKind.EXPERIMENT_STARTED,
            _subject(experiment),
            experiment.to_dict(),
            reason=reason,
            after=row_digest(row_values(row)),
            session=session,
        )
        return experiment


def change_experiment(
    store: Store,
    experiment_id: int,
    kind: EventKind,
    *,
    state: ExperimentState,
    reason: str,
    evidence: dict[str, Any] | None = None,
    winner: str | None = None,
    decision: dict[str, Any] | None = None,
    traffic: TrafficSettings | None = None,
    now: datetime | None = None,
) -> Experiment:
    """Move an experiment to ``state`` and record ``kind`` with the evidence: one
    transaction with the traffic it writes (``None``: traffic stays as it is)."""
    moment = as_utc(now or datetime.now(UTC))
    with store.session() as session:
        row = session.get(ExperimentRow, experiment_id, with_for_update=True)
        if row is None:
            raise NotFoundError(
                f"Experiment {experiment_id} does not exist.",
                hint="See `shipyard experiment list`.",
            )
        before = row_digest(row_values(row))
        if traffic is not None:
            write_traffic(store, row.model, traffic, session=session, reason=reason)
        entry = {
            "at": moment.isoformat(),
            "from": row.state,
            "to": state,
            "reason": reason,
            "evidence": dict(evidence or {}),
        }
        row.state = state
        if winner is not None:
            row.winner = winner
        if decision is not None:
            row.decision = decision
        row.history = [*row.history, entry]
        row.updated_at = moment
        session.flush()
        session.refresh(row)
        experiment = _experiment(row)
        store.record(
            kind,
            _subject(experiment),
            {"experiment": experiment.name, **entry, "winner": experiment.winner},
            reason=reason,
            before=before,
            after=row_digest(row_values(row)),
            session=session,
        )
        return experiment


def active_experiment(store: Store, model: str) -> Experiment | None:
    """The experiment holding ``model``'s traffic, if any."""
    query = (
        select(ExperimentRow)
        .where(ExperimentRow.model == model, ExperimentRow.state.in_(ACTIVE_STATES))
        .order_by(ExperimentRow.id.desc())
        .limit(1)
    )
    with store.session() as session:
        row = session.scalar(query)
        return None if row is None else _experiment(row)


def find_experiment(store: Store, model: str, name: str | None = None) -> Experiment:
    """``model``'s experiment called ``name``; without a name its active one, else its
    latest."""
    query = select(ExperimentRow).where(ExperimentRow.model == model)
    if name is not None:
        query = query.where(ExperimentRow.name == name)
    with store.session() as session:
        rows = list(session.scalars(query.order_by(ExperimentRow.id.desc())))
        if not rows:
            which = f"no experiment {name!r}" if name else "no experiment"
            raise NotFoundError(
                f"{model} has {which}.",
                hint=f"Start one: `shipyard experiment start {model} --arms A,B --metric M`.",
            )
        active = [row for row in rows if row.state in ACTIVE_STATES]
        return _experiment(active[0] if active else rows[0])


def list_experiments(
    store: Store, *, model: str | None = None, active_only: bool = False
) -> list[Experiment]:
    """Experiments, newest first (of one model, or only those still holding traffic)."""
    query = select(ExperimentRow)
    if model is not None:
        query = query.where(ExperimentRow.model == model)
    if active_only:
        query = query.where(ExperimentRow.state.in_(ACTIVE_STATES))
    with store.session() as session:
        return [
            _experiment(row) for row in session.scalars(query.order_by(ExperimentRow.id.desc()))
        ]


def _subject(experiment: Experiment) -> str:
    return f"model:{experiment.model}/experiment:{experiment.name}"


def _experiment(row: ExperimentRow) -> Experiment:
    return Experiment(
        id=row.id,
        model=row.model,
        name=row.name,
        arms=tuple(str(arm) for arm in row.arms),
        split=tuple(float(share) for share in row.split),
        metric=row.metric,
        source=row.source,
        min_effect=row.min_effect,
        alpha=row.alpha,
        power=row.power,
        state=row.state,  # type: ignore[arg-type]
        winner=row.winner,
        decision=dict(row.decision or {}),
        started_by=row.started_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        history=tuple(row.history or ()),
    )
