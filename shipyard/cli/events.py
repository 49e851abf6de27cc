"""``shipyard events``: the record of every state change."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.output import console, print_json

__all__ = ["app"]

app = typer.Typer(help="The event log: who changed what, when.", invoke_without_command=True)


@app.callback()
def events(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. run.finished.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="Only subjects starting with this, e.g. model:churn.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List recent events, newest first."""
    from rich.table import Table

    found = acting(ctx, Scope.AUDIT_READ).store.events(kind=kind, subject=subject, limit=limit)
    if as_json:
        print_json([event.to_dict() for event in found])
        return
    table = Table()
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("actor")
    table.add_column("kind", no_wrap=True)
    table.add_column("subject", overflow="fold")
    for event in found:
        when = event.to_dict()["at"][:19].replace("T", " ")
        table.add_row(when, event.actor, event.kind, event.subject)
    console.print(table, markup=False)  # every cell is data
