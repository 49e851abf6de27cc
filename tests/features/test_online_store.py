"""The online store's contract, one conformance test for both backends (SQLite, real Redis).

Read/write, the upsert order (newest by event then created time), version isolation,
missing keys, nulls, key canonicalisation; then each backend's failure modes: an
unreachable Redis is a FeatureStoreUnavailable naming its address (never its password)
and the same store object works again once Redis answers; an unusable SQLite path too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from shipyard.config import Config
from shipyard.errors import DataError, FeatureStoreUnavailable
from shipyard.features.definitions import Feature, FeatureView, FileSource
from shipyard.features.online import OnlineRow, OnlineStore, entity_key, open_online_store
from shipyard.features.online_redis import RedisOnlineStore
from shipyard.features.online_sqlite import SqliteOnlineStore
from tests.support import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH0 = T0.timestamp()


def _view(ttl_hours: float = 2, created: bool = True, name: str = "driver_stats") -> FeatureView:
    return FeatureView(
        name,
        entities=("driver",),
        source=FileSource("data/driver_stats.parquet"),
        features=(
            Feature("conv_rate", "float64"),
            Feature("trips", "int64"),
            Feature("city", "string"),
        ),
        created_timestamp_column="created" if created else None,
        ttl=timedelta(hours=ttl_hours),
    )


def _batch(rows: list[dict[str, Any]], created: bool = True) -> pa.RecordBatch:
    columns: dict[str, Any] = {
        "driver_id": pa.array([r["id"] for r in rows], pa.int64()),
        "event_timestamp": pa.array(
            [T0 + timedelta(hours=r["at"]) for r in rows], pa.timestamp("us", tz="UTC")
        ),
        "conv_rate": pa.array([r.get("rate") for r in rows], pa.float64()),
        "trips": pa.array([r.get("trips") for r in rows], pa.int64()),
        "city": pa.array([r.get("city") for r in rows], pa.string()),
    }
    if created:
        columns["created"] = pa.array(
            [T0 + timedelta(hours=r.get("created", r["at"])) for r in rows],
            pa.timestamp("us", tz="UTC"),
        )
    return pa.record_batch(columns)


def _redis_or_skip() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 is unreachable: {exc}")
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    """A fresh, empty store of each backend; Redis keys under a prefix of this test's own."""
    if request.param == "sqlite":
        sqlite = SqliteOnlineStore(tmp_path / "online.db")
        yield sqlite
        sqlite.close()
        return
    _redis_or_skip()
    redis_store = RedisOnlineStore(REDIS_URL, prefix=f"test-h3:{uuid.uuid4().hex}")
    yield redis_store
    redis_store.delete_prefix()
    redis_store.close()


def test_rows_round_trip_with_their_times(store: OnlineStore) -> None:
    view = _view()
    batch = _batch(
        [
            {"id": 1, "at": 1, "created": 2, "rate": 0.5, "trips": 7, "city": "Oslo"},
            {"id": 2, "at": 0, "rate": 0.25, "trips": 3, "city": "Bergen"},
        ]
    )
    assert store.write(view, ["driver_id"], batch) == 2
    one, two = store.read(view, [(1,), (2,)])
    assert one == OnlineRow((0.5, 7, "Oslo"), EPOCH0 + 3600, EPOCH0 + 7200)
    assert two == OnlineRow((0.25, 3, "Bergen"), EPOCH0, EPOCH0)
    assert isinstance(one.values[1], int)


def test_missing_keys_read_as_none_in_order(store: OnlineStore) -> None:
    view = _view()
    store.write(view, ["driver_id"], _batch([{"id": 1, "at": 0, "rate": 0.1, "trips": 1}]))
    rows = store.read(view, [(9,), (1,), (8,), (1,)])
    assert [row is not None for row in rows] == [False, True, False, True]
    assert rows[1] == rows[3]
    assert store.read(view, [(404,)]) == [None]


