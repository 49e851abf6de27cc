"""Compute cost as the dashboard shows it: serving per version and arm, training per version
and per continuous-training cycle.

    serving_cost(project, "churn", since, until, 300)   # ServingCost: 5-minute buckets
    cost_summary(project, "churn", since, until)        # CostSummary: totals, per 1,000
    training_cost(project, "churn")                     # TrainingCosts: versions, CT cycles

Serving figures come from the ``shipyard_usage`` rows each serving worker stores every
``cost.flush_seconds`` (:mod:`shipyard.serving.usage`): CPU seconds shared by the
predictions answered, priced when they were taken. Rows in another currency than
``cost.currency`` (the price list changed) are left out and counted in
``other_currency_rows``. Training figures are the ``cost`` payload of each version's
``model_version.registered`` event (:mod:`shipyard.training.cost`); a CT cycle's is its
candidate's. Versions trained before cost was measured have none and are listed as such.

Each needs ``models:read`` on the model. A range or bucket the caller must fix raises
:class:`~shipyard.errors.RequestError` (400) saying what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.access import Scope
from shipyard.errors import RequestError
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.store import CycleRow, EventKind
from shipyard.store.usage import usage_buckets, usage_totals

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = [
    "CostBucket",
    "CostSummary",
    "CostTotal",
    "CycleCost",
    "ServingCost",
    "TrainingCosts",
    "VersionCost",
    "cost_summary",
    "serving_cost",
    "training_cost",
]

MAX_BUCKETS = 10_000  # more points than any chart can show


def per_thousand(cost: float, requests: int) -> float | None:
    """Cost per 1,000 predictions, or None without predictions (idle time only)."""
    return cost * 1000 / requests if requests > 0 else None


@dataclass(frozen=True)
class CostBucket(Record):
    """One (version, role) over one time bucket: ``start`` ≤ at < ``start`` + bucket."""

    start: datetime
    version: str
    role: str
    requests: int
    cpu_seconds: float
    gpu_seconds: float
    cost: float
    cost_per_1000: float | None


@dataclass(frozen=True)
class ServingCost(Record):
    """A model's serving cost over a range, bucketed, per version and role."""

    model: str
    currency: str
    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: tuple[CostBucket, ...]
    other_currency_rows: int = 0


@dataclass(frozen=True)
class CostTotal(Record):
    """One (version, role)'s totals over a range."""

    version: str
    role: str
    requests: int
    cpu_seconds: float
    gpu_seconds: float
    cost: float
    cost_per_1000: float | None


@dataclass(frozen=True)
class CostSummary(Record):
    """A model's serving totals over a range: per (version, role), and overall."""

    model: str
    currency: str
    since: datetime | None
    until: datetime | None
    totals: tuple[CostTotal, ...]
    requests: int
    cpu_seconds: float
    cost: float
    cost_per_1000: float | None
    other_currency_rows: int = 0

    def total(self, version: str, role: str) -> CostTotal | None:
        """The totals of ``version`` in ``role``, if it served in the range."""
        return next((t for t in self.totals if (t.version, t.role) == (version, role)), None)


@dataclass(frozen=True)
class VersionCost(Record):
    """What training one registered version cost (None: trained before cost was measured)."""

    version: str
    at: datetime
    run_id: str | None
    trigger: str | None
    cpu_seconds: float | None
    gpu_seconds: float | None
    wall_seconds: float | None
    amount: float | None
    currency: str | None


@dataclass(frozen=True)
class CycleCost(Record):
    """What one continuous-training cycle's retrain cost: its candidate's training."""

    cycle: int
    state: str
    cause: str
    at: datetime
    candidate: str | None
    cpu_seconds: float | None
    amount: float | None
    currency: str | None


@dataclass(frozen=True)
class TrainingCosts(Record):
    """A model's training cost per version (oldest first) and per CT cycle (newest first)."""

    model: str
    currency: str
    versions: tuple[VersionCost, ...]
    cycles: tuple[CycleCost, ...]
    total: float  # the versions' amounts in ``currency``
    retraining: float  # the CT cycles' amounts in ``currency``


