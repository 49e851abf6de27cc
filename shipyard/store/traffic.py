"""Traffic settings in the control plane: challenger weights and the shadow copy.

The champion is never named here: it is whatever the ``champion`` alias points at, and
it takes the share the challengers leave. So a promotion or a rollback needs no traffic
change, and a challenger that becomes champion simply stops being a challenger.
Writing settings bumps the model's serving generation, so every server picks them up
within one polling interval.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shipyard.errors import ConfigError
from shipyard.jsonable import Record
from shipyard.store.bound_rows import bound_digest, record_row
from shipyard.store.event_kinds import EventKind
from shipyard.store.tables import DeploymentRow

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["KEEP", "TrafficSettings", "bump_deployment", "read_traffic", "write_traffic"]

KEEP: Any = object()
"""``bump_deployment(traffic=KEEP)``: leave the traffic settings as they are."""


@dataclass(frozen=True)
class TrafficSettings(Record):
    """Challenger versions with their live shares, and an optional shadow version."""

    challengers: dict[str, float] = field(default_factory=dict)
    shadow: str | None = None
    shadow_share: float = 1.0  # of requests copied to the shadow, when there is one

    def __post_init__(self) -> None:
        for version, weight in self.challengers.items():
            if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
                raise ConfigError(
                    f"Challenger {version} has weight {weight}.",
                    hint="Give each challenger a share between 0 and 1, e.g. 0.1 for 10 %.",
                )
        total = math.fsum(self.challengers.values())
        if total > 1.0 + 1e-9:
            raise ConfigError(
                f"Challenger weights add up to {total:g}, more than all traffic.",
                hint="Keep the challengers' shares at 1 or less; the champion gets the rest.",
            )
        if not (math.isfinite(self.shadow_share) and 0.0 <= self.shadow_share <= 1.0):
            raise ConfigError(
                f"Shadow share {self.shadow_share} is not between 0 and 1.",
                hint="Use e.g. 1.0 to copy every request to the shadow, 0.25 for a quarter.",
            )

    @property
    def empty(self) -> bool:
        """True when all traffic goes to the champion and nothing is shadowed."""
        return not any(self.challengers.values()) and (self.shadow is None or not self.shadow_share)

    def versions(self) -> set[str]:
        """Every version these settings send traffic to, live or shadow."""
        found = {v for v, weight in self.challengers.items() if weight > 0}
        if self.shadow is not None and self.shadow_share > 0:
            found.add(self.shadow)
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrafficSettings:
        """Settings from :meth:`to_dict`'s form; ``None`` means all traffic to the champion."""
        if not data:
            return cls()
        return cls(
            challengers={str(k): float(v) for k, v in (data.get("challengers") or {}).items()},
            shadow=None if data.get("shadow") is None else str(data["shadow"]),
            shadow_share=float(data.get("shadow_share", 1.0)),
        )


def read_traffic(store: Store, model: str) -> tuple[int, TrafficSettings]:
    """``model``'s serving generation and traffic settings."""
    generation, stored = store.deployment(model)
    return generation, TrafficSettings.from_dict(stored)


def write_traffic(
    store: Store,
    model: str,
    settings: TrafficSettings,
    *,
    session: Session | None = None,
    reason: str = "",
) -> int:
    """Store ``settings`` for ``model``, bump its generation and record an event.

    One transaction (``session``'s, when given): the settings and the leaf that vouches
    for them commit together or not at all.
    """
    with nullcontext(session) if session is not None else store.session() as active:
        row, before = bump_deployment(
            active, model, traffic=None if settings.empty else settings.to_dict()
        )
        record_row(
            store,
            active,
            EventKind.TRAFFIC_CHANGED,
            f"model:{model}",
            {**settings.to_dict(), "generation": row.generation},
            row,
            before=before,
            reason=reason,
        )
        return row.generation


def bump_deployment(
    session: Session, model: str, *, traffic: Any = KEEP
) -> tuple[DeploymentRow, str | None]:
    """Bump ``model``'s serving generation in ``session`` (and set ``traffic``, a JSON-ready
    dict or ``None``); returns the row and the digest of its vouched-for state before.

    The bump is the transaction's first write, so concurrent writers queue on it (the
    row lock on PostgreSQL, the write lock on SQLite) before anything is read.
    """
    now = datetime.now(UTC)
    grow = update(DeploymentRow).where(DeploymentRow.model == model)
    bumped = session.execute(grow.values(generation=DeploymentRow.generation + 1))
    before: str | None = None
    if bumped.rowcount:  # type: ignore[attr-defined]
        row = session.get(DeploymentRow, model, populate_existing=True)
        assert row is not None  # the update just found it, and holds its lock
        before = bound_digest(row)
    else:
        session.execute(_first_bump(session, model, now))
        row = session.get(DeploymentRow, model, populate_existing=True)
        assert row is not None
    if traffic is not KEEP:
        row.traffic = traffic
    row.updated_at = now
    session.flush()
    return row, before


def _first_bump(session: Session, model: str, now: datetime) -> Any:
    """Insert generation 1, or bump the row another writer has just inserted."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(DeploymentRow).values(
        model=model, generation=1, traffic=None, updated_at=now
    )
    return statement.on_conflict_do_update(
        index_elements=[DeploymentRow.model],
        set_={"generation": DeploymentRow.generation + 1, "updated_at": now},
    )
