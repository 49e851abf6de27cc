"""What one audit-log leaf says, as canonical bytes, and digests of the rows it vouches for.

Every state change is an event row, and every event row is a leaf of the audit log's
Merkle tree (RFC 6962). The leaf's data is the canonical JSON (sorted keys, no spaces,
times in UTC to the microsecond) of the row's fields, so anyone can recompute it from
the row, and an edit to any field changes the leaf hash. Rows in other tables that an
event vouches for (an alias move, an approval, a token) are bound by the SHA-256 digest
of their own canonical JSON, stored as the event's ``after`` (or ``before``) digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import inspect as sa_inspect

from shipyard.moments import as_utc

__all__ = ["LEAF_FIELDS", "canonical", "leaf_data", "row_digest", "row_values", "utc_text"]

LEAF_FIELDS = (
    "seq",
    "at",
    "actor",
    "token_id",
    "role",
    "kind",
    "subject",
    "payload",
    "reason",
    "request_id",
    "before",
    "after",
)
# Times go through ``_text`` (UTC, microseconds): orjson's own form would spell a naive
# time read back from SQLite differently from the aware one that was hashed.
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def utc_text(moment: datetime) -> str:
    """A time as the leaf spells it: ISO 8601 in UTC, to the microsecond."""
    return as_utc(moment).isoformat(timespec="microseconds")


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, times as :func:`utc_text`.

    The one encoder whose output is hashed: it must never change, so it is kept apart
    from ``shipyard.jsonable`` (the encoder of records and the wire).
    """
    return orjson.dumps(value, default=_text, option=_OPTIONS)


def leaf_data(fields: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one leaf: exactly the :data:`LEAF_FIELDS` of ``fields``."""
    return canonical({name: fields[name] for name in LEAF_FIELDS})


def row_values(row: Any) -> dict[str, Any]:
    """Every column of a mapped row, by column name."""
    mapper = sa_inspect(type(row))
    return {column.key: getattr(row, column.key) for column in mapper.column_attrs}


def row_digest(values: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a row's columns as canonical JSON."""
    return hashlib.sha256(canonical(dict(values))).hexdigest()
