"""Feature view versions and materialisations as stored, each write an audited event.

The registry logic (reading sources, checking schemas, diffs) lives in
:mod:`shipyard.features.registry`; this module only reads and writes
``shipyard_feature_views`` and ``shipyard_materializations``. A new view version is one
transaction with its ``features.applied`` event; a finished materialisation is one with
its ``features.materialized`` event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shipyard.errors import NotFoundError
from shipyard.moments import as_utc
from shipyard.store.audit_leaf import row_digest, row_values
from shipyard.store.event_kinds import EventKind
from shipyard.store.tables import FeatureViewRow, MaterializationRow

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = [
    "Materialization",
    "MaterializationStatus",
    "StoredView",
    "current_views",
    "finish_materialization",
    "last_materialization",
    "materializations",
    "save_view_version",
    "start_materialization",
    "view_versions",
]

MaterializationStatus = Literal["running", "done", "failed"]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


@dataclass(frozen=True)
class StoredView:
    """One applied version of a feature view (or on-demand view)."""

    id: int
    name: str
    version: str
    kind: str
    definition: dict[str, Any]
    source_schema: dict[str, str]
    applied_by: str
    applied_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "definition": self.definition,
            "source_schema": self.source_schema,
            "applied_by": self.applied_by,
            "applied_at": _iso(self.applied_at),
        }


@dataclass(frozen=True)
class Materialization:
    """One copy of a view's rows with event time in ``(start_ts, end_ts]`` to the online store."""

    id: int
    view: str
    version: str
    backend: str
    start_ts: datetime | None
    end_ts: datetime
    started_at: datetime
    finished_at: datetime | None
    rows: int
    max_event_ts: datetime | None
    status: MaterializationStatus
    error: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "id": self.id,
            "view": self.view,
            "version": self.version,
            "backend": self.backend,
            "start_ts": _iso(self.start_ts),
            "end_ts": _iso(self.end_ts),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "rows": self.rows,
            "max_event_ts": _iso(self.max_event_ts),
            "status": self.status,
            "error": self.error,
        }


def _stored(row: FeatureViewRow) -> StoredView:
    return StoredView(
        id=row.id,
        name=row.name,
        version=row.version,
        kind=row.kind,
        definition=dict(row.definition),
        source_schema={str(k): str(v) for k, v in (row.source_schema or {}).items()},
        applied_by=row.applied_by,
        applied_at=as_utc(row.applied_at),
    )


def _materialization(row: MaterializationRow) -> Materialization:
    return Materialization(
        id=row.id,
        view=row.view,
        version=row.version,
        backend=row.backend,
        start_ts=None if row.start_ts is None else as_utc(row.start_ts),
        end_ts=as_utc(row.end_ts),
        started_at=as_utc(row.started_at),
        finished_at=None if row.finished_at is None else as_utc(row.finished_at),
        rows=int(row.rows),
        max_event_ts=None if row.max_event_ts is None else as_utc(row.max_event_ts),
        status=row.status,  # type: ignore[arg-type]
        error=row.error,
    )


