"""Commands of ``shipyard features`` (see :mod:`shipyard.cli.features`)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``features`` group."""
