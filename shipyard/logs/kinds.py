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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from shipyard.errors import ConfigError

__all__ = ["LogKind", "log_kind", "log_kinds", "log_schema", "register", "unregister"]


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
