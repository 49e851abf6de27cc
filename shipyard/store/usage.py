"""Stored compute usage: what each serving worker spent per interval, model, version and role.

Each worker's usage recorder writes its rows (:func:`write_usage`) every
``cost.flush_seconds``; the dashboard's cost figures read them (:func:`read_usage`,
:func:`usage_totals`). Rows are never updated: a worker that answered nothing in an
interval writes its champion's row with ``requests`` 0, so idle time is priced too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Integer, cast, func, literal, select

from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.store.tables import UsageRow

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = [
    "UsageBucket",
    "UsageRecord",
    "UsageTotal",
    "read_usage",
    "usage_buckets",
    "usage_totals",
    "write_usage",
]


@dataclass(frozen=True)
class UsageRecord(Record):
    """One stored interval of one worker for one (model, version, role)."""

    at: datetime
    host: str
    pid: int
    model: str
    version: str
    role: str
    requests: int
    cpu_seconds: float
    gpu_seconds: float
    cost: float
    currency: str

    def row(self) -> UsageRow:
        """The table row holding this record."""
        return UsageRow(
            at=as_utc(self.at),
            host=self.host,
            pid=self.pid,
            model=self.model,
            version=self.version,
            role=self.role,
            requests=self.requests,
            cpu_seconds=self.cpu_seconds,
            gpu_seconds=self.gpu_seconds,
            cost=self.cost,
            currency=self.currency,
        )


@dataclass(frozen=True)
class UsageTotal(Record):
    """Sums over a range for one (version, role) in one currency."""

    version: str
    role: str
    currency: str
    requests: int
    cpu_seconds: float
    gpu_seconds: float
    cost: float


@dataclass(frozen=True)
class UsageBucket(Record):
    """Sums over one time bucket (``start`` ≤ at < start + bucket) for one (version, role)."""

    start: datetime
    version: str
    role: str
    currency: str
    requests: int
    cpu_seconds: float
    gpu_seconds: float
    cost: float


def write_usage(store: Store, records: Sequence[UsageRecord]) -> int:
    """Append ``records`` in one transaction; how many were written."""
    if not records:
        return 0
    with store.session() as session:
        session.add_all([record.row() for record in records])
    return len(records)


def read_usage(
    store: Store,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[UsageRecord]:
    """``model``'s usage rows with ``since <= at < until``, oldest first."""
    query = select(UsageRow).where(UsageRow.model == model).order_by(UsageRow.at, UsageRow.id)
    if since is not None:
        query = query.where(UsageRow.at >= as_utc(since))
    if until is not None:
        query = query.where(UsageRow.at < as_utc(until))
    with store.session() as session:
        return [_record(row) for row in session.scalars(query)]


def usage_totals(
    store: Store,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[UsageTotal]:
    """Per (version, role, currency): requests, CPU and GPU seconds and cost, summed in SQL."""
    return [UsageTotal(*sums) for _, *sums in _sums(store, model, since, until, None)]


def usage_buckets(
    store: Store,
    model: str,
    since: datetime,
    until: datetime,
    bucket_seconds: int,
) -> list[UsageBucket]:
    """Per time bucket (aligned to the epoch), version, role and currency: sums, in SQL.

    Oldest bucket first. The database groups the rows, so a month of 15-second rows
    from several workers comes back as a few hundred sums.
    """
    step = max(1, int(bucket_seconds))
    return [
        UsageBucket(datetime.fromtimestamp(int(number) * step, UTC), *sums)
        for number, *sums in _sums(store, model, since, until, step)
    ]


def _sums(
    store: Store,
    model: str,
    since: datetime | None,
    until: datetime | None,
    step: int | None,
) -> list[tuple[Any, ...]]:
    """(bucket number or None, version, role, currency, requests, cpu, gpu, cost) sums."""
    bucket: Any
    if step is None:
        bucket = literal(None)
    elif store.engine.dialect.name == "sqlite":  # text times: strftime('%s') reads them as UTC
        bucket = cast(func.strftime("%s", UsageRow.at), Integer) // step
    else:
        bucket = cast(func.floor(func.extract("epoch", UsageRow.at) / step), BigInteger)
    keys = (bucket.label("bucket"), UsageRow.version, UsageRow.role, UsageRow.currency)
    query = select(
        *keys,
        func.sum(UsageRow.requests),
        func.sum(UsageRow.cpu_seconds),
        func.sum(UsageRow.gpu_seconds),
        func.sum(UsageRow.cost),
    ).where(UsageRow.model == model)
    if since is not None:
        query = query.where(UsageRow.at >= as_utc(since))
    if until is not None:
        query = query.where(UsageRow.at < as_utc(until))
    grouped = keys if step is not None else keys[1:]
    with store.session() as session:
        found = session.execute(query.group_by(*grouped).order_by(*grouped)).all()
    return [
        (*names, int(n or 0), float(cpu or 0), float(gpu or 0), float(cost or 0))
        for *names, n, cpu, gpu, cost in found
    ]


def _record(row: UsageRow) -> UsageRecord:
    return UsageRecord(
        at=as_utc(row.at),
        host=row.host,
        pid=row.pid,
        model=row.model,
        version=row.version,
        role=row.role,
        requests=row.requests,
        cpu_seconds=row.cpu_seconds,
        gpu_seconds=row.gpu_seconds,
        cost=row.cost,
        currency=row.currency,
    )
