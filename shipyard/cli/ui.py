"""``shipyard ui``: the web dashboard (placeholder until the pages land)."""

from __future__ import annotations

import typer


def ui_cmd(ctx: typer.Context) -> None:
    """The web dashboard: fleet, models, versions, audit; roll back or pause from it."""
    raise typer.Exit(2)
