"""JSON as Shipyard writes it: one encoder (orjson with one hook) and one ``to_dict``.

    dump_json({"predictions": array})   # bytes for a response: NumPy goes straight through
    to_json(value)                      # text that never fails, for logs and stored payloads
    plain(value)                        # the same, as Python values: NaN and ±inf become None
    as_dict(record)                     # a dataclass as a JSON-ready dict, its times in UTC

Every entry point serialises NumPy arrays and scalars natively and writes NaN and ±inf
as ``null``. What orjson does not know goes through :func:`default`: NumPy object
arrays and pandas values as lists, bytes as UTF-8 text, dates as ISO text, sets as
lists. :func:`dump_json` refuses anything else (a response must not carry a repr);
:func:`to_json` and :func:`plain` write it as its ``str()``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Set
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import orjson

from shipyard.moments import as_utc

__all__ = [
    "ReadsAsJson",
    "Record",
    "as_dict",
    "canonical_json",
    "default",
    "dump_json",
    "plain",
    "to_json",
]

_STRICT = orjson.OPT_SERIALIZE_NUMPY
_LENIENT = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def default(value: Any) -> Any:
    """orjson's hook for a value it cannot write itself; ``TypeError`` when none fits."""
    if hasattr(value, "tolist"):  # NumPy object or strided arrays, NumPy scalars, pandas
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, date):  # e.g. pandas.Timestamp, which orjson leaves to us
        return value.isoformat()
    if isinstance(value, Set):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def dump_json(value: Any) -> bytes:
    """JSON bytes of ``value``; the serving path's encoder, so it does nothing extra."""
    return orjson.dumps(value, default=default, option=_STRICT)


def canonical_json(value: Any) -> bytes:
    """JSON bytes with sorted keys, for digests that must not change (a feature view's
    version): the same value always gives the same bytes."""
    return orjson.dumps(value, default=default, option=_STRICT | orjson.OPT_SORT_KEYS)


def to_json(value: Any) -> str:
    """Strict JSON text of anything: unknown values as their ``str()``, keys as text.

    orjson is 8-14x faster than the standard library here, which matters to the log
    writer's thread: it shares the GIL with the server.
    """
    try:
        return orjson.dumps(value, default=_anything, option=_LENIENT).decode()
    except TypeError:  # e.g. integers beyond 64 bits: rare, so only then walk the value
        return json.dumps(_finite(value), default=_anything, separators=(",", ":"))


def plain(value: Any) -> Any:
    """``value`` as strict-JSON Python values: what :func:`to_json` would write, parsed."""
    try:
        return orjson.loads(orjson.dumps(value, default=_anything, option=_LENIENT))
    except TypeError:  # integers beyond 64 bits
        return json.loads(json.dumps(_finite(value), default=_anything))


def as_dict(record: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict: its fields in order, nested dataclasses as dicts,
    tuples as lists, and dates and times as ISO text (times in UTC)."""
    return asdict(record, dict_factory=_json_fields)


class Record:
    """Mixin for a dataclass whose ``to_dict`` is :func:`as_dict`."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (see :func:`as_dict`)."""
        return as_dict(self)


class ReadsAsJson(Mapping[str, Any]):
    """Mixin for a record that reads as its JSON form: ``record["key"]`` is ``to_dict()["key"]``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; a subclass or another mixin (:class:`Record`) provides it."""
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _json_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: _json_field(value) for key, value in pairs}


def _json_field(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _anything(value: Any) -> Any:
    try:
        return default(value)
    except TypeError:
        return str(value)


def _finite(value: Any) -> Any:
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
