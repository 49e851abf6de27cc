"""The rows audit leaves vouch for, checked against the leaves.

An alias move, an approval, a token, a roll-out, a CT cycle and a traffic split each
live in their own table, and the leaf that recorded the change names the row and holds
its digest (:mod:`shipyard.store.bound_rows`). Here every row of those tables is found
again, within the same snapshot as the log:

- a row whose digest differs from the latest leaf that vouched for it was **edited**;
- a row a leaf vouched for that is gone was **deleted**;
- a row no leaf vouches for was **inserted** outside Shipyard.

Rows written before leaves named their rows (a project upgraded from before the audit
log) are matched by content with the events that recorded them instead: an alias move
by model, alias, versions, action, reason and actor; an approval by model, version,
actor and comment; a roll-out or CT cycle by the id its start event named; a traffic
split by the latest ``traffic.changed`` event of its model.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from shipyard.governance.audit_verify import Finding, Findings, LogScan
from shipyard.jsonable import to_json
from shipyard.store.audit_leaf import canonical
from shipyard.store.bound_rows import BOUND_TABLES, bound_digest
from shipyard.store.tables import AliasMoveRow, ApprovalRow, Base, DeploymentRow

__all__ = ["check_rows"]

_PAGE = 1000


def check_rows(connection: Connection, scan: LogScan, findings: Findings) -> int:
    """Compare every vouched-for row with its leaf; returns how many rows were read."""
    read = 0
    with Session(bind=connection) as session:
        for table, model in BOUND_TABLES.items():
            read += _check_table(session, table, model, scan, findings)
    return read


def _check_table(
    session: Session, table: str, model: type[Base], scan: LogScan, findings: Findings
) -> int:
    refs = {key: ref for (name, key), ref in scan.refs.items() if name == table}
    legacy = Counter(scan.legacy.get(table, Counter()))
    (key_column,) = model.__mapper__.primary_key
    seen: set[Any] = set()
    read = 0
    query = select(model).order_by(key_column).execution_options(yield_per=_PAGE)
    for row in session.scalars(query):
        read += 1
        key = getattr(row, str(key_column.key))
        ref = refs.get(key)
        if ref is not None:
            seen.add(key)
            if ref.after != bound_digest(row):
                findings.add(
                    Finding(
                        "row_edited",
                        f"row {table} id {key} was changed after seq {ref.seq} (event id "
                        f"{ref.event_id}) vouched for it{_whom(row, ref.actor)}",
                        seq=ref.seq,
                        event_id=ref.event_id,
                        table=table,
                        row=str(key),
                    )
                )
            continue
        if _legacy(row, legacy, scan):
            continue
        findings.add(
            Finding(
                "row_inserted",
                f"row {table} id {key} was inserted outside Shipyard: no leaf vouches for it"
                + _what(row),
                table=table,
                row=str(key),
            )
        )
    for key in refs.keys() - seen:
        ref = refs[key]
        findings.add(
            Finding(
                "row_deleted",
                f"row {table} id {key} was deleted: seq {ref.seq} (event id {ref.event_id}) "
                "vouched for it",
                seq=ref.seq,
                event_id=ref.event_id,
                table=table,
                row=str(key),
            )
        )
    return read


def _whom(row: Base, leaf_actor: str) -> str:
    """What changed, when the row names an actor the leaf disagrees with."""
    actor = getattr(row, "actor", None)
    if actor is None or actor == leaf_actor:
        return ""
    return f": its actor is now {actor!r}, the leaf names {leaf_actor!r}"


def _what(row: Base) -> str:
    """A short description of a row no leaf vouches for."""
    if isinstance(row, AliasMoveRow):
        return (
            f" ({row.model}@{row.alias} {row.from_version} → {row.to_version}, "
            f"{row.action} by {row.actor!r})"
        )
    if isinstance(row, ApprovalRow):
        return f" ({row.model}/{row.version} approved by {row.actor!r})"
    if isinstance(row, DeploymentRow):
        return f" (traffic {to_json(row.traffic)})"
    return ""


def _legacy(row: Base, legacy: Counter[Any], scan: LogScan) -> bool:
    """Whether an older event (one that named no row) vouches for ``row``'s content."""
    if isinstance(row, AliasMoveRow):
        key: Any = (
            row.model, row.alias, row.from_version, row.to_version, row.action,
            bool(row.forced), row.reason or "", row.actor,
        )  # fmt: skip
    elif isinstance(row, ApprovalRow):
        key = (row.model, row.version, row.actor, row.comment or "")
    elif isinstance(row, DeploymentRow):
        # Every alias move creates or bumps the row without a traffic split: nothing to vouch.
        said = scan.legacy_traffic.get(row.model)
        return row.traffic is None or (said is not None and _same_json(said, row.traffic))
    else:
        key = getattr(row, "id", None)
    if legacy[key] > 0:
        legacy[key] -= 1
        return True
    return False


def _same_json(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)
