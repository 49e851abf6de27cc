"""``shipyard grafana``: dashboards generated from the web dashboard's panels (placeholder)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("export")
def export_cmd() -> None:
    """Write Grafana dashboard JSON."""
    raise typer.Exit(2)
