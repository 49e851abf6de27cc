"""The control-plane store: one object per database URL, migrated on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shipyard.store.engine import create_store_engine, unreachable, upgrade
from shipyard.store.event_kinds import EventKind, kind_of
from shipyard.store.events import Event
from shipyard.store.tables import DatasetRow, DeploymentRow, EventRow

__all__ = ["Store"]

_KEEP: Any = object()  # bump_generation: leave the traffic settings as they are


class Store:
    """Control-plane state on SQLite or Postgres; applies migrations on first use."""

    def __init__(self, url: str, *, actor: str, migrate: bool = True) -> None:
        self.url = url
        self.actor = actor  # who the events written through this store name
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

    def record(self, kind: EventKind, subject: str, payload: dict[str, Any] | None = None) -> Event:
        """Append one event and return it; a kind missing from the catalogue is refused."""
        known = kind_of(kind)  # a typo must not start a new kind silently
        row = EventRow(actor=self.actor, kind=known.value, subject=subject, payload=payload or {})
        with self.session() as session:
            session.add(row)
            session.flush()
            return _event(row)

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
            return [_event(row) for row in session.scalars(query)]

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


def _event(row: EventRow) -> Event:
    return Event(
        id=row.id,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        subject=row.subject,
        payload=dict(row.payload or {}),
    )
