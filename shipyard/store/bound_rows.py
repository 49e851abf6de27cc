"""Rows an audit leaf vouches for: which tables, which columns, and the one way to write them.

An alias move, an approval, a token, a roll-out, a CT cycle or a model's traffic split is
a row in its own table, and a state change. :func:`record_row` records its event in the
caller's transaction, with the row's table and key in the payload (``payload["row"]``)
and the digest of the row as stored as the leaf's ``after``. ``shipyard audit verify``
then finds every such row again and compares: a row edited, deleted or inserted with
plain SQL no longer matches the leaf that vouched for it, and the leaf cannot be changed
without breaking the tree.

Columns that change without a state change are left out of the digest: a token's
``last_used_at``, and a deployment's serving generation and update time (every alias
move bumps them; the traffic split is what the leaf vouches for).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from shipyard.store.audit_leaf import row_digest, row_values
from shipyard.store.event_kinds import EventKind
from shipyard.store.events import Event
from shipyard.store.tables import (
    AliasMoveRow,
    ApprovalRow,
    Base,
    CycleRow,
    DeploymentRow,
    RolloutRow,
    TokenRow,
)

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = ["BOUND_TABLES", "bound_digest", "bound_values", "record_row", "row_ref"]

BOUND_TABLES: dict[str, type[Base]] = {
    row.__tablename__: row
    for row in (AliasMoveRow, ApprovalRow, TokenRow, RolloutRow, CycleRow, DeploymentRow)
}
"""Every table whose rows audit leaves vouch for, by table name."""

_LEFT_OUT: dict[str, frozenset[str]] = {
    TokenRow.__tablename__: frozenset({"last_used_at"}),
    DeploymentRow.__tablename__: frozenset({"generation", "updated_at"}),
}


def bound_values(table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a row of ``table`` that its leaf vouches for."""
    left_out = _LEFT_OUT.get(table, frozenset())
    return {name: value for name, value in values.items() if name not in left_out}


def bound_digest(row: Base) -> str:
    """The digest a leaf records for ``row`` (``row_digest`` of its vouched-for columns)."""
    return row_digest(bound_values(row.__tablename__, row_values(row)))


def row_ref(row: Base) -> dict[str, Any]:
    """``{"table": ..., "id": ...}``: where ``audit verify`` finds ``row`` again."""
    (key,) = sa_inspect(row).identity or (None,)
    return {"table": row.__tablename__, "id": key}


def record_row(
    store: Store,
    session: Session,
    kind: EventKind,
    subject: str,
    payload: Mapping[str, Any],
    row: Base,
    *,
    before: str | None = None,
    reason: str = "",
) -> Event:
    """Record the change that wrote ``row``, in ``session``'s transaction, vouching for it.

    The row is flushed and read back first, so the digest is of the row as the database
    holds it (times, JSON and numbers as ``audit verify`` will read them). ``before`` is
    the digest of the state the change replaced, when there was one.
    """
    session.flush()
    session.refresh(row)
    return store.record(
        kind,
        subject,
        {**payload, "row": row_ref(row)},
        reason=reason,
        before=before,
        after=bound_digest(row),
        session=session,
    )
