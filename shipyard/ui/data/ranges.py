"""The time range a page shows: ``15m`` / ``6h`` / ``7d`` back from now, or ISO ``since``/``until``.

    window = parse_range("6h", None, None, default="24h")
    window = parse_range(None, "2026-12-01T00:00:00Z", "2026-12-02", default="24h")

A malformed or impossible range raises :class:`RangeError` (a ``ValueError``) whose
message lists the accepted forms, so the page can answer 400 with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shipyard.jsonable import Record
from shipyard.moments import as_utc

__all__ = ["ACCEPTED", "MAX_RANGE", "RangeError", "TimeRange", "parse_range"]

MAX_RANGE = timedelta(days=400)
"""The longest range a page shows (a year and a bit: the log's usual retention)."""

ACCEPTED = (
    "range=15m, 6h or 7d (a number and one of s, m, h, d, w: back from now); or since and "
    "until as ISO 8601 times (2026-12-01, 2026-12-01T09:30:00Z), since before until, at "
    f"most {MAX_RANGE.days} days apart"
)
"""The forms a range may take, as error messages list them."""

_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class RangeError(ValueError):
    """A time range the page cannot show; the message lists the accepted forms."""


@dataclass(frozen=True)
class TimeRange(Record):
    """A half-open window ``[since, until)`` in UTC, and how it was asked for."""

    since: datetime
    until: datetime
    label: str

    @property
    def seconds(self) -> float:
        """The window's length in seconds."""
        return (self.until - self.since).total_seconds()


def parse_range(
    text: str | None,
    since: str | None,
    until: str | None,
    default: str,
    *,
    now: datetime | None = None,
) -> TimeRange:
    """The range a request names: ``text`` (``6h``) or ``since``/``until``, else ``default``.

    ``until`` defaults to now and ``since`` to ``until`` minus ``text`` (or ``default``).
    """
    moment = as_utc(now) if now is not None else datetime.now(UTC)
    text = (text or "").strip() or None
    if text is not None and since:
        raise RangeError(f"Give either range={text!r} or since, not both. Accepted: {ACCEPTED}.")
    end = _moment(until, "until") if until else moment
    if since:
        start = _moment(since, "since")
        label = f"{start.isoformat()} – {end.isoformat()}"
    else:
        span = _duration(text or default)
        if span > MAX_RANGE:
            raise RangeError(
                f"range={text or default!r} is more than {MAX_RANGE.days} days. "
                f"Accepted: {ACCEPTED}."
            )
        start = end - span
        label = text or default
    if start >= end:
        raise RangeError(
            f"since ({start.isoformat()}) must be before until ({end.isoformat()}). "
            f"Accepted: {ACCEPTED}."
        )
    if end - start > MAX_RANGE:
        raise RangeError(
            f"The range spans {(end - start).days} days, more than {MAX_RANGE.days}. "
            f"Accepted: {ACCEPTED}."
        )
    return TimeRange(start, end, label)


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise RangeError(f"range={text!r} is not a duration. Accepted: {ACCEPTED}.")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise RangeError(f"range={text!r} is too long. Accepted: {ACCEPTED}.") from None


def _moment(text: str, name: str) -> datetime:
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        return as_utc(datetime.fromisoformat(cleaned))
    except ValueError:
        raise RangeError(
            f"{name}={text!r} is not an ISO 8601 time. Accepted: {ACCEPTED}."
        ) from None
