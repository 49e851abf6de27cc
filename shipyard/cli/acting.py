"""The one check a command makes before it acts: the project, as an authorised principal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shipyard.access import Scope

if TYPE_CHECKING:
    from shipyard.cli.state import CliState
    from shipyard.project import Project

__all__ = ["Scope", "acting"]

# Commands with these scopes read or move what exists: a missing SQLite file is an error.
_NEEDS_EXISTING = frozenset(
    {Scope.MODELS_READ, Scope.AUDIT_READ, Scope.PII_READ, Scope.MODELS_DEPLOY, Scope.MODELS_APPROVE}
)


def acting(ctx: typer.Context, scope: Scope, model: str | None = None) -> Project:
    """The command's project, once its principal is known to hold ``scope`` (on ``model``).

    Raises ``Unauthenticated`` (no valid token where one is needed) or ``Forbidden``;
    both exit with code 6 and say what is missing. A read (or a pointer move) on a
    SQLite database file that does not exist is a ``DatabaseError``.
    """
    state: CliState = ctx.obj
    project = state.project(existing_database=scope in _NEEDS_EXISTING)
    project.authorize(scope, model)
    return project
