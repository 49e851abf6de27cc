"""The event log: every state change, with time, actor, kind, subject and payload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipyard.jsonable import Record

__all__ = ["Event"]


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
