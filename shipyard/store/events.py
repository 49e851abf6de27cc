"""The event log: every state change, with time, actor, kind, subject and payload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Event", "as_utc"]


def as_utc(moment: datetime) -> datetime:
    """``moment`` with its time zone; SQLite hands back naive UTC datetimes."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """One recorded state change."""

    id: int
    at: datetime
    actor: str
    kind: str
    subject: str
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "id": self.id,
            "at": as_utc(self.at).isoformat(),
            "actor": self.actor,
            "kind": self.kind,
            "subject": self.subject,
            "payload": self.payload,
        }
