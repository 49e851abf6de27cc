"""The online store: the newest row of every entity of every feature view, by key.

Materialisation (:mod:`~shipyard.features.materialize`) writes a view's rows batch by
batch; serving reads them one request at a time. Two backends share one contract,
:class:`OnlineStore`: SQLite on one machine (:mod:`~shipyard.features.online_sqlite`)
and Redis for a team (:mod:`~shipyard.features.online_redis`).

- A row is stored under (view, view **version**, :func:`entity_key`): a new version of a
  view never serves the rows of the old one.
- ``write`` keeps the newest row per key by (event time, created time): a late row with
  an older event time never replaces a newer one; a row with the same times replaces the
  stored one (a re-run of the same window is a correction, not a conflict).
- ``read`` returns what is stored and applies no ttl: the caller judges age against its
  own clock.
- Any failure to reach the store is a :class:`~shipyard.errors.FeatureStoreUnavailable`
  with the reason; the next call tries again, so a store that comes back is used again.

The read path uses neither pandas nor pyarrow: one lookup is a few tens of microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.config import Config
    from shipyard.features.definitions import Feature, FeatureView

__all__ = [
    "OnlineRow",
    "OnlineStore",
    "entity_key",
    "open_online_store",
    "prepare_rows",
    "view_version",
]

_SEPARATOR = "\x1f"  # the ASCII unit separator: never part of a real key's text


@dataclass(frozen=True, slots=True)
class OnlineRow:
    """One entity's stored row of one view."""

    values: tuple[Any, ...]
    """The feature values in ``view.feature_names`` order (None for a null)."""
    event_ts: float
    """Epoch seconds (UTC) of the row's event time."""
    created_ts: float | None
    """Epoch seconds of its created time, if the view has a created column."""


class OnlineStore(Protocol):
    """Where materialised features are served from (SQLite or Redis)."""

    backend: str
    """``"sqlite"`` or ``"redis"``."""

    def read(self, view: FeatureView, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRow | None]:
        """One entry per key, in order: its stored row, or None when there is none."""
        ...

    def write(self, view: FeatureView, key_columns: Sequence[str], batch: pa.RecordBatch) -> int:
        """Upsert ``batch`` keeping the newest row per key; the number of keys changed."""
        ...

    def close(self) -> None:
        """Release connections; the store may not be used afterwards."""
        ...


def _key_part(value: Any) -> str:
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # NumPy scalars
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def entity_key(values: Sequence[Any]) -> str:
    """The canonical text of a key tuple: ``1``, ``1.0``, ``"1"`` and ``numpy.int64(1)``
    all give ``"1"``; the parts of a composite key are joined by an unprintable separator."""
    if len(values) == 1:
        return _key_part(values[0])
    return _SEPARATOR.join(_key_part(value) for value in values)


@dataclass(frozen=True, slots=True)
class PreparedRow:
    """A row of a batch ready to store: its key, times and the values as JSON bytes."""

    key: str
    event_ts: float
    created_ts: float | None
    blob: bytes


def _later(held: float | None, other: float | None) -> bool:
    """Whether a stored created time ``held`` beats ``other`` (none is the oldest; a tie
    goes to the newcomer)."""
    if held is None:
        return False
    return other is None or held > other


