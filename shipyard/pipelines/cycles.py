"""Continuous-training cycles as stored: the trigger, each gate's outcome, the result.

A cycle lives in ``shipyard_ct_cycles``. It is ``running`` while its gates run and its
roll-out lasts, then ends ``promoted``, ``rolled_back``, ``halted`` (a gate before the
roll-out failed) or ``failed`` (an error, not a verdict). A trigger the guards turn
down is stored as a cycle too, ``skipped`` (the trigger is spent) or ``deferred`` (it
stays pending until the guard allows it), so ``shipyard ct status`` shows every
decision. Each gate appends ``{gate, status, at, evidence}``; every change is an event
(``ct.cycle_started``, ``ct.gate``, ``ct.cycle_updated``, ``ct.cycle_finished``,
``ct.skipped``), recorded in one transaction with the row it vouches for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from shipyard.errors import NotFoundError
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.store import CycleRow, EventKind
from shipyard.store.bound_rows import bound_digest, record_row

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from shipyard.store import Store

__all__ = [
    "GATES",
    "Cycle",
    "CycleState",
    "GateStatus",
    "active_cycle",
    "finish_cycle",
    "get_cycle",
    "list_cycles",
    "record_decision",
    "record_gate",
    "start_cycle",
    "update_cycle",
]

CycleState = Literal[
    "running", "promoted", "rolled_back", "halted", "failed", "skipped", "deferred"
]
GateStatus = Literal["passed", "failed", "skipped"]
GATES = ("validate", "retrain", "scorecard", "shadow", "canary", "promote")
"""The built-in gates and the roll-out's, in the order a cycle records them."""


@dataclass(frozen=True)
class Cycle(Record):
    """One cycle as stored."""

    id: int
    model: str
    cause: str
    trigger: dict[str, Any]
    state: CycleState
    reason: str
    candidate: str | None
    champion: str | None
    rollout_id: int | None
    gates: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def gate(self, name: str) -> dict[str, Any] | None:
        """The latest outcome of gate ``name``, if it ran."""
        return next((g for g in reversed(self.gates) if g["gate"] == name), None)


def start_cycle(
    store: Store, model: str, cause: str, trigger: dict[str, Any], *, champion: str | None
) -> Cycle:
    """Open a running cycle for ``model``."""
    with store.session() as session:
        row = _insert(session, model, cause, trigger, "running", "", champion)
        record_row(
            store, session, EventKind.CT_CYCLE_STARTED, f"model:{model}",
            {"cycle": row.id, "cause": cause}, row,
        )  # fmt: skip
        return _cycle(row)


def record_decision(
    store: Store,
    model: str,
    cause: str,
    trigger: dict[str, Any],
    state: Literal["skipped", "deferred"],
    reason: str,
    evidence: dict[str, Any],
    *,
    champion: str | None,
) -> Cycle:
    """Store a guard's decision not to retrain (now, or for this trigger)."""
    with store.session() as session:
        row = _insert(session, model, cause, trigger, state, reason, champion, evidence=evidence)
        record_row(
            store,
            session,
            EventKind.CT_SKIPPED,
            f"model:{model}",
            {"cycle": row.id, "cause": cause, "state": state, "reason": reason, **evidence},
            row,
            reason=reason,
        )
        return _cycle(row)


def record_gate(
    store: Store,
    cycle_id: int,
    gate: str,
    status: GateStatus,
    evidence: dict[str, Any],
    *,
    once: bool = False,
) -> Cycle:
    """Append gate ``gate``'s outcome to the cycle.

    With ``once``, a gate the cycle already recorded is left as it is: the agent and an
    orchestrator's step may both follow one roll-out, and the row lock makes the first
    writer the only one.
    """
    moment = datetime.now(UTC)
    entry = {"gate": gate, "status": status, "at": moment.isoformat(), "evidence": evidence}
    with store.session() as session:
        row, before = _locked(session, cycle_id)
        if once and any(g["gate"] == gate for g in row.gates or ()):
            return _cycle(row)
        row.gates = [*row.gates, entry]
        row.updated_at = moment
        record_row(
            store, session, EventKind.CT_GATE, f"model:{row.model}",
            {"cycle": cycle_id, "gate": gate, "status": status}, row, before=before,
        )  # fmt: skip
        return _cycle(row)


