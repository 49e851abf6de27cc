"""How the pages write numbers, shares, durations and times (Jinja2 filters).

Every filter takes ``None`` (a value nobody measured) and writes it as an em dash, so a
template never has to test for it. They return plain text; the templates escape it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shipyard.moments import as_utc

__all__ = ["FILTERS", "duration", "measure", "money", "number", "percent", "when"]

MISSING = "—"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (an integer as it is)."""
    if _missing(value):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"


def percent(value: Any, digits: int = 1) -> str:
    """A share (0–1) as a percentage."""
    if _missing(value):
        return MISSING
    return f"{float(value) * 100:.{digits}f} %"


def money(value: Any, currency: str = "$") -> str:
    """An amount with 4 significant digits and no exponent: costs per prediction are small
    (``$0.00009097``), and at least cents (``$12.50``)."""
    if _missing(value):
        return MISSING
    amount = float(value)
    if amount == 0:
        return f"{currency}0.00"
    digits = max(2, 3 - math.floor(math.log10(abs(amount))))
    text = f"{amount:,.{digits}f}"
    whole, _, cents = text.partition(".")
    cents = cents.rstrip("0").ljust(2, "0")  # $0.000067, not $0.00006700; $12.50
    return f"{currency}{whole}.{cents}"


def duration(seconds: Any) -> str:
    """Seconds as the largest unit that reads well: 45 s, 12 min, 3.5 h, 2.0 d."""
    if _missing(seconds):
        return MISSING
    value = float(seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} s"


def when(value: Any) -> str:
    """A time (datetime or ISO text) as ``YYYY-MM-DD HH:MM:SS UTC``; other text as it is."""
    if _missing(value) or value == "":
        return MISSING
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(moment, datetime):
        return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def measure(value: Any, unit: str = "") -> str:
    """A value in its unit: seconds as a duration, a ratio as a percentage, an ISO 4217
    currency as money, anything else as a number followed by its unit."""
    if _missing(value):
        return MISSING
    if unit == "s":
        return duration(value)
    if unit == "ratio":
        return percent(value)
    if len(unit) == 3 and unit.isalpha() and unit.isupper():
        return f"{money(value, '')} {unit}"
    shown = number(value)
    return f"{shown} {unit}" if unit else shown


def label(key: Any) -> str:
    """A record's key as a column heading: ``label_lag_seconds`` → ``label lag seconds``."""
    return str(key).replace("_", " ")


def kind_of(value: Any) -> str:
    """What the generic renderer should draw: mapping, rows (a list of mappings), list, text."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list | tuple):
        if value and all(isinstance(item, dict) for item in value):
            return "rows"
        return "list"
    return "text"


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The keys of ``rows`` in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


FILTERS: dict[str, Callable[..., Any]] = {
    "number": number,
    "percent": percent,
    "money": money,
    "duration": duration,
    "measure": measure,
    "when": when,
    "label": label,
    "kind_of": kind_of,
    "columns": columns,
}
"""The filters :mod:`shipyard.ui.app` adds to the templates' environment."""
