"""A model's history: every alias move, override and approval, in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shipyard.governance.approvals import approvals
from shipyard.jsonable import Record
from shipyard.registry.aliases import alias_moves
from shipyard.store import Store

__all__ = ["HistoryEntry", "history"]


@dataclass(frozen=True)
class HistoryEntry(Record):
    """One line of history: when, who, what, from which version to which, why."""

    at: datetime
    actor: str
    action: str
    alias: str | None
    from_version: str | None
    to_version: str | None
    reason: str


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
