"""Log record kinds: what each log under ``<root>/<kind>/`` holds, registered by name.

Adding a log (traces, say) is one :class:`LogKind` subclass, registered; the writer
and the reader then take ``kind="traces"`` with no other change::

    @register
    class Traces(LogKind):
        name, schema, record_types = "traces", TRACE_SCHEMA, (TraceRecord,)

        def to_table(self, records):
            return pa.Table.from_pylist([asdict(r) for r in records], schema=self.schema)

Records carry ``model`` and ``time`` (the writer partitions files on them); the schema
has ``request_id``, ``time`` and ``model`` columns (the reader filters and sorts on
them). The built-in ``predictions`` and ``labels`` are in :mod:`shipyard.logs.writer`.

Records are dataclasses: the writer journals each as one frame (:meth:`LogKind.encode`,
see :func:`shipyard.logs.journal.frame`) and reads it back when it rolls the journal into
Parquet (:meth:`LogKind.decode`). The default codec is a JSON header with every field,
non-finite floats and ``datetime`` fields included; a kind overrides it for speed (the
prediction log does: its batches' arrays travel as raw bytes).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import orjson
import pyarrow as pa

from shipyard.errors import ConfigError
from shipyard.logs.journal import frame

__all__ = [
    "LogKind",
    "journal_fallback",
    "journal_header",
    "log_kind",
    "log_kinds",
    "log_schema",
    "model_dir",
    "register",
    "unregister",
]

_JOURNAL_OPTIONS = orjson.OPT_SERIALIZE_NUMPY  # a frame header writes NumPy arrays as lists

_TYPE = "_type"
_FLOAT = "$float"  # a non-finite float, which JSON has no literal for


class LogKind(ABC):
    """One log: its Parquet schema, the records it accepts, and how they become rows."""

    name: ClassVar[str]
    schema: ClassVar[pa.Schema]
    record_types: ClassVar[tuple[type, ...]]

    @abstractmethod
    def to_table(self, records: Sequence[Any]) -> pa.Table:
        """The rows of ``records`` (all of one :meth:`layout`), with :attr:`schema`'s columns."""

    def rows(self, record: Any) -> int:
        """Rows one queued record becomes in the file (a batch of requests is many)."""
        return 1

    def layout(self, record: Any) -> Hashable:
        """Records of one layout may share a file; by default all do."""
        return None

    def encode(self, record: Any) -> bytes:
        """``record`` as journal frames (one, here: a JSON header), losing nothing."""
        fields = {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}
        fields[_TYPE] = type(record).__name__
        return frame(journal_header(fields))

    def decode_frames(
        self, frames: Iterable[tuple[bytes, memoryview]], max_rows: int
    ) -> Iterator[Any]:
        """The records of a segment's frames, in order; an Exception for an unreadable one.

        A kind may yield one record for many frames (anything :meth:`to_table`,
        :meth:`rows` and :meth:`layout` take, with ``model`` and ``time``) of at most
        ``max_rows`` rows, unless one frame alone has more.
        """
        for header, payload in frames:
            try:
                yield self.decode(header, payload)
            except Exception as exc:
                yield exc

    def decode(self, header: bytes, payload: memoryview) -> Any:
        """The record :meth:`encode` wrote as one frame's ``header`` and ``payload``."""
        fields = orjson.loads(header)
        types = {t.__name__: t for t in self.record_types}
        record_type = types[fields.pop(_TYPE)]
        for field in dataclasses.fields(record_type):
            value = _restored(fields.get(field.name))
            if isinstance(value, str) and "datetime" in str(field.type):
                value = datetime.fromisoformat(value)
            fields[field.name] = value
        return record_type(**fields)


def journal_header(value: Any, *, naive_utc: bool = False) -> bytes:
    """The JSON of a journal frame's header: NumPy arrays as lists, the rest through
    :func:`journal_fallback`; ``naive_utc`` writes naive datetimes as UTC.

    The journal's own encoder, beside :mod:`shipyard.jsonable`'s: frames are read back
    only by the roll, so they keep what strict JSON would lose (see :func:`_plain`).
    """
    option = _JOURNAL_OPTIONS | orjson.OPT_NAIVE_UTC if naive_utc else _JOURNAL_OPTIONS
    return orjson.dumps(value, option=option, default=journal_fallback)


def journal_fallback(value: Any) -> Any:
    """What orjson writes for a value it has no rule for (object arrays, odd scalars)."""
    if hasattr(value, "tolist"):
        return value.tolist()  # non-finite floats become JSON null: NaN again in a float array
    return str(value)


def _plain(value: Any) -> Any:
    """``value`` with arrays as lists and non-finite floats as ``{"$float": "nan"}``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else {_FLOAT: repr(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, datetime):
        return _plain(value.tolist())  # NumPy arrays and scalars
    return value


def _restored(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _FLOAT in value:
            return float(value[_FLOAT])
        return {k: _restored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restored(v) for v in value]
    return value


K = TypeVar("K", bound=type[LogKind])

_KINDS: dict[str, LogKind] = {}


def register(kind: K) -> K:
    """Register ``kind`` under its ``name`` (a class decorator); a name again replaces it."""
    _KINDS[kind.name] = kind()
    return kind


def unregister(name: str) -> None:
    """Forget the kind ``name`` (files already written stay where they are)."""
    _KINDS.pop(name, None)


def log_kinds() -> tuple[str, ...]:
    """The registered kinds' names, in registration order."""
    return tuple(_KINDS)


def log_kind(name: str) -> LogKind:
    """The registered kind ``name``."""
    found = _KINDS.get(name)
    if found is None:
        raise ConfigError(
            f"Unknown prediction-log kind {name!r}.",
            hint=f"Use one of: {', '.join(sorted(_KINDS))}.",
        )
    return found


def log_schema(kind: str) -> pa.Schema:
    """The Parquet schema of a log ``kind`` ("predictions", "labels" or one registered)."""
    return log_kind(kind).schema


def model_dir(root: Path, kind: str, model: str) -> Path:
    """The directory holding every file of ``model``'s ``kind`` log under ``root``."""
    return Path(root) / kind / f"model={quote(model, safe='')}"
