"""Options and argument types shared by several command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.moments import parse_duration, parse_moment

__all__ = ["JsonOpt", "RefArg", "parse_interval", "parse_moment"]

RefArg = Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def parse_interval(text: str, *, flag: str) -> float:
    """Seconds in an interval such as ``30s``, ``10m``, ``1h`` or ``1d``."""
    return parse_duration(text, flag=flag).total_seconds()
