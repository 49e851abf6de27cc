"""How the CLI prints: Rich for people, ``--json`` for scripts, errors without tracebacks."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from shipyard.errors import ShipyardError

__all__ = ["console", "err_console", "print_error", "print_json"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout (no Rich markup, safe to pipe)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_error(error: ShipyardError) -> None:
    """Render a Shipyard error: what went wrong, then what to do."""
    err_console.print(f"[bold red]Error:[/] {error.message}", markup=True, soft_wrap=True)
    if error.hint:
        err_console.print(f"[yellow]→[/] {error.hint}", soft_wrap=True)
