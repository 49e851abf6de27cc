"""Stored monitor runs: what the monitor found, kept apart from the code that computes it.

The monitor writes a run; the server's metrics, continuous training and the CLI read
the latest one. None of them imports the monitor to do so.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.store.tables import MonitorRunRow

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = ["latest_run", "monitor_history", "save_monitor_run"]


def save_monitor_run(store: Store, row: MonitorRunRow) -> None:
    """Keep one monitor run."""
    with store.session() as session:
        session.add(row)


def monitor_history(
    store: Store, name: str, limit: int = 48
) -> list[tuple[datetime, dict[str, float]]]:
    """Earlier runs, oldest first: per feature, the score as a share of its retrain level."""
    query = (
        select(MonitorRunRow)
        .where(MonitorRunRow.model == name)
        .order_by(MonitorRunRow.created_at.desc())
        .limit(limit)
    )
    with store.session() as session:
        rows = list(session.scalars(query))
    return [(row.created_at, dict(row.result.get("scaled", {}))) for row in reversed(rows)]


def latest_run(store: Store, name: str) -> dict[str, Any] | None:
    """The stored result of ``name``'s most recent monitor run, if any."""
    query = (
        select(MonitorRunRow.result)
        .where(MonitorRunRow.model == name)
        .order_by(MonitorRunRow.created_at.desc())
        .limit(1)
    )
    with store.session() as session:
        found = session.scalar(query)
    return dict(found) if found else None
