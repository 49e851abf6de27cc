"""Alias moves (champion, challenger): the pointer updates behind promotion and rollback.

Every move sets the MLflow alias, then appends a row to ``shipyard_alias_moves`` and
records the event that vouches for it in one transaction, so the history answers "which
version was champion on date X" and ``shipyard audit verify`` notices a row changed since.

Without an MLflow client (``client=None``) the alias is set in MLflow's own table in the
same transaction as the row and its event (:mod:`shipyard.registry.mlflow_tables`), so
``shipyard rollback`` never imports MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from shipyard.errors import PromotionRefused
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.registry import mlflow_tables
from shipyard.store import AliasMoveRow, Store, kind_of
from shipyard.store.bound_rows import bound_digest, record_row
from shipyard.store.traffic import bump_deployment

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "AliasMove",
    "alias_moves",
    "champion_at",
    "current_alias",
    "move_alias",
    "move_of",
    "rollback",
    "rollback_targets",
]

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class AliasMove(Record):
    """One recorded alias move."""

    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    action: str
    forced: bool
    reason: str
    actor: str
    at: datetime


def current_alias(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or ``None``."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def move_alias(
    store: Store,
    client: MlflowClient | None,
    name: str,
    alias: str,
    version: str | None,
    *,
    action: str,
    reason: str = "",
    forced: bool = False,
) -> AliasMove:
    """Point ``alias`` at ``version`` (``None`` removes it) and record the move.

    With ``client=None`` MLflow's alias is written in SQL, in the same transaction as the
    record (the store's database is MLflow's tracking database).
    """
    kind = kind_of(f"alias.{action}")  # an unknown action is refused before anything moves
    previous: str | None = None
    if client is not None:
        previous = current_alias(client, name, alias)
        if version is None:
            client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, version)
    # One transaction: the move, the generation servers poll (they swap models when it
    # changes) and the leaf vouching for the move commit together. The bump comes first,
    # so concurrent moves of this model queue before the last move is read.
    with store.session() as session:
        bump_deployment(session, name)
        if client is None:
            previous = mlflow_tables.get_alias(session, name, alias)
            if version is None:
                mlflow_tables.delete_alias(session, name, alias)
            else:
                mlflow_tables.set_alias(session, name, alias, version)
        row = AliasMoveRow(
            model=name,
            alias=alias,
            from_version=previous,
            to_version=version,
            action=action,
            forced=forced,
            reason=reason,
            actor=store.actor,
        )
        last = session.scalar(
            select(AliasMoveRow)
            .where(AliasMoveRow.model == name, AliasMoveRow.alias == alias)
            .order_by(AliasMoveRow.id.desc())
            .limit(1)
        )
        session.add(row)
        record_row(
            store,
            session,
            kind,
            f"model:{name}@{alias}",
            {"from_version": previous, "to_version": version, "reason": reason, "forced": forced},
            row,
            before=None if last is None else bound_digest(last),
            reason=reason,
        )
        return move_of(row)


def alias_moves(store: Store, name: str, alias: str | None = None) -> list[AliasMove]:
    """Every recorded move of ``name``'s aliases, oldest first."""
    query = select(AliasMoveRow).where(AliasMoveRow.model == name).order_by(AliasMoveRow.id)
    if alias is not None:
        query = query.where(AliasMoveRow.alias == alias)
    with store.session() as session:
        return [move_of(row) for row in session.scalars(query)]


def move_of(row: AliasMoveRow) -> AliasMove:
    """The :class:`AliasMove` a ``shipyard_alias_moves`` row holds (prompt labels' too)."""
    return AliasMove(
        model=row.model,
        alias=row.alias,
        from_version=row.from_version,
        to_version=row.to_version,
        action=row.action,
        forced=row.forced,
        reason=row.reason,
        actor=row.actor,
        at=as_utc(row.at),
    )


def rollback_targets(moves: list[AliasMove]) -> list[str]:
    """The champion stack after replaying ``moves``: promotions push, rollbacks pop.

    The last entry is the current champion; the one before it is where a plain
    rollback goes. Rolling back twice therefore walks further back in time instead of
    flipping between two versions.
    """
    stack: list[str] = []
    for move in moves:
        if move.to_version is None:
            stack.clear()
        elif move.action == "rollback" and move.to_version in stack:
            del stack[stack.index(move.to_version) + 1 :]
        else:
            if move.to_version in stack:
                stack.remove(move.to_version)
            stack.append(move.to_version)
    return stack


def rollback(
    store: Store,
    client: MlflowClient | None,
    name: str,
    *,
    to: str | None = None,
    reason: str = "",
) -> AliasMove:
    """Move ``champion`` back to the previous champion, or to the earlier champion ``to``.

    With ``client=None`` MLflow is not imported: its alias is read and moved in SQL.
    """
    moves = alias_moves(store, name, CHAMPION)
    stack = rollback_targets(moves)
    if client is None:
        with store.session() as session:
            current = mlflow_tables.get_alias(session, name, CHAMPION)
    else:
        current = current_alias(client, name, CHAMPION)
    if to is None:
        if len(stack) < 2:
            raise PromotionRefused(
                f"{name} has no previous champion to roll back to.",
                hint="Promote another version with `shipyard promote NAME/VERSION --to champion`.",
            )
        target = stack[-2]
    else:
        earlier = {m.to_version for m in moves if m.to_version is not None}
        if to not in earlier:
            raise PromotionRefused(
                f"{name}/{to} was never champion, so it is not a rollback target.",
                hint=f"Earlier champions: {', '.join(sorted(earlier, key=int)) or 'none'}. "
                "Use `shipyard promote` for a version that was never champion.",
            )
        if to == current:
            raise PromotionRefused(f"{name}/{to} is already champion.", hint="Nothing to do.")
        target = to
    return move_alias(store, client, name, CHAMPION, target, action="rollback", reason=reason)


def champion_at(store: Store, name: str, moment: datetime) -> str | None:
    """The version that was champion at ``moment``, from the recorded moves."""
    moment = as_utc(moment)
    champion: str | None = None
    for move in alias_moves(store, name, CHAMPION):
        if move.at > moment:
            break
        champion = move.to_version
    return champion
