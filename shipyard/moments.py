"""Durations (``30s``, ``10m``, ``6h``, ``7d``, ``2w``) and moments (an ISO time, or a
duration back from now), as every command and window spells them; and the one way a
moment is put in UTC (:func:`as_utc`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shipyard.errors import ConfigError

__all__ = ["as_utc", "parse_duration", "parse_moment"]

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_HINT = "Write e.g. 2026-11-24, 2026-11-24T09:30:00+00:00, 30m, 6h or 7d."


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC: a naive time is taken to be UTC already, an aware one is converted.

    SQLite hands back naive UTC datetimes and PostgreSQL aware ones in the session's zone;
    both come out as the same aware UTC datetime, so they compare and print alike.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_duration(text: str, *, flag: str) -> timedelta:
    """A positive duration such as ``30s``, ``10m``, ``1h``, ``1d`` or ``2w``."""
    match = _DURATION.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise ConfigError(
            f"{flag} {text!r} is not a duration.", hint="Write e.g. 30s, 5m, 1h or 7d."
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def parse_moment(
    text: str, *, flag: str = "--since", now: datetime | None = None, hint: str = _HINT
) -> datetime:
    """``2026-11-24``, ``2026-11-24T09:00:00+00:00`` or a duration back from now (``90m``);
    a time without a zone is taken as UTC."""
    match = _DURATION.match(text.strip())
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{flag} {text!r} is neither an ISO time nor a duration.", hint=hint
        ) from None
    return as_utc(moment)
