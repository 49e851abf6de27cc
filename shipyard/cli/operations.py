"""``shipyard maturity``, ``runbook`` and ``incident`` (placeholders until they land)."""

from __future__ import annotations

import typer


def maturity_cmd() -> None:
    """Place the project at MLOps maturity level 0, 1 or 2."""
    raise typer.Exit(2)


def runbook_cmd() -> None:
    """Write the on-call runbook for a model."""
    raise typer.Exit(2)


def incident_cmd() -> None:
    """Write a postmortem draft from an incident's events."""
    raise typer.Exit(2)
