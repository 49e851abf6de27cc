"""The feature benchmark's data: a seeded driver-stats source and entity rows, as Parquet.

- :func:`write_feature_rows`: ``drivers`` drivers, each with ``rows // drivers`` rows
  evenly spread over one day from :data:`BASE` (one a minute at full scale:
  1,000 × 1,440 = 1.44M rows), a few seconds of jitter, 1 % of rows sharing an event
  time with the row before (ties broken by ``created``), ``created`` 0–300 s after the
  event, and ``features`` columns ``f0 …``: float64, the last two int64. Written in
  chunks, so 10M rows never sit in memory at once.
- :func:`write_entity_rows`: ``rows`` entity rows (``row_id``, ``driver_id``,
  ``event_timestamp``): 2 % unknown drivers, times uniform over the day plus 3 h (some
  past the ttl of every row).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["BASE", "INT_FEATURES", "feature_names", "write_entity_rows", "write_feature_rows"]

BASE = datetime(2024, 1, 1, tzinfo=UTC)
DAY_US = 86_400 * 1_000_000
INT_FEATURES = 2
"""The last this many features are int64; the others float64."""


def feature_names(count: int) -> list[str]:
    """``f0 … f{count-1}``."""
    return [f"f{i}" for i in range(count)]


def _base_us() -> int:
    return int(BASE.timestamp() * 1_000_000)


def write_feature_rows(
    path: Path, *, drivers: int, rows: int, features: int, seed: int, chunk_drivers: int = 200
) -> int:
    """Write the source to ``path``; returns the number of rows written."""
    rng = np.random.default_rng(seed)
    per_driver = max(1, rows // drivers)
    step = DAY_US // per_driver
    names = feature_names(features)
    schema = pa.schema(
        [
            ("driver_id", pa.int64()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("created", pa.timestamp("us", tz="UTC")),
            *[
                (name, pa.int64() if i >= features - INT_FEATURES else pa.float64())
                for i, name in enumerate(names)
            ],
        ]
    )
    written = 0
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(0, drivers, chunk_drivers):
            ids = np.arange(first, min(drivers, first + chunk_drivers), dtype=np.int64)
            n = len(ids) * per_driver
            slot = np.tile(np.arange(per_driver, dtype=np.int64), len(ids))
            event = _base_us() + slot * step + rng.integers(0, max(1, step // 2), n)
            tie = rng.random(n) < 0.01
            tie[slot == 0] = False
            event[tie] = event[np.flatnonzero(tie) - 1]
            created = event + rng.integers(0, 300_000_000, n)
            columns = {
                "driver_id": np.repeat(ids, per_driver),
                "event_timestamp": event,
                "created": created,
            }
            for i, name in enumerate(names):
                if i >= features - INT_FEATURES:
                    columns[name] = rng.integers(0, 1_000, n)
                else:
                    columns[name] = rng.normal(size=n)
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            written += n
    return written


def write_entity_rows(path: Path, *, drivers: int, rows: int, seed: int) -> int:
    """Write the entity rows to ``path``; returns their number."""
    rng = np.random.default_rng(seed + 1)
    unknown = max(1, drivers // 50)
    table = pa.table(
        {
            "row_id": np.arange(rows, dtype=np.int64),
            "driver_id": rng.integers(0, drivers + unknown, rows),
            "event_timestamp": pa.array(
                _base_us() + rng.integers(0, DAY_US + 3 * 3_600_000_000, rows),
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    pq.write_table(table, path)
    return rows
