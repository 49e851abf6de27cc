"""The SQLite online store: one file, one table keyed by (view, version, entity key).

Each row holds the event and created times as numbers and the feature values as one
JSON array, so a lookup is one primary-key probe and one ``orjson.loads``. The file is
in WAL mode: a materialisation writing beside a server never blocks its reads. Each
thread gets its own connection (servers read from worker threads; SQLite connections
must not be shared across threads while in use).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import FeatureStoreUnavailable
from shipyard.features.online import OnlineRow, prepare_rows, view_version

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.features.definitions import FeatureView

__all__ = ["SqliteOnlineStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    view TEXT NOT NULL,
    version TEXT NOT NULL,
    entity TEXT NOT NULL,
    event_ts REAL NOT NULL,
    created_ts REAL,
    vals BLOB NOT NULL,
    PRIMARY KEY (view, version, entity)
) WITHOUT ROWID
"""

# Newer event time wins; on the same event time the later created time (a missing one is
# the oldest); the same times replace the stored row (a re-run is a correction).
_UPSERT = """
INSERT INTO online_features (view, version, entity, event_ts, created_ts, vals)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (view, version, entity) DO UPDATE SET
    event_ts = excluded.event_ts, created_ts = excluded.created_ts, vals = excluded.vals
WHERE excluded.event_ts > online_features.event_ts
   OR (excluded.event_ts = online_features.event_ts
       AND coalesce(excluded.created_ts, -1e300) >= coalesce(online_features.created_ts, -1e300))
"""

_READ_ONE = (
    "SELECT entity, event_ts, created_ts, vals FROM online_features "
    "WHERE view = ? AND version = ? AND entity = ?"
)

_CHUNK = 500  # keys per IN (...) lookup, well under SQLite's variable limit


class SqliteOnlineStore:
    """The online store in a SQLite file (``features.online.path``)."""

    backend = "sqlite"

    def __init__(self, path: Path, *, timeout_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.timeout_seconds = timeout_seconds
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if self._closed:
            raise FeatureStoreUnavailable(f"The online store {self.path} was closed.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Writers wait up to 30 s for another writer; readers never wait in WAL mode.
            connection = sqlite3.connect(
                self.path, timeout=max(self.timeout_seconds, 30.0), check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc) from None
        self._local.connection = connection
        with self._lock:
            self._opened.append(connection)
        return connection

    def _unavailable(self, exc: BaseException) -> FeatureStoreUnavailable:
        broken = getattr(self._local, "connection", None)
        self._local.connection = None  # the next call opens a fresh connection
        if broken is not None:
            with self._lock:
                if broken in self._opened:
                    self._opened.remove(broken)
            with contextlib.suppress(sqlite3.Error):
                broken.close()
        return FeatureStoreUnavailable(
            f"The online store {self.path} cannot be used: {exc}",
            hint="Check that the file's folder exists and is writable, and that the disk "
            "has space (features.online.path).",
        )

    def read(self, view: FeatureView, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRow | None]:
        """One entry per key: its stored row of this view version, or None."""
        from shipyard.features.online import entity_key

        connection = self._connection()
        texts = [entity_key(key) for key in keys]
        found: dict[str, OnlineRow] = {}
        try:
            if len(texts) == 1:
                rows = connection.execute(_READ_ONE, (view.name, view_version(view), texts[0]))
                fetched = rows.fetchall()
            else:
                fetched = []
                unique = list(dict.fromkeys(texts))
                for start in range(0, len(unique), _CHUNK):
                    chunk = unique[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    fetched.extend(
                        connection.execute(
                            "SELECT entity, event_ts, created_ts, vals FROM online_features "
                            f"WHERE view = ? AND version = ? AND entity IN ({marks})",
                            (view.name, view_version(view), *chunk),
                        ).fetchall()
                    )
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        for entity, event_ts, created_ts, blob in fetched:
            found[entity] = OnlineRow(tuple(orjson.loads(blob)), event_ts, created_ts)
        return [found.get(text) for text in texts]

    def write(self, view: FeatureView, key_columns: Sequence[str], batch: pa.RecordBatch) -> int:
        """Upsert ``batch``'s newest row per key; the number of keys whose row changed."""
        rows = prepare_rows(view, key_columns, batch)
        if not rows:
            return 0
        connection = self._connection()
        name, version = view.name, view_version(view)
        params = [(name, version, row.key, row.event_ts, row.created_ts, row.blob) for row in rows]
        try:
            with connection:
                before = connection.total_changes
                connection.executemany(_UPSERT, params)
                return connection.total_changes - before
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

    def close(self) -> None:
        """Close every thread's connection."""
        self._closed = True
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            with contextlib.suppress(sqlite3.Error):  # closing is best effort
                connection.close()
        self._local = threading.local()