def update_cycle(store: Store, cycle_id: int, **values: Any) -> Cycle:
    """Set ``candidate``, ``rollout_id`` or ``champion`` on a cycle."""
    with store.session() as session:
        row, before = _locked(session, cycle_id)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = datetime.now(UTC)
        record_row(
            store, session, EventKind.CT_CYCLE_UPDATED, f"model:{row.model}",
            {"cycle": cycle_id, **values}, row, before=before,
        )  # fmt: skip
        return _cycle(row)


def finish_cycle(
    store: Store, cycle_id: int, state: CycleState, reason: str, *, if_running: bool = False
) -> Cycle:
    """End a cycle with its outcome (with ``if_running``, only one that has not ended)."""
    with store.session() as session:
        row, before = _locked(session, cycle_id)
        if if_running and row.state != "running":
            return _cycle(row)
        row.state = state
        row.reason = reason
        row.updated_at = datetime.now(UTC)
        record_row(
            store,
            session,
            EventKind.CT_CYCLE_FINISHED,
            f"model:{row.model}",
            {"cycle": cycle_id, "state": state, "reason": reason, "candidate": row.candidate},
            row,
            before=before,
            reason=reason,
        )
        return _cycle(row)


def get_cycle(store: Store, cycle_id: int) -> Cycle:
    """Cycle ``cycle_id`` as stored; :class:`~shipyard.errors.NotFoundError` if there is none."""
    with store.session() as session:
        return _cycle(_row(session.get(CycleRow, cycle_id), cycle_id))


def active_cycle(store: Store, model: str) -> Cycle | None:
    """The running cycle of ``model``, if any."""
    query = (
        select(CycleRow)
        .where(CycleRow.model == model, CycleRow.state == "running")
        .order_by(CycleRow.id.desc())
        .limit(1)
    )
    with store.session() as session:
        row = session.scalar(query)
        return None if row is None else _cycle(row)


def list_cycles(
    store: Store, model: str, *, limit: int = 20, states: tuple[str, ...] | None = None
) -> list[Cycle]:
    """``model``'s newest cycles first (optionally only in ``states``)."""
    query = select(CycleRow).where(CycleRow.model == model)
    if states is not None:
        query = query.where(CycleRow.state.in_(states))
    query = query.order_by(CycleRow.id.desc()).limit(limit)
    with store.session() as session:
        return [_cycle(row) for row in session.scalars(query)]


def _insert(
    session: Session,
    model: str,
    cause: str,
    trigger: dict[str, Any],
    state: CycleState,
    reason: str,
    champion: str | None,
    *,
    evidence: dict[str, Any] | None = None,
) -> CycleRow:
    moment = datetime.now(UTC)
    gates = (
        []
        if evidence is None
        else [
            {"gate": "guards", "status": "failed", "at": moment.isoformat(), "evidence": evidence}
        ]
    )
    row = CycleRow(
        model=model,
        cause=cause,
        trigger=trigger,
        state=state,
        reason=reason,
        champion=champion,
        gates=gates,
        created_at=moment,
        updated_at=moment,
    )
    session.add(row)
    session.flush()
    return row


def _locked(session: Session, cycle_id: int) -> tuple[CycleRow, str]:
    """The cycle's row, locked for this transaction, and the digest of it as it was."""
    row = _row(session.get(CycleRow, cycle_id, with_for_update=True), cycle_id)
    return row, bound_digest(row)


def _row(row: CycleRow | None, cycle_id: int) -> CycleRow:
    if row is None:
        raise NotFoundError(f"Cycle {cycle_id} does not exist.", hint="See `shipyard ct status`.")
    return row


def _cycle(row: CycleRow) -> Cycle:
    return Cycle(
        id=row.id,
        model=row.model,
        cause=row.cause,
        trigger=dict(row.trigger or {}),
        state=row.state,  # type: ignore[arg-type]
        reason=row.reason,
        candidate=row.candidate,
        champion=row.champion,
        rollout_id=row.rollout_id,
        gates=tuple(row.gates or ()),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
