"""The database side of caps: stored policies, and usage summed over every worker.

Usage rows are keyed by (model, tenant, unit, window length, window start). Each worker
adds what it counted since its last sync with one atomic upsert per key
(``INSERT … ON CONFLICT DO UPDATE SET used = used + excluded.used``, the same statement
on SQLite and PostgreSQL), then reads back the totals, so two gateways sharing the
control-plane database enforce one cap.

Setting and removing a stored cap is authorised (``models:deploy`` on the model) and
audited (``llm.cap_set``) in the same transaction; reading them needs ``models:read``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from shipyard.access import Scope
from shipyard.errors import ConfigError, NotFoundError
from shipyard.jsonable import Record
from shipyard.llm.cap_policies import UNITS, CapPolicy, policies_of_settings
from shipyard.moments import as_utc
from shipyard.store import EventKind, LlmCapPolicyRow, LlmCapUsageRow
from shipyard.store.audit_leaf import row_digest, row_values

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "CapRecord",
    "UsageKey",
    "UsageRecord",
    "add_usage",
    "current_usage",
    "list_caps",
    "load_policies",
    "read_usage",
    "remove_cap",
    "set_cap",
]

# (tenant, unit, window_seconds, window_start as unix seconds)
UsageKey = tuple[str, str, int, int]


@dataclass(frozen=True)
class CapRecord(Record):
    """A cap as listings show it: where it comes from, and who stored it when."""

    model: str
    tenant: str
    unit: str
    quota: float
    window_seconds: int
    source: str  # config | stored
    created_by: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class UsageRecord(Record):
    """What one tenant used in one current window, summed over every gateway."""

    model: str
    tenant: str
    unit: str
    window_seconds: int
    window_start: datetime
    used: float


def load_policies(store: Store, model: str) -> list[CapPolicy]:
    """The active stored caps of ``model``."""
    query = select(LlmCapPolicyRow).where(
        LlmCapPolicyRow.model == model, LlmCapPolicyRow.active.is_(True)
    )
    with store.session() as session:
        return [
            CapPolicy(row.quota, row.window_seconds, _unit(row.unit), row.tenant, "stored")
            for row in session.scalars(query)
        ]


def add_usage(store: Store, model: str, deltas: Mapping[UsageKey, float]) -> None:
    """Add each key's delta to its usage row in one transaction (atomic per row)."""
    if not deltas:
        return
    with store.session() as session:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        for (tenant, unit, window, start), delta in sorted(deltas.items()):
            statement = insert(LlmCapUsageRow).values(
                model=model,
                tenant=tenant,
                unit=unit,
                window_seconds=window,
                window_start=_moment(start),
                used=delta,
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=[
                        LlmCapUsageRow.model,
                        LlmCapUsageRow.tenant,
                        LlmCapUsageRow.unit,
                        LlmCapUsageRow.window_seconds,
                        LlmCapUsageRow.window_start,
                    ],
                    set_={"used": LlmCapUsageRow.used + statement.excluded.used},
                )
            )


def read_usage(
    store: Store, model: str, windows: Iterable[tuple[int, int]]
) -> dict[UsageKey, float]:
    """Every tenant's total in the given (window length, window start) pairs."""
    wanted = sorted(set(windows))
    if not wanted:
        return {}
    match = or_(
        *(
            and_(
                LlmCapUsageRow.window_seconds == window,
                LlmCapUsageRow.window_start == _moment(start),
            )
            for window, start in wanted
        )
    )
    query = select(LlmCapUsageRow).where(LlmCapUsageRow.model == model, match)
    with store.session() as session:
        return {
            (row.tenant, row.unit, row.window_seconds, int(as_utc(row.window_start).timestamp())): (
                float(row.used)
            )
            for row in session.scalars(query)
        }


