"""How the CLI prints: Rich for people, ``--json`` for scripts, errors without tracebacks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from shipyard.errors import ShipyardError

__all__ = ["console", "err_console", "print_error", "print_json", "steps"]

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


@contextmanager
def steps(*, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time; yields a callback that names the current step."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    ) as progress:
        task = progress.add_task("Starting", total=None)
        yield lambda text: progress.update(task, description=text)
