"""What the pages read from the control plane, in SQL: no MLflow client is opened here.

``import mlflow`` alone costs about a second, so the fleet and model pages read the
registry's own tables (the store's database is MLflow's) and Shipyard's tables directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, func, or_, select, table
from sqlalchemy.orm import Session

from shipyard.moments import as_utc
from shipyard.registry import mlflow_tables
from shipyard.store import Store
from shipyard.store.events import Event, event_of
from shipyard.store.tables import AliasMoveRow, EventRow, MonitorRunRow

__all__ = [
    "ANNOTATED_KINDS",
    "StoredRun",
    "champion_moves",
    "current_alias",
    "latest_runs",
    "model_events",
    "monitor_runs",
    "registered_versions",
    "subject_filter",
]

ANNOTATED_KINDS = (
    "alias.promote",
    "alias.rollback",
    "alias.override",
    "model_version.approved",
    "traffic.changed",
    "rollout.started",
    "rollout.running",
    "rollout.paused",
    "rollout.promoting",
    "rollout.awaiting_promotion",
    "rollout.promoted",
    "rollout.rolled_back",
    "rollout.aborted",
    "rollout.alert_delivered",
    "alert.opened",
    "alert.delivered",
    "retrain_requested",
    "ct.cycle_started",
    "ct.cycle_finished",
    "monitor.paused",
)
"""The audited events drawn as annotations on the charts: the story from an alert (and the
page it sent) through the retrain it requested and the CT cycle, to promotions and
rollbacks (and the owner paged about them)."""

_versions = table(
    "model_versions",
    column("workspace"),
    column("name"),
    column("version"),
    column("current_stage"),
)


@dataclass(frozen=True)
class StoredRun:
    """One stored monitor run: when, which version, its level and its result."""

    at: datetime
    version: str
    level: str
    rows: int
    result: dict[str, Any]


def champion_moves(store: Store, model: str) -> list[tuple[datetime, str | None]]:
    """Every move of ``model``'s champion alias, oldest first: (when, to which version)."""
    query = (
        select(AliasMoveRow.at, AliasMoveRow.to_version)
        .where(AliasMoveRow.model == model, AliasMoveRow.alias == "champion")
        .order_by(AliasMoveRow.id)
    )
    with store.session() as session:
        return [(as_utc(at), version) for at, version in session.execute(query)]


def current_alias(store: Store, model: str, alias: str) -> str | None:
    """The version ``alias`` points at in the registry's tables (None without a registry)."""
    with store.session() as session:
        if not mlflow_tables.has_registry(session):
            return None
        return mlflow_tables.get_alias(session, model, alias)


def registered_versions(store: Store, model: str) -> list[str]:
    """``model``'s registered versions (deleted ones left out), oldest first."""
    with store.session() as session:
        if not mlflow_tables.has_registry(session):
            return []
        found = session.execute(
            select(_versions.c.version).where(
                _versions.c.workspace == mlflow_tables.DEFAULT_WORKSPACE,
                _versions.c.name == model,
                _versions.c.current_stage != "Deleted_Internal",
            )
        )
        return [str(number) for number in sorted(int(row[0]) for row in found)]


def subject_filter(model: str) -> Any:
    """The SQL condition matching every event about ``model``: the model, a version, an
    alias, a roll-out or an alert (``model:M``, ``model:M/…``, ``model:M@…``, ``alert:M/…``)."""
    escaped = model.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(
        EventRow.subject == f"model:{model}",
        EventRow.subject.like(f"model:{escaped}/%", escape="\\"),
        EventRow.subject.like(f"model:{escaped}@%", escape="\\"),
        EventRow.subject.like(f"alert:{escaped}/%", escape="\\"),
    )


def model_events(
    store: Store,
    model: str,
    since: datetime | None,
    until: datetime | None,
    kinds: tuple[str, ...] = ANNOTATED_KINDS,
    limit: int = 1000,
) -> list[Event]:
    """``model``'s events of ``kinds`` in ``[since, until)``, oldest first (at most ``limit``)."""
    query = select(EventRow).where(subject_filter(model), EventRow.kind.in_(kinds))
    if since is not None:
        query = query.where(EventRow.at >= since)
    if until is not None:
        query = query.where(EventRow.at < until)
    query = query.order_by(EventRow.seq.desc()).limit(limit)
    with store.session() as session:
        return [event_of(row) for row in reversed(list(session.scalars(query)))]


def monitor_runs(store: Store, model: str, since: datetime, until: datetime) -> list[StoredRun]:
    """``model``'s stored monitor runs in ``[since, until)``, oldest first."""
    query = (
        select(MonitorRunRow)
        .where(
            MonitorRunRow.model == model,
            MonitorRunRow.created_at >= since,
            MonitorRunRow.created_at < until,
        )
        .order_by(MonitorRunRow.created_at, MonitorRunRow.id)
    )
    with store.session() as session:
        return [_stored(row) for row in session.scalars(query)]


def latest_runs(session: Session) -> dict[str, StoredRun]:
    """Every model's most recent monitor run (the last one stored), in two queries."""
    newest = select(func.max(MonitorRunRow.id)).group_by(MonitorRunRow.model)
    ids = [row[0] for row in session.execute(newest)]
    if not ids:
        return {}
    rows = session.scalars(select(MonitorRunRow).where(MonitorRunRow.id.in_(ids)))
    return {row.model: _stored(row) for row in rows}


def _stored(row: MonitorRunRow) -> StoredRun:
    return StoredRun(as_utc(row.created_at), row.version, row.level, row.rows, dict(row.result))