def serving_cost(
    project: Project,
    model: str,
    since: datetime,
    until: datetime,
    bucket_seconds: int = 300,
) -> ServingCost:
    """``model``'s serving cost from ``since`` to ``until`` in buckets of ``bucket_seconds``.

    Buckets align to the epoch (a 300-second bucket starts at :00, :05 …); a bucket
    holds the intervals the workers stored in it.
    """
    project.authorize(Scope.MODELS_READ, model)
    since, until = _range(since, until)
    step = _bucket(bucket_seconds, since, until)
    currency = project.config.cost.currency
    found = usage_buckets(project.store, model, since, until, step)
    buckets = tuple(
        CostBucket(
            b.start,
            b.version,
            b.role,
            b.requests,
            b.cpu_seconds,
            b.gpu_seconds,
            b.cost,
            per_thousand(b.cost, b.requests),
        )
        for b in found
        if b.currency == currency
    )
    other = sum(1 for b in found if b.currency != currency)
    return ServingCost(model, currency, since, until, step, buckets, other)


def cost_summary(
    project: Project,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> CostSummary:
    """``model``'s serving totals per (version, role) and overall, with cost per 1,000."""
    project.authorize(Scope.MODELS_READ, model)
    if since is not None and until is not None:
        since, until = _range(since, until)
    currency = project.config.cost.currency
    found = usage_totals(project.store, model, since, until)
    totals = tuple(
        CostTotal(
            t.version,
            t.role,
            t.requests,
            t.cpu_seconds,
            t.gpu_seconds,
            t.cost,
            per_thousand(t.cost, t.requests),
        )
        for t in found
        if t.currency == currency
    )
    requests = sum(t.requests for t in totals)
    cost = sum(t.cost for t in totals)
    return CostSummary(
        model,
        currency,
        since,
        until,
        totals,
        requests,
        sum(t.cpu_seconds for t in totals),
        cost,
        per_thousand(cost, requests),
        sum(1 for t in found if t.currency != currency),
    )


def training_cost(project: Project, model: str) -> TrainingCosts:
    """``model``'s training cost per registered version and per continuous-training cycle."""
    project.authorize(Scope.MODELS_READ, model)
    store = project.store
    currency = project.config.cost.currency
    events = store.events(
        kind=EventKind.MODEL_VERSION_REGISTERED.value, subject=f"model:{model}/", limit=100_000
    )
    versions: dict[str, VersionCost] = {}
    for event in reversed(events):  # oldest first: a re-registration keeps the newest
        version = event.subject.rsplit("/", 1)[-1]
        versions[version] = _version_cost(version, event.at, event.payload)
    with store.session() as session:
        rows = list(
            session.scalars(
                select(CycleRow).where(CycleRow.model == model).order_by(CycleRow.id.desc())
            )
        )
    cycles = tuple(_cycle_cost(row, versions.get(row.candidate or "")) for row in rows)
    ordered = tuple(sorted(versions.values(), key=lambda v: (v.at, _number(v.version))))
    return TrainingCosts(
        model,
        currency,
        ordered,
        cycles,
        sum(v.amount or 0.0 for v in ordered if v.currency == currency),
        sum(c.amount or 0.0 for c in cycles if c.currency == currency),
    )


def _version_cost(version: str, at: datetime, payload: dict[str, Any]) -> VersionCost:
    found = payload.get("cost")
    cost: dict[str, Any] = found if isinstance(found, dict) else {}
    return VersionCost(
        version=version,
        at=as_utc(at),
        run_id=payload.get("run_id"),
        trigger=payload.get("trigger"),
        cpu_seconds=_float(cost.get("cpu_seconds")),
        gpu_seconds=_float(cost.get("gpu_seconds")),
        wall_seconds=_float(cost.get("wall_seconds")),
        amount=_float(cost.get("amount")),
        currency=cost.get("currency"),
    )


def _cycle_cost(row: CycleRow, trained: VersionCost | None) -> CycleCost:
    return CycleCost(
        cycle=row.id,
        state=row.state,
        cause=row.cause,
        at=as_utc(row.created_at),
        candidate=row.candidate,
        cpu_seconds=trained.cpu_seconds if trained else None,
        amount=trained.amount if trained else None,
        currency=trained.currency if trained else None,
    )


def _range(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    since, until = as_utc(since), as_utc(until)
    if until <= since:
        raise RequestError(
            f"The range ends ({until.isoformat()}) before it starts ({since.isoformat()}): "
            "give since < until."
        )
    return since, until


def _bucket(seconds: Any, since: datetime, until: datetime) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 1:
        raise RequestError(
            f"bucket_seconds must be a whole number of seconds, at least 1 (got {seconds!r})."
        )
    step = int(seconds)
    if (until - since).total_seconds() / step > MAX_BUCKETS:
        raise RequestError(
            f"{step}-second buckets over {until - since} make more than {MAX_BUCKETS} "
            "points: choose a larger bucket or a shorter range."
        )
    return step


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _number(version: str) -> int:
    return int(version) if version.isdigit() else 0