def test_nulls_and_nan_are_served_as_none(store: OnlineStore) -> None:
    view = _view()
    batch = pa.record_batch(
        {
            "driver_id": pa.array([5]),
            "event_timestamp": pa.array([T0], pa.timestamp("us", tz="UTC")),
            "created": pa.array([T0], pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array([float("nan")]),
            "trips": pa.array([None], pa.int64()),
            "city": pa.array([None], pa.string()),
        }
    )
    store.write(view, ["driver_id"], batch)
    assert store.read(view, [(5,)])[0] == OnlineRow((None, None, None), EPOCH0, EPOCH0)


def test_a_newer_event_replaces_and_an_older_one_never_does(store: OnlineStore) -> None:
    view = _view()
    store.write(view, ["driver_id"], _batch([{"id": 1, "at": 2, "rate": 0.2}]))
    late = _batch([{"id": 1, "at": 1, "created": 9, "rate": 0.1}])  # created later, older event
    assert store.write(view, ["driver_id"], late) == 0
    assert store.read(view, [(1,)])[0].values[0] == 0.2  # type: ignore[union-attr]
    assert store.write(view, ["driver_id"], _batch([{"id": 1, "at": 3, "rate": 0.3}])) == 1
    assert store.read(view, [(1,)])[0].values[0] == 0.3  # type: ignore[union-attr]


def test_on_the_same_event_time_the_later_created_row_wins(store: OnlineStore) -> None:
    view = _view()
    store.write(view, ["driver_id"], _batch([{"id": 1, "at": 2, "created": 5, "rate": 0.99}]))
    earlier = _batch([{"id": 1, "at": 2, "created": 3, "rate": 0.12}])
    assert store.write(view, ["driver_id"], earlier) == 0
    assert store.read(view, [(1,)])[0].values[0] == 0.99  # type: ignore[union-attr]
    later = _batch([{"id": 1, "at": 2, "created": 6, "rate": 0.5}])
    assert store.write(view, ["driver_id"], later) == 1
    row = store.read(view, [(1,)])[0]
    assert row is not None and row.values[0] == 0.5 and row.created_ts == EPOCH0 + 6 * 3600


def test_within_one_batch_the_newest_row_per_key_is_kept(store: OnlineStore) -> None:
    view = _view()
    batch = _batch(
        [
            {"id": 1, "at": 2, "created": 4, "rate": 0.99},
            {"id": 1, "at": 3, "created": 3, "rate": 0.3},
            {"id": 1, "at": 3, "created": 2, "rate": 0.25},
            {"id": 1, "at": 1, "created": 9, "rate": 0.1},
        ]
    )
    assert store.write(view, ["driver_id"], batch) == 1
    assert store.read(view, [(1,)])[0].values[0] == 0.3  # type: ignore[union-attr]


def test_a_view_without_created_times_orders_by_event_time_alone(store: OnlineStore) -> None:
    view = _view(created=False)
    store.write(view, ["driver_id"], _batch([{"id": 1, "at": 2, "rate": 0.2}], created=False))
    store.write(view, ["driver_id"], _batch([{"id": 1, "at": 1, "rate": 0.1}], created=False))
    row = store.read(view, [(1,)])[0]
    assert row == OnlineRow((0.2, None, None), EPOCH0 + 7200, None)


def test_a_new_view_version_never_serves_the_old_rows(store: OnlineStore) -> None:
    old, new = _view(ttl_hours=2), _view(ttl_hours=3)
    assert old.version != new.version
    store.write(old, ["driver_id"], _batch([{"id": 1, "at": 0, "rate": 0.1}]))
    assert store.read(new, [(1,)]) == [None]
    store.write(new, ["driver_id"], _batch([{"id": 1, "at": 0, "rate": 0.7}]))
    assert store.read(old, [(1,)])[0].values[0] == 0.1  # type: ignore[union-attr]
    assert store.read(new, [(1,)])[0].values[0] == 0.7  # type: ignore[union-attr]
    other = _view(name="other_stats")
    assert store.read(other, [(1,)]) == [None]


def test_keys_are_canonical_whatever_their_python_type(store: OnlineStore) -> None:
    view = _view()
    store.write(view, ["driver_id"], _batch([{"id": 1, "at": 0, "rate": 0.1}]))
    rows = store.read(view, [(1,), (1.0,), ("1",), (np.int64(1),), (np.float32(1.0),)])
    assert all(row is not None and row.values[0] == 0.1 for row in rows)
    assert store.read(view, [(1.5,), ("01",)]) == [None, None]


def test_composite_and_text_keys(store: OnlineStore) -> None:
    view = _view()
    batch = pa.record_batch(
        {
            "region": pa.array(["north", "north", "south"]),
            "driver_id": pa.array([1, 2, 1]),
            "event_timestamp": pa.array([T0] * 3, pa.timestamp("us", tz="UTC")),
            "created": pa.array([T0] * 3, pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array([0.1, 0.2, 0.3]),
            "trips": pa.array([1, 2, 3]),
            "city": pa.array(["a", "b", "c"]),
        }
    )
    assert store.write(view, ["region", "driver_id"], batch) == 3
    rows = store.read(view, [("south", 1), ("north", "2"), ("east", 1)])
    assert [row.values[2] if row else None for row in rows] == ["c", "b", None]


def test_rows_without_key_or_event_time_are_skipped(store: OnlineStore) -> None:
    view = _view()
    batch = pa.record_batch(
        {
            "driver_id": pa.array([None, 2, 3], pa.int64()),
            "event_timestamp": pa.array([T0, None, T0], pa.timestamp("us", tz="UTC")),
            "created": pa.array([T0] * 3, pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array([0.1, 0.2, 0.3]),
            "trips": pa.array([1, 2, 3]),
            "city": pa.array(["a", "b", "c"]),
        }
    )
    assert store.write(view, ["driver_id"], batch) == 1
    assert [row is not None for row in store.read(view, [(2,), (3,)])] == [False, True]


def test_values_are_stored_as_the_declared_types(store: OnlineStore) -> None:
    view = _view()
    batch = pa.record_batch(
        {
            "driver_id": pa.array([1]),
            "event_timestamp": pa.array(["2026-01-01T00:00:00"]),  # ISO text is a time
            "created": pa.array(["2026-01-01T01:00:00+01:00"]),
            "conv_rate": pa.array([3], pa.int32()),  # declared float64
            "trips": pa.array([4], pa.int32()),
            "city": pa.array(["x"]),
        }
    )
    store.write(view, ["driver_id"], batch)
    row = store.read(view, [(1,)])[0]
    assert row == OnlineRow((3.0, 4, "x"), EPOCH0, EPOCH0)
    assert isinstance(row.values[0], float)


def test_a_column_the_view_needs_is_named_when_missing(store: OnlineStore) -> None:
    view = _view()
    batch = _batch([{"id": 1, "at": 0}]).drop_columns(["trips"])
    with pytest.raises(DataError, match="'trips'"):
        store.write(view, ["driver_id"], batch)
    text = _batch([{"id": 1, "at": 0}]).set_column(3, "trips", pa.array(["many"]))
    with pytest.raises(DataError, match="'trips'"):
        store.write(view, ["driver_id"], text)


def test_reads_from_many_threads_at_once(store: OnlineStore) -> None:
    view = _view()
    rows = [{"id": i, "at": 0, "rate": i / 100, "trips": i} for i in range(50)]
    store.write(view, ["driver_id"], _batch(rows))
    errors: list[BaseException] = []
    seen: list[int] = []

    def reader(offset: int) -> None:
        try:
            for i in range(50):
                row = store.read(view, [((i + offset) % 50,)])[0]
                assert row is not None and row.values[1] == (i + offset) % 50
                seen.append(1)
        except BaseException as exc:  # collected and re-raised on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(seen) == 200


def test_racing_writers_leave_the_newest_row(store: OnlineStore) -> None:
    view = _view()
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:  # each writer's hours interleave with the others', newest last or first
            hours = [offset + 4 * i for i in range(25)]
            for hour in hours if offset % 2 else reversed(hours):
                store.write(view, ["driver_id"], _batch([{"id": 1, "at": hour, "trips": hour}]))
        except BaseException as exc:  # collected and re-raised on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    row = store.read(view, [(1,)])[0]
    assert row is not None and row.values[1] == 99 and row.event_ts == EPOCH0 + 99 * 3600


def test_entity_key_is_canonical() -> None:
    assert {entity_key([v]) for v in (1, 1.0, "1", np.int64(1), np.float64(1.0))} == {"1"}
    assert entity_key([1.5]) == "1.5"
    assert entity_key([True]) == "true"
    assert entity_key(["a", 2]) != entity_key(["a2"])
    assert entity_key(["a", 2]) == entity_key(["a", 2.0])
    assert entity_key([b"x"]) == "x"


# --- failure and recovery ------------------------------------------------------------


class _Proxy:
    """A TCP forwarder from ``port`` to Redis: Redis "comes back" when it starts."""

    def __init__(self, port: int, target: tuple[str, int] = ("127.0.0.1", 6379)) -> None:
        self.port = port
        self.target = target
        self._server = socket.create_server(("127.0.0.1", port))
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_redis_down_is_unavailable_then_recovers_by_itself() -> None:
    _redis_or_skip()
    port = free_port()
    store = RedisOnlineStore(
        f"redis://127.0.0.1:{port}/0", prefix=f"test-h3:{uuid.uuid4().hex}", timeout_seconds=2.0
    )
    view = _view()
    batch = _batch([{"id": 1, "at": 0, "rate": 0.1}])
    with pytest.raises(FeatureStoreUnavailable) as caught:
        store.read(view, [(1,)])
    assert caught.value.message == f"Redis at 127.0.0.1:{port} refused the connection."
    with pytest.raises(FeatureStoreUnavailable):
        store.write(view, ["driver_id"], batch)

    proxy = _Proxy(port)  # Redis "comes back" on the same address
    try:
        assert store.write(view, ["driver_id"], batch) == 1
        assert store.read(view, [(1,)])[0].values[0] == 0.1  # type: ignore[union-attr]
        store.delete_prefix()
    finally:
        store.close()
        proxy.close()


def test_the_redis_password_never_appears_in_the_error() -> None:
    port = free_port()
    store = RedisOnlineStore(
        f"redis://:hunter2@127.0.0.1:{port}/0", prefix="test-h3:never", timeout_seconds=2.0
    )
    with pytest.raises(FeatureStoreUnavailable) as caught:
        store.read(_view(), [(1,)])
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "hunter2" not in str(caught.value)
    store.close()


def test_sqlite_path_that_cannot_be_made_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    store = SqliteOnlineStore(blocker / "online.db")
    with pytest.raises(FeatureStoreUnavailable, match="not-a-folder"):
        store.read(_view(), [(1,)])
    blocker.unlink()
    assert store.read(_view(), [(1,)]) == [None]  # recovers once the path is usable
    store.close()


def test_open_online_store_follows_the_config(tmp_path: Path) -> None:
    sqlite = open_online_store(Config(root=tmp_path))
    assert sqlite.backend == "sqlite"
    assert isinstance(sqlite, SqliteOnlineStore)
    assert sqlite.path == tmp_path / ".shipyard" / "features" / "online.db"
    sqlite.close()
    config = Config.model_validate(
        {
            "project": "drivers",
            "root": tmp_path,
            "features": {"online": {"backend": "redis", "key_prefix": "team"}},
        }
    )
    redis_store = open_online_store(config)
    assert isinstance(redis_store, RedisOnlineStore)
    assert redis_store.prefix == "team:drivers"
    redis_store.close()