def _key_texts(batch: pa.RecordBatch, key_columns: Sequence[str]) -> list[str | None]:
    """Each row's :func:`entity_key` (None when a part is null), vectorised where it can be."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[list[Any]] = []
    for name in key_columns:
        column = batch.column(name)
        if pa.types.is_integer(column.type):  # Arrow writes integers as Python's str() does
            parts.append(pc.cast(column, pa.string()).to_pylist())
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            parts.append(column.to_pylist())
        else:
            parts.append([None if v is None else _key_part(v) for v in column.to_pylist()])
    if len(parts) == 1:
        return parts[0]
    return [
        None if any(part is None for part in row) else _SEPARATOR.join(row)
        for row in zip(*parts, strict=True)
    ]


_VERSIONS: dict[int, tuple[FeatureView, str]] = {}


def view_version(view: FeatureView) -> str:
    """``view.version``, remembered per view object: the digest costs ~20 µs, which a
    lookup should not pay each time. The entry holds the view, so its id is not reused."""
    held = _VERSIONS.get(id(view))
    if held is not None and held[0] is view:
        return held[1]
    version = view.version
    if len(_VERSIONS) > 1024:  # views are few; a process that makes many starts over
        _VERSIONS.clear()
    _VERSIONS[id(view)] = (view, version)
    return version


def prepare_rows(
    view: FeatureView, key_columns: Sequence[str], batch: pa.RecordBatch
) -> list[PreparedRow]:
    """The newest row per entity key of ``batch``, its values encoded for the store.

    Rows with a null key or a null event time are skipped (they can never be looked up or
    ordered). A column the view needs that the batch lacks is a DataError naming it.
    """
    from shipyard.jsonable import dump_json

    names = batch.schema.names
    wanted = [*key_columns, view.timestamp_field, *view.feature_names]
    if view.created_timestamp_column:
        wanted.append(view.created_timestamp_column)
    for column in wanted:
        if column not in names:
            raise DataError(
                f"Feature view {view.name!r}: the rows have no column {column!r}.",
                hint=f"The source's columns are {', '.join(names)}; fix the source or the view.",
            )
    keys = _key_texts(batch, key_columns)
    event = _epoch_seconds(batch.column(view.timestamp_field), view.timestamp_field)
    created = (
        _epoch_seconds(batch.column(view.created_timestamp_column), view.created_timestamp_column)
        if view.created_timestamp_column
        else [None] * batch.num_rows
    )
    values = [_feature_values(batch, view.feature(name)) for name in view.feature_names]
    newest: dict[str, int] = {}
    for index, (key, event_ts, created_ts) in enumerate(zip(keys, event, created, strict=True)):
        if key is None or event_ts is None:
            continue
        held = newest.get(key)
        if held is not None:
            held_event = event[held]
            if event_ts < held_event:  # type: ignore[operator]
                continue
            if event_ts == held_event and _later(created[held], created_ts):
                continue
        newest[key] = index
    rows = list(zip(*values, strict=True))  # one tuple per row, built in C
    out: list[PreparedRow] = []
    for key, index in newest.items():
        # orjson leaves a 4 KiB buffer behind each result: copy to its exact size, or a
        # 50,000-row batch holds ~200 MB of slack until it is written.
        blob = bytes(memoryview(dump_json(rows[index])))
        out.append(PreparedRow(key, event[index], created[index], blob))  # type: ignore[arg-type]
    return out


_ARROW_TYPES = {
    "float64": "float64",
    "float32": "float64",  # never narrowed: the store keeps the source's own values
    "int64": "int64",
    "int32": "int64",
    "string": "string",
    "bool": "bool_",
}


def _feature_values(batch: pa.RecordBatch, feature: Feature) -> list[Any]:
    """A feature's column as Python values of its declared type (None for a null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = batch.column(feature.name)
    target = getattr(pa, _ARROW_TYPES[feature.dtype])()
    if column.type != target:
        try:
            column = pc.cast(column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(
                f"Feature {feature.name!r} holds {column.type} values that are not "
                f"{feature.dtype}: {exc}",
                hint="Fix the source column or declare the feature's type to match it.",
            ) from None
    if target == pa.float64():  # NaN is a missing value, as JSON and serving see it
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, pa.float64()), column)
    values: list[Any] = column.to_pylist()
    return values


def _epoch_seconds(column: pa.Array, name: str) -> list[float | None]:
    """A time column as epoch seconds (UTC; a time without a zone is taken as UTC).

    Timestamps and dates are converted exactly; ISO text is parsed; numbers are taken to
    be epoch seconds already.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    try:
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return pc.cast(column, pa.float64()).to_pylist()
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            try:  # naive ISO text, taken as UTC
                column = pc.cast(column, pa.timestamp("us"))
            except pa.ArrowInvalid:  # text with zone offsets
                column = pc.cast(column, pa.timestamp("us", tz="UTC"))
        elif pa.types.is_date(kind):
            column = pc.cast(pc.cast(column, pa.date32()), pa.timestamp("s"))
        elif not pa.types.is_timestamp(kind):
            raise TypeError(kind)
        micros = pc.cast(pc.cast(column, pa.timestamp("us", tz=column.type.tz)), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
        raise DataError(
            f"Time column {name!r} holds {kind} values that are not times: {exc}",
            hint="Give it timestamps, dates or ISO 8601 text.",
        ) from None
    return [None if v is None else v / 1e6 for v in micros.to_pylist()]


# Backends by name, loaded on first use: a server on SQLite never imports redis-py, and the
# backends (which import this module's contract) stay below it.
BACKENDS: dict[str, str] = {
    "sqlite": "shipyard.features.online_sqlite:SqliteOnlineStore",
    "redis": "shipyard.features.online_redis:RedisOnlineStore",
}


def _backend(name: str) -> Any:
    import importlib

    module, _, attribute = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def open_online_store(config: Config) -> OnlineStore:
    """The project's online store, as ``features.online`` configures it."""
    settings = config.features.online
    if settings.backend == "redis":
        import os

        store: OnlineStore = _backend("redis")(
            settings.redis_url,
            prefix=f"{settings.key_prefix}:{config.project}",
            timeout_seconds=settings.timeout_seconds,
            password=os.environ.get("REDIS_PASSWORD") or None,
        )
        return store
    path = config.resolve(settings.path)
    store = _backend("sqlite")(path, timeout_seconds=settings.timeout_seconds)
    return store
