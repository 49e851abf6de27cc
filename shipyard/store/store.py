"""The control-plane store: one object per database URL, migrated on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shipyard.jsonable import plain
from shipyard.store.audit_leaf import leaf_data
from shipyard.store.engine import create_store_engine, unreachable, upgrade
from shipyard.store.event_kinds import EventKind, kind_of
from shipyard.store.events import Event, event_of
from shipyard.store.merkle import CompactRange, leaf_hash
from shipyard.store.tables import AuditHeadRow, DatasetRow, DeploymentRow, EventRow

__all__ = ["Store"]

_KEEP: Any = object()  # bump_generation: leave the traffic settings as they are


class Store:
    """Control-plane state on SQLite or Postgres; applies migrations on first use."""

    def __init__(
        self,
        url: str,
        *,
        actor: str,
        token_id: str | None = None,
        role: str | None = None,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self.actor = actor  # who the events written through this store name
        self.token_id = token_id  # how they authenticated
        self.role = role
        self.engine: Engine = create_store_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A short write transaction: committed on success, rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise unreachable(self.engine, exc) from None
        except SQLAlchemyError:
            session.rollback()
            raise
        finally:
            session.close()

    def record(
        self,
        kind: EventKind,
        subject: str,
        payload: dict[str, Any] | None = None,
        *,
        reason: str = "",
        before: str | None = None,
        after: str | None = None,
        request_id: str | None = None,
        session: Session | None = None,
    ) -> Event:
        """Append one event, a leaf of the audit log, and return it.

        This is the one audited write path: every state change records an event here,
        in the same transaction as the rows it changes when ``session`` is given.
        ``before``/``after`` are digests of the state it changed
        (``shipyard.store.audit_leaf.row_digest``). A kind missing from the catalogue is
        refused.
        """
        known = kind_of(kind)  # a typo must not start a new kind silently
        fields: dict[str, Any] = {
            "at": datetime.now(UTC),
            "actor": self.actor,
            "token_id": self.token_id,
            "role": self.role,
            "kind": known.value,
            "subject": subject,
            "payload": plain(payload or {}),
            "reason": reason,
            "request_id": request_id,
            "before": before,
            "after": after,
        }
        if session is not None:
            return _append(session, fields)
        with self.session() as own:
            return _append(own, fields)

    def events(
        self,
        *,
        kind: str | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Most recent events first, optionally filtered by kind and subject prefix."""
        query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(EventRow.kind == kind)
        if subject is not None:
            query = query.where(EventRow.subject.startswith(subject, autoescape=True))
        with self.session() as session:
            return [event_of(row) for row in session.scalars(query)]

    def save_dataset(self, row: DatasetRow) -> bool:
        """Remember a dataset snapshot; returns False when the digest was known already."""
        with self.session() as session:
            if session.get(DatasetRow, row.digest) is not None:
                return False
            session.add(row)
            return True

    def dataset(self, digest: str) -> DatasetRow | None:
        """The dataset snapshot with this digest, if known."""
        with self.session() as session:
            return session.get(DatasetRow, digest)

    def bump_generation(self, model: str, *, traffic: Any = _KEEP) -> int:
        """Tell every server of ``model`` that its aliases changed; returns the new generation.

        Pass ``traffic`` (a JSON-ready dict, or ``None`` to clear) to replace the model's
        traffic settings in the same transaction.
        """
        values: dict[str, Any] = {
            "generation": DeploymentRow.generation + 1,
            "updated_at": datetime.now(UTC),
        }
        if traffic is not _KEEP:
            values["traffic"] = traffic
        bump = update(DeploymentRow).where(DeploymentRow.model == model).values(**values)
        for _attempt in range(3):
            try:
                with self.session() as session:
                    if session.execute(bump).rowcount == 0:  # type: ignore[attr-defined]
                        first = None if traffic is _KEEP else traffic
                        session.add(DeploymentRow(model=model, generation=1, traffic=first))
                        session.flush()
                    return int(
                        session.scalar(
                            select(DeploymentRow.generation).where(DeploymentRow.model == model)
                        )
                        or 0
                    )
            except IntegrityError:  # another process inserted the row first: bump it
                continue
        raise RuntimeError(f"could not bump the serving generation of {model!r}")

    def generation(self, model: str) -> int:
        """The current serving generation of ``model`` (0 before its first alias move)."""
        with self.session() as session:
            found = session.scalar(
                select(DeploymentRow.generation).where(DeploymentRow.model == model)
            )
            return int(found or 0)

    def deployment(self, model: str) -> tuple[int, dict[str, Any] | None]:
        """``model``'s generation and traffic settings, read together."""
        with self.session() as session:
            row = session.get(DeploymentRow, model)
            if row is None:
                return 0, None
            return int(row.generation), (dict(row.traffic) if row.traffic else None)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def _append(session: Session, fields: dict[str, Any]) -> Event:
    """Add the leaf after the head: the head row is updated first, so it is locked
    (PostgreSQL: a row lock; SQLite: the write lock) until the transaction ends, and
    concurrent writers take their ``seq`` one after another."""
    grow = update(AuditHeadRow).where(AuditHeadRow.id == 1).values(size=AuditHeadRow.size + 1)
    session.execute(grow)
    head = session.get(AuditHeadRow, 1, populate_existing=True)
    if head is None:  # the migration writes the head row; a database without it is broken
        raise RuntimeError("the audit log's head row is missing; run the migrations")
    tree = CompactRange.from_hashes(head.size - 1, head.frontier)
    fields["seq"] = head.size
    hashed = leaf_hash(leaf_data(fields))
    tree.append(hashed)
    head.frontier = tree.to_hashes()
    head.root = tree.root().hex()
    row = EventRow(**fields, leaf_hash=hashed.hex())
    session.add(row)
    session.flush()
    return event_of(row)
