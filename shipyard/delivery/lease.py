"""Leases in the control plane, so that two agents never act at once.

A lease is one row of ``shipyard_leases``: its holder, when the holder's term runs out,
and a fencing token that goes up on every acquisition. Taking or renewing it is one
conditional ``UPDATE … WHERE name = :n AND (expires_at <= :now OR holder = :me)``:
SQLite runs one writer at a time, and PostgreSQL re-checks the ``WHERE`` of a waiting
``UPDATE`` against the row the first one committed, so of two agents racing for the
same row exactly one matches it. The very first acquisition inserts the row; the loser
of that race gets an ``IntegrityError`` on the primary key and does not hold it. Rows
are never deleted, so tokens never repeat.

Time comes from the database's clock by default (``clock=None``): every agent compares
against the same clock, so agents on different machines need not agree on the time.
The holder itself counts its term on its own monotonic clock, from *before* it sent the
statement, so it stops acting no later than anyone else can take over; it stops a
little earlier still (0.1 % of the ttl plus 5 ms) for SQLite's millisecond clock and
for clock drift. What remains assumed is that the database's clock is not stepped by
more than that margin during a term. Pass ``clock`` (a callable returning an aware
datetime) to use the application's clock instead — tests do, to move time by hand;
then every agent's clock must agree to within the same margin.

An action that starts just before the term ends may still finish after it; write the
``token`` with such actions and refuse ones that carry an older token than the row's.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, and_, case, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from shipyard.errors import ConfigError, ShipyardError
from shipyard.moments import as_utc
from shipyard.store.tables import LeaseRow

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["Lease", "LeaseKeeper", "LeaseState"]

logger = logging.getLogger(__name__)

_MIN_TTL = 0.1
_MARGIN_RATIO = 1e-3
_MARGIN_SECONDS = 0.005
_TIME = DateTime(timezone=True)


@dataclass(frozen=True)
class LeaseState:
    """A lease as the control plane records it."""

    name: str
    holder: str
    token: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime


class Lease:
    """A named lease that at most one holder has at a time; ``token`` fences stale holders.

    Act only while ``held`` is true: it is a local check that needs no database.
    """

    def __init__(
        self,
        store: Store,
        name: str = "agent",
        *,
        holder: str | None = None,
        ttl: float = 15.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        holder = holder or _default_holder()
        if len(holder) > 200 or len(name) > 200:
            raise ConfigError(
                f"Lease name {name!r} or holder {holder!r} is longer than 200 characters.",
                hint="Use shorter names; the default holder is hostname:pid:random.",
            )
        if not (math.isfinite(ttl) and ttl >= _MIN_TTL):
            raise ConfigError(
                f"Lease ttl {ttl} is not a usable number of seconds.",
                hint=f"Use a ttl of at least {_MIN_TTL} seconds; the default is 15.",
            )
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self._clock = clock
        self._span = ttl * (1 - _MARGIN_RATIO) - _MARGIN_SECONDS
        self._token: int | None = None
        self._deadline: float | None = None  # on the _local() timeline
        self._busy = threading.Lock()  # one database exchange at a time (keeper vs agent)

    @property
    def held(self) -> bool:
        """Whether this holder may act now: it holds the lease and its term has not run out."""
        deadline = self._deadline
        return deadline is not None and self._local() < deadline

    @property
    def token(self) -> int | None:
        """The fencing token of this holder's latest term (kept after the term ends)."""
        return self._token

    def remaining(self) -> float:
        """Seconds left in the current term; 0 when not held."""
        deadline = self._deadline
        return 0.0 if deadline is None else max(0.0, deadline - self._local())

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if it is ours; True if held.

        Raises DatabaseError when the database cannot be reached; ``held`` then still
        counts down the term already granted.
        """
        with self._busy:
            start = self._local()
            try:
                with self.store.session() as session:
                    now = self._now(session)
                    token = session.scalar(self._take(now))
                    if token is None and not self._exists(session):
                        session.add(
                            LeaseRow(
                                name=self.name,
                                holder=self.holder,
                                token=1,
                                acquired_at=now,
                                renewed_at=now,
                                expires_at=now + timedelta(seconds=self.ttl),
                            )
                        )
                        session.flush()
                        token = 1
            except IntegrityError:  # another holder created the row first
                token = None
            self._settle(start, token)
            return token is not None

    def renew(self) -> bool:
        """Extend the current term; False when this holder no longer holds the lease."""
        with self._busy:
            if self._token is None:
                return False
            start = self._local()
            with self.store.session() as session:
                now = self._now(session)
                extend = (
                    update(LeaseRow)
                    .where(
                        LeaseRow.name == self.name,
                        LeaseRow.holder == self.holder,
                        LeaseRow.token == self._token,
                        LeaseRow.expires_at > literal(now, _TIME),
                    )
                    .values(renewed_at=now, expires_at=now + timedelta(seconds=self.ttl))
                    .returning(LeaseRow.token)
                    .execution_options(synchronize_session=False)
                )
                token = session.scalar(extend)
            self._settle(start, token)
            return token is not None

    def release(self) -> None:
        """Give the lease up so another holder can take it at once.

        Best effort: when the database cannot be reached the lease simply runs out.
        """
        with self._busy:
            self._deadline = None
            if self._token is None:
                return
            try:
                with self.store.session() as session:
                    now = self._now(session)
                    session.execute(
                        update(LeaseRow)
                        .where(
                            LeaseRow.name == self.name,
                            LeaseRow.holder == self.holder,
                            LeaseRow.token == self._token,
                            LeaseRow.expires_at > literal(now, _TIME),
                        )
                        .values(expires_at=now)
                        .execution_options(synchronize_session=False)
                    )
            except (ShipyardError, SQLAlchemyError) as exc:
                logger.warning("Could not release lease %r; it runs out by itself: %s", self, exc)

    def current(self) -> LeaseState | None:
        """The lease as recorded now (whoever holds it), or None if never taken."""
        with self.store.session() as session:
            row = session.get(LeaseRow, self.name)
            if row is None:
                return None
            return LeaseState(
                name=row.name,
                holder=row.holder,
                token=int(row.token),
                acquired_at=as_utc(row.acquired_at),
                renewed_at=as_utc(row.renewed_at),
                expires_at=as_utc(row.expires_at),
            )

    def __enter__(self) -> Lease:
        """Try once to acquire; check ``held`` before acting."""
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease(name={self.name!r}, holder={self.holder!r}, token={self._token})"

    def _take(self, now: datetime) -> ReturningUpdate[int]:
        at = literal(now, _TIME)
        # Re-acquiring our own live lease is a renewal: same term, same token.
        ours = and_(LeaseRow.holder == self.holder, LeaseRow.expires_at > at)
        return (
            update(LeaseRow)
            .where(LeaseRow.name == self.name, or_(LeaseRow.expires_at <= at, ours))
            .values(
                holder=self.holder,
                token=case((ours, LeaseRow.token), else_=LeaseRow.token + 1),
                acquired_at=case((ours, LeaseRow.acquired_at), else_=at),
                renewed_at=now,
                expires_at=now + timedelta(seconds=self.ttl),
            )
            .returning(LeaseRow.token)
            .execution_options(synchronize_session=False)
        )

    def _exists(self, session: Session) -> bool:
        found = session.scalar(select(LeaseRow.token).where(LeaseRow.name == self.name))
        return found is not None

    def _settle(self, start: float, token: int | None) -> None:
        if token is None:
            self._deadline = None
        else:
            self._token = int(token)
            self._deadline = start + self._span

    def _local(self) -> float:
        return time.monotonic() if self._clock is None else self._app_now().timestamp()

    def _app_now(self) -> datetime:
        assert self._clock is not None
        return as_utc(self._clock())

    def _now(self, session: Session) -> datetime:
        if self._clock is not None:
            return self._app_now()
        return _database_now(session, self.store.engine.dialect.name)


class LeaseKeeper:
    """Renews a held lease every ttl/3 in a background thread; sets ``lost`` when it cannot.

    An unreachable database does not stop the keeper: it retries, and reports the lease
    lost once the term has run out without a successful renewal.
    """

    def __init__(self, lease: Lease, *, interval: float | None = None) -> None:
        self.lease = lease
        self.interval = interval if interval is not None else lease.ttl / 3
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipyard-lease", daemon=True)

    def start(self) -> LeaseKeeper:
        """Start renewing in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (returns once the thread has ended); the lease is not released."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        # Wake at the end of the term at the latest, so a loss is reported on time.
        while not self._stop.wait(min(self.interval, self.lease.remaining())):
            if not self.lease.held:
                break
            try:
                if not self.lease.renew():
                    break
            except Exception as exc:  # database unreachable, or worse: retry until the term ends
                logger.warning("Could not renew %r: %s", self.lease, str(exc).splitlines()[0])
        if not self._stop.is_set():
            logger.warning("Lost %r; stop acting on it.", self.lease)
            self.lost.set()


def _default_holder() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


def _database_now(session: Session, dialect: str) -> datetime:
    if dialect == "sqlite":
        # CURRENT_TIMESTAMP on SQLite has whole seconds; this has milliseconds.
        text = session.scalar(select(func.strftime("%Y-%m-%d %H:%M:%f", "now")))
        return as_utc(datetime.fromisoformat(str(text)))
    found = session.scalar(select(func.now()))
    if not isinstance(found, datetime):
        raise TypeError(f"the database's clock returned {found!r}, not a datetime")
    return as_utc(found)
