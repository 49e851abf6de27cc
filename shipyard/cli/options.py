"""Options and argument types shared by several command groups."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from shipyard.errors import ConfigError

__all__ = ["JsonOpt", "RefArg", "parse_moment"]

RefArg = Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str, *, flag: str = "--since", now: datetime | None = None) -> datetime:
    """``2026-11-24``, ``2026-11-24T09:00:00+00:00`` or a duration back from now (``90m``)."""
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = int(match[1]), _UNITS[match[2]]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{flag} {text!r} is neither an ISO time nor a duration.",
            hint="Write e.g. 2026-11-24, 2026-11-24T09:30:00+00:00, 30m, 6h or 7d.",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_interval(text: str, *, flag: str) -> float:
    """Seconds in an interval such as ``30s``, ``10m``, ``1h`` or ``1d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    if len(text) >= 2 and text[-1] in units and text[:-1].isdigit():
        return float(int(text[:-1]) * units[text[-1]])
    raise ConfigError(f"{flag} {text!r} is not an interval.", hint="Write e.g. 30s, 5m or 1h.")
