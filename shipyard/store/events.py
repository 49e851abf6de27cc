"""The event log: every state change, with time, actor, kind, subject and payload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.jsonable import Record

if TYPE_CHECKING:
    from shipyard.store.tables import EventRow

__all__ = ["Event", "event_of"]


@dataclass(frozen=True)
class Event(Record):
    """One recorded state change."""

    id: int
    at: datetime
    actor: str
    kind: str
    subject: str
    payload: dict[str, Any]
    seq: int = 0  # its leaf's position in the audit log
    token_id: str | None = None  # the token the actor authenticated with
    role: str | None = None
    reason: str = ""
    request_id: str | None = None
    before: str | None = None  # digest of the state before the change
    after: str | None = None  # digest of the state after it


def event_of(row: EventRow) -> Event:
    """The event an ``shipyard_events`` row holds."""
    return Event(
        id=row.id,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        subject=row.subject,
        payload=dict(row.payload or {}),
        seq=row.seq,
        token_id=row.token_id,
        role=row.role,
        reason=row.reason,
        request_id=row.request_id,
        before=row.before,
        after=row.after,
    )