def _current_row(session: Any, name: str) -> FeatureViewRow | None:
    query = (
        select(FeatureViewRow)
        .where(FeatureViewRow.name == name)
        .order_by(FeatureViewRow.applied_at.desc(), FeatureViewRow.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def save_view_version(
    store: Store,
    name: str,
    version: str,
    kind: str,
    definition: dict[str, Any],
    source_schema: dict[str, str],
) -> bool:
    """Register ``version`` of view ``name``; True when something changed.

    A new version is a row and a ``features.applied`` event in one transaction. The
    current version again changes nothing (False). An older version applied again
    (a revert) becomes current: its row's ``applied_at``/``applied_by`` move to now and
    the event says ``reapplied``.
    """
    now = datetime.now(UTC)
    try:
        with store.session() as session:
            current = _current_row(session, name)
            if current is not None and current.version == version:
                return False
            before = None if current is None else current.version
            known = session.scalar(
                select(FeatureViewRow).where(
                    FeatureViewRow.name == name, FeatureViewRow.version == version
                )
            )
            if known is None:
                row = FeatureViewRow(
                    name=name,
                    version=version,
                    kind=kind,
                    definition=definition,
                    source_schema=dict(source_schema),
                    applied_by=store.actor,
                    applied_at=now,
                )
                session.add(row)
            else:
                row = known
                row.applied_at = now
                row.applied_by = store.actor
                row.source_schema = dict(source_schema)
            session.flush()
            store.record(
                EventKind.FEATURES_APPLIED,
                f"feature_view:{name}",
                {
                    "view": name,
                    "version": version,
                    "kind": kind,
                    "previous": before,
                    "reapplied": known is not None,
                },
                before=before,
                after=row_digest(row_values(row)),
                session=session,
            )
            return True
    except IntegrityError:  # another apply registered the same version first
        return False


def view_versions(store: Store, name: str) -> list[StoredView]:
    """Every stored version of view ``name``, oldest applied first."""
    query = (
        select(FeatureViewRow)
        .where(FeatureViewRow.name == name)
        .order_by(FeatureViewRow.applied_at, FeatureViewRow.id)
    )
    with store.session() as session:
        return [_stored(row) for row in session.scalars(query)]


def current_views(store: Store) -> dict[str, StoredView]:
    """The current (latest applied) version of every view, by name."""
    newest = (
        select(FeatureViewRow.name, func.max(FeatureViewRow.applied_at).label("at"))
        .group_by(FeatureViewRow.name)
        .subquery()
    )
    query = (
        select(FeatureViewRow)
        .join(
            newest,
            (FeatureViewRow.name == newest.c.name) & (FeatureViewRow.applied_at == newest.c.at),
        )
        .order_by(FeatureViewRow.name, FeatureViewRow.id)
    )
    with store.session() as session:
        return {row.name: _stored(row) for row in session.scalars(query)}


def start_materialization(
    store: Store,
    view: str,
    version: str,
    backend: str,
    start_ts: datetime | None,
    end_ts: datetime,
) -> int:
    """Note a materialisation of ``view`` over ``(start_ts, end_ts]`` as running; its id."""
    row = MaterializationRow(
        view=view,
        version=version,
        backend=backend,
        start_ts=None if start_ts is None else as_utc(start_ts),
        end_ts=as_utc(end_ts),
        started_at=datetime.now(UTC),
        rows=0,
        status="running",
        error="",
    )
    with store.session() as session:
        session.add(row)
        session.flush()
        return int(row.id)


def finish_materialization(
    store: Store,
    materialization_id: int,
    rows: int,
    max_event_ts: datetime | None,
    status: MaterializationStatus,
    error: str = "",
) -> Materialization:
    """Close a materialisation as ``done`` or ``failed``, with a ``features.materialized``
    event in the same transaction."""
    with store.session() as session:
        row = session.get(MaterializationRow, materialization_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"Materialisation {materialization_id} does not exist.")
        row.finished_at = datetime.now(UTC)
        row.rows = rows
        row.max_event_ts = None if max_event_ts is None else as_utc(max_event_ts)
        row.status = status
        row.error = error
        session.flush()
        done = _materialization(row)
        store.record(
            EventKind.FEATURES_MATERIALIZED,
            f"feature_view:{row.view}",
            done.to_dict(),
            reason=error,
            after=row_digest(row_values(row)),
            session=session,
        )
        return done


def materializations(store: Store, view: str, *, done_only: bool = True) -> list[Materialization]:
    """``view``'s materialisations, oldest first (only the finished ``done`` ones by default)."""
    query = select(MaterializationRow).where(MaterializationRow.view == view)
    if done_only:
        query = query.where(MaterializationRow.status == "done")
    with store.session() as session:
        return [
            _materialization(row) for row in session.scalars(query.order_by(MaterializationRow.id))
        ]


def last_materialization(store: Store, view: str) -> Materialization | None:
    """``view``'s latest ``done`` materialisation, if any."""
    query = (
        select(MaterializationRow)
        .where(MaterializationRow.view == view, MaterializationRow.status == "done")
        .order_by(MaterializationRow.id.desc())
        .limit(1)
    )
    with store.session() as session:
        row = session.scalar(query)
        return None if row is None else _materialization(row)
