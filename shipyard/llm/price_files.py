"""Reading price documents: LiteLLM's ``model_prices_and_context_window.json`` and
Shipyard's own ``{"prices": [...]}``, checked field by field (a DataError names the
field: ``gpt-4o.input_cost_per_token is -1e-06: a price per token must be 0 or more``).

LiteLLM's keys map to usage types: ``input_cost_per_token`` → ``input``,
``output_cost_per_token`` → ``output``, ``cache_read_input_token_cost`` →
``cached_input``. Its ``sample_spec`` entry documents the format and is ignored; models
without a per-token price (images priced per pixel, say) are skipped and reported. A
LiteLLM name becomes a pattern matching exactly that name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipyard.errors import DataError
from shipyard.moments import as_utc

__all__ = ["USAGE_TYPES", "PriceEntry", "check_pattern", "check_price", "parse_prices"]

USAGE_TYPES = ("input", "output", "cached_input")
"""The usage types a price is given for, per token."""

_LITELLM = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
}
_SKIPPED = frozenset({"sample_spec"})  # LiteLLM's documentation entry, not a model


@dataclass(frozen=True)
class PriceEntry:
    """One model pattern's prices (per token) as read from a file or given by hand."""

    model_pattern: str
    prices: Mapping[str, float]
    currency: str


def parse_prices(
    data: Any, *, where: str = "the price file", currency: str = "USD"
) -> tuple[list[PriceEntry], list[str], datetime | None]:
    """The entries of a LiteLLM or Shipyard price document, the names skipped (no per-token
    price), and the document's own ``effective_from``; a DataError names a bad field."""
    if not isinstance(data, dict):
        raise DataError(f"{where} must hold a JSON object, not {type(data).__name__}.")
    if isinstance(data.get("prices"), list):
        return _parse_own(data, where, currency)
    entries: list[PriceEntry] = []
    skipped: list[str] = []
    for name, spec in data.items():
        if name in _SKIPPED:
            continue
        if not isinstance(spec, dict):
            raise DataError(
                f"{where}: {name!r} must be an object of prices, not {type(spec).__name__}.",
                hint='LiteLLM\'s format: {"model": {"input_cost_per_token": 2.5e-06, …}}.',
            )
        prices = {
            usage: check_price(spec[key], f"{name}.{key}", where)
            for key, usage in _LITELLM.items()
            if key in spec and spec[key] is not None
        }
        if not prices:
            skipped.append(str(name))
            continue
        entries.append(PriceEntry(re.escape(str(name)), prices, currency))
    return entries, skipped, None


def _parse_own(
    data: dict[str, Any], where: str, currency: str
) -> tuple[list[PriceEntry], list[str], datetime | None]:
    unit = data.get("currency", currency)
    if not isinstance(unit, str) or not re.fullmatch(r"[A-Z]{3}", unit):
        raise DataError(f"{where}: currency {unit!r} is not a 3-letter code such as USD.")
    effective = data.get("effective_from")
    moment = None if effective is None else _moment(effective, f"{where}: effective_from")
    entries = []
    for index, item in enumerate(data["prices"]):
        label = f"prices[{index}]"
        if not isinstance(item, dict):
            raise DataError(f"{where}: {label} must be an object.")
        pattern = item.get("model_pattern")
        if not isinstance(pattern, str) or not pattern:
            raise DataError(f"{where}: {label}.model_pattern is missing (a regular expression).")
        check_pattern(pattern, f"{where}: {label}.model_pattern")
        prices = {
            usage: check_price(item[usage], f"{label}.{usage}", where)
            for usage in USAGE_TYPES
            if item.get(usage) is not None
        }
        unknown = sorted(set(item) - {"model_pattern", *USAGE_TYPES})
        if unknown:
            raise DataError(
                f"{where}: {label} has unknown field(s) {', '.join(unknown)}.",
                hint=f"A price entry has model_pattern and {', '.join(USAGE_TYPES)}.",
            )
        if not prices:
            raise DataError(f"{where}: {label} has no price ({', '.join(USAGE_TYPES)}).")
        entries.append(PriceEntry(pattern, prices, unit))
    return entries, [], moment


def check_price(value: Any, field: str, where: str) -> float:
    """A per-token price: a finite number >= 0 (a DataError naming ``field`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: {field} is {value!r}: a price per token must be a number.")
    if not math.isfinite(value) or value < 0:
        raise DataError(f"{where}: {field} is {value!r}: a price per token must be 0 or more.")
    return float(value)


def check_pattern(pattern: str, field: str) -> None:
    """Refuse (a DataError naming ``field``) a model pattern that is not a regular expression."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise DataError(f"{field} {pattern!r} is not a regular expression: {exc}.") from None


def _moment(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        raise DataError(f"{field} {value!r} is not an ISO time.") from None
