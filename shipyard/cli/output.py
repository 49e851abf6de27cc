"""How the CLI prints: Rich for people, ``--json`` for scripts, errors without tracebacks.

Output that goes to a pipe or a file is never hard-wrapped: a line of a table, a path or
a YAML document stays one line, whatever width the terminal beside it has (``COLUMNS``,
when set, still wins). Anything that came from the user or the
data (names, reasons, check descriptions, paths) is escaped with :func:`esc` before Rich
reads markup in it, so ``^[a-z]+$`` prints as itself. ``NO_COLOR`` turns every escape
sequence off.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.text import Text

from shipyard.errors import ShipyardError

__all__ = ["PipeConsole", "console", "err_console", "esc", "print_error", "print_json", "steps"]

# The width off a terminal: wide enough that nothing real wraps, small enough that a
# renderable padded to the full width stays harmless.
UNBOUNDED_WIDTH = 10_000


class PipeConsole(Console):
    """A Rich console that does not wrap lines when its output is not a terminal.

    Rich asks the terminal beside a pipe for its width (stdin's, when stdout is a file), so
    ``shipyard config show > f`` was cut at 80 columns. Off a terminal this console is
    :data:`UNBOUNDED_WIDTH` wide unless a width was given or ``COLUMNS`` is set.
    """

    @property
    def size(self) -> ConsoleDimensions:
        """The console's size: the terminal's, or unbounded width off a terminal."""
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is None and "COLUMNS" not in self._environ and not self.is_terminal:
            return ConsoleDimensions(UNBOUNDED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


# NO_COLOR (https://no-color.org): Rich drops colours but keeps bold and dim; scripts that
# set it get no escape sequences at all.
_COLOURS: Any = None if os.environ.get("NO_COLOR") else "auto"
console = PipeConsole(highlight=False, color_system=_COLOURS)
err_console = PipeConsole(stderr=True, highlight=False, color_system=_COLOURS)


def esc(value: object) -> str:
    """``value`` as text with Rich markup escaped: square brackets print as themselves."""
    return escape(str(value))


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout (no Rich markup, safe to pipe)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_error(error: ShipyardError) -> None:
    """Render a Shipyard error: what went wrong, then what to do (never read as markup)."""
    err_console.print(Text.assemble(("Error:", "bold red"), " ", error.message), soft_wrap=True)
    if error.hint:
        err_console.print(Text.assemble(("→", "yellow"), " ", error.hint), soft_wrap=True)


@contextmanager
def steps(*, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time; yields a callback that names the current step."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    ) as progress:
        task = progress.add_task("Starting", total=None)
        yield lambda text: progress.update(task, description=text)
