"""``shipyard experiment``: A/B experiments that split traffic and declare a winner."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    help="A/B experiments: split traffic between versions and declare a winner, sequentially.",
    no_args_is_help=True,
)