def set_cap(
    project: Project,
    model: str,
    *,
    tenant: str,
    quota: float,
    unit: str = "request",
    window_seconds: int = 3600,
    reason: str = "",
) -> CapRecord:
    """Store a cap for ``tenant`` (``*`` for all) on ``model``, replacing the one with the
    same tenant, unit and window; needs ``models:deploy`` and records ``llm.cap_set``."""
    project.authorize(Scope.MODELS_DEPLOY, model)
    _check(tenant, unit, quota, window_seconds)
    store = project.store
    with store.session() as session:
        old = _active(session, model, tenant, unit, window_seconds)
        before = None
        if old is not None:
            before = _digest(old)
            old.active = False
        row = LlmCapPolicyRow(
            model=model,
            tenant=tenant,
            unit=unit,
            quota=float(quota),
            window_seconds=int(window_seconds),
            active=True,
            created_by=store.actor,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        payload = {
            "action": "set",
            "tenant": tenant,
            "unit": unit,
            "quota": float(quota),
            "window_seconds": int(window_seconds),
            "previous_quota": None if old is None else old.quota,
        }
        store.record(
            EventKind.LLM_CAP_SET,
            f"model:{model}",
            payload,
            reason=reason,
            before=before,
            after=_digest(row),
            session=session,
        )
        return _record(row)


def remove_cap(
    project: Project,
    model: str,
    *,
    tenant: str,
    unit: str = "request",
    window_seconds: int = 3600,
    reason: str = "",
) -> CapRecord:
    """Deactivate the stored cap with this tenant, unit and window (kept for the audit);
    needs ``models:deploy`` and records ``llm.cap_set`` with action ``remove``."""
    project.authorize(Scope.MODELS_DEPLOY, model)
    store = project.store
    with store.session() as session:
        row = _active(session, model, tenant, unit, window_seconds)
        if row is None:
            raise NotFoundError(
                f"Model {model!r} has no stored cap for tenant {tenant!r} of {_units(unit)} per "
                f"{window_seconds} s.",
                hint=f"`shipyard llm caps list --model {model}` shows its caps.",
            )
        before = _digest(row)
        row.active = False
        session.flush()
        payload = {
            "action": "remove",
            "tenant": tenant,
            "unit": unit,
            "quota": row.quota,
            "window_seconds": row.window_seconds,
        }
        store.record(
            EventKind.LLM_CAP_SET,
            f"model:{model}",
            payload,
            reason=reason,
            before=before,
            after=_digest(row),
            session=session,
        )
        return _record(row)


def list_caps(project: Project, model: str) -> list[CapRecord]:
    """The caps of ``model``: those in shipyard.yaml, then the stored ones (``models:read``)."""
    project.authorize(Scope.MODELS_READ, model)
    configured = [
        CapRecord(model, p.tenant, p.unit, p.quota, p.window_seconds, "config")
        for p in policies_of_settings(project.config.llm.caps)
    ]
    query = (
        select(LlmCapPolicyRow)
        .where(LlmCapPolicyRow.model == model, LlmCapPolicyRow.active.is_(True))
        .order_by(LlmCapPolicyRow.tenant, LlmCapPolicyRow.unit, LlmCapPolicyRow.window_seconds)
    )
    with project.store.session() as session:
        stored = [_record(row) for row in session.scalars(query)]
    return configured + stored


def current_usage(project: Project, model: str, *, now: float | None = None) -> list[UsageRecord]:
    """What each tenant used in the current window of every cap of ``model``, as synced
    by the gateways (``models:read``); the most used first."""
    project.authorize(Scope.MODELS_READ, model)
    moment = time.time() if now is None else now
    windows = {(cap.window_seconds, int(moment // cap.window_seconds) * cap.window_seconds)
               for cap in list_caps(project, model)}  # fmt: skip
    totals = read_usage(project.store, model, windows)
    records = [
        UsageRecord(model, tenant, unit, window, _moment(start), used)
        for (tenant, unit, window, start), used in totals.items()
    ]
    return sorted(records, key=lambda r: (-r.used, r.tenant, r.unit, r.window_seconds))


def _check(tenant: str, unit: str, quota: float, window_seconds: int) -> None:
    from shipyard.llm.cap_policies import _TENANT  # one rule for names everywhere

    if tenant != "*" and not _TENANT.match(tenant):
        raise ConfigError(
            f"--tenant {tenant[:60]!r} is not a tenant name.",
            hint="Letters, digits and . _ : @ -, at most 200 characters; * for every tenant.",
        )
    if unit not in UNITS:
        raise ConfigError(f"--unit {unit!r} is neither request nor cents.")
    if not quota > 0 or quota == float("inf"):
        raise ConfigError(f"--quota {quota!r} must be a positive number.")
    if window_seconds < 1:
        raise ConfigError(f"--window {window_seconds!r} must be at least one second.")


def _active(
    session: Session, model: str, tenant: str, unit: str, window: int
) -> LlmCapPolicyRow | None:
    return session.scalars(
        select(LlmCapPolicyRow).where(
            LlmCapPolicyRow.model == model,
            LlmCapPolicyRow.tenant == tenant,
            LlmCapPolicyRow.unit == unit,
            LlmCapPolicyRow.window_seconds == window,
            LlmCapPolicyRow.active.is_(True),
        )
    ).first()


def _record(row: LlmCapPolicyRow) -> CapRecord:
    return CapRecord(
        row.model,
        row.tenant,
        row.unit,
        row.quota,
        row.window_seconds,
        "stored",
        row.created_by,
        as_utc(row.created_at),
    )


def _digest(row: LlmCapPolicyRow) -> str:
    values: dict[str, Any] = row_values(row)
    return row_digest(values)


def _moment(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def _unit(text: str) -> Any:
    return "cents" if text == "cents" else "request"


def _units(unit: str) -> str:
    return "requests" if unit == "request" else "cents"
