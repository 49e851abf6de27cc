"""A model's history: every alias move, override and approval, in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipyard.governance.approvals import approvals
from shipyard.registry.aliases import alias_moves
from shipyard.store import Store

__all__ = ["HistoryEntry", "history"]


@dataclass(frozen=True)
class HistoryEntry:
    """One line of history: when, who, what, from which version to which, why."""

    at: datetime
    actor: str
    action: str
    alias: str | None
    from_version: str | None
    to_version: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "reason": self.reason,
        }


def history(store: Store, name: str) -> list[HistoryEntry]:
    """Alias moves (promotions, overrides, rollbacks) and approvals of ``name``, oldest first."""
    entries = [
        HistoryEntry(m.at, m.actor, m.action, m.alias, m.from_version, m.to_version, m.reason)
        for m in alias_moves(store, name)
    ]
    entries += [
        HistoryEntry(a.at, a.actor, "approve", None, None, a.version, a.comment)
        for a in approvals(store, name)
    ]
    return sorted(entries, key=lambda entry: entry.at)
