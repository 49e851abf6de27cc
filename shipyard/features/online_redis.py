"""The Redis online store: one key per (project, view, version, entity).

A key ``<prefix>:<view>:<version>:<entity key>`` holds the JSON array
``[event_ts, created_ts, [values…]]``, so one lookup is one ``GET`` (many are one
``MGET``). Writes go through a Lua script that compares the stored times first, so a
late, older row never replaces a newer one even when two materialisations race.

Every command has the socket timeouts of ``features.online.timeout_seconds``. A Redis
that cannot be reached is a :class:`~shipyard.errors.FeatureStoreUnavailable` naming
its address (never its password); redis-py reconnects on the next call, so the store
recovers by itself when Redis returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import ConfigError, FeatureStoreUnavailable
from shipyard.features.online import OnlineRow, entity_key, prepare_rows, view_version

if TYPE_CHECKING:
    import pyarrow as pa
    import redis

    from shipyard.features.definitions import FeatureView

__all__ = ["RedisOnlineStore"]

# KEYS: the rows' keys; ARGV: event_ts, created_ts ("" for none), blob per key.
# Same rule as SQLite: newer event wins, then later created (none is oldest), ties replace.
_UPSERT = """
local written = 0
for i, key in ipairs(KEYS) do
  local event = tonumber(ARGV[3 * i - 2])
  local created = tonumber(ARGV[3 * i - 1]) or -1e300
  local old = redis.call('GET', key)
  local replace = true
  if old then
    local row = cjson.decode(old)
    local old_event = tonumber(row[1])
    local old_created = tonumber(row[2]) or -1e300
    if event < old_event or (event == old_event and created < old_created) then
      replace = false
    end
  end
  if replace then
    redis.call('SET', key, ARGV[3 * i])
    written = written + 1
  end
end
return written
"""

_CHUNK = 1000  # keys per script call: Redis stays responsive to readers between calls


class RedisOnlineStore:
    """The online store in Redis (``features.online.redis_url``)."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        timeout_seconds: float = 1.0,
        password: str | None = None,
    ) -> None:
        import redis

        self.prefix = prefix
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url,
                password=password,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
            )
        except ValueError as exc:
            raise ConfigError(
                f"features.online.redis_url is not a Redis URL: {exc}",
                hint="Write e.g. redis://127.0.0.1:6379/0 (the password comes from "
                "REDIS_PASSWORD).",
            ) from None
        kwargs = self._client.connection_pool.connection_kwargs
        self.address = (
            kwargs["path"] if "path" in kwargs else f"{kwargs.get('host')}:{kwargs.get('port')}"
        )
        self._upsert = self._client.register_script(_UPSERT)

    def key(self, view: FeatureView, values: Sequence[Any]) -> str:
        """The Redis key of one entity's row of ``view``'s current version."""
        return f"{self.prefix}:{view.name}:{view_version(view)}:{entity_key(values)}"

    def _unavailable(self, exc: BaseException) -> FeatureStoreUnavailable:
        import redis

        if isinstance(exc, redis.TimeoutError):
            reason = "did not answer in time"
        elif isinstance(exc, redis.AuthenticationError):
            reason = "refused the password (REDIS_PASSWORD)"
        elif isinstance(exc, redis.ConnectionError):
            reason = "refused the connection"
        else:
            reason = f"failed: {type(exc).__name__}"
        return FeatureStoreUnavailable(
            f"Redis at {self.address} {reason}.",
            hint="Start Redis or fix features.online.redis_url; serving recovers by itself "
            "once Redis answers.",
        )

    def read(self, view: FeatureView, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRow | None]:
        """One entry per key: its stored row of this view version, or None."""
        import redis

        head = f"{self.prefix}:{view.name}:{view_version(view)}:"
        names = [head + entity_key(key) for key in keys]
        try:
            blobs = [self._client.get(names[0])] if len(names) == 1 else self._client.mget(names)
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        out: list[OnlineRow | None] = []
        for blob in blobs:
            if blob is None:
                out.append(None)
                continue
            event_ts, created_ts, values = orjson.loads(blob)
            out.append(OnlineRow(tuple(values), event_ts, created_ts))
        return out

    def write(self, view: FeatureView, key_columns: Sequence[str], batch: pa.RecordBatch) -> int:
        """Upsert ``batch``'s newest row per key; the number of keys whose row changed."""
        import redis

        rows = prepare_rows(view, key_columns, batch)
        head = f"{self.prefix}:{view.name}:{view_version(view)}:"
        written = 0
        try:
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                args: list[Any] = []
                for row in chunk:
                    created = "" if row.created_ts is None else repr(row.created_ts)
                    blob = b"[%s,%s," % (
                        repr(row.event_ts).encode(),
                        b"null" if row.created_ts is None else repr(row.created_ts).encode(),
                    )
                    args.extend((repr(row.event_ts), created, blob + row.blob + b"]"))
                written += int(self._upsert(keys=[head + row.key for row in chunk], args=args))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return written

    def delete_prefix(self) -> int:
        """Remove every key of this store's prefix (tests, and dropping a project)."""
        import redis

        removed = 0
        try:
            batch: list[Any] = []
            for name in self._client.scan_iter(match=f"{self.prefix}:*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    removed += int(self._client.delete(*batch))
                    batch = []
            if batch:
                removed += int(self._client.delete(*batch))
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return removed

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
