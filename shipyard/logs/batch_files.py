"""One synchronously written Parquet file per day of a feedback batch, or none at all.

Labels and outcomes are written when they arrive, not through the journal: a batch is
accepted only once its files exist and its audit event is recorded, so a failure on the
way removes the files it already wrote (:func:`remove_files`). File names carry the host
and process, so two hosts never collide in one bucket.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from shipyard.errors import StorageError
from shipyard.logs.kinds import LogKind, model_dir
from shipyard.logs.root import host_id, model_location
from shipyard.logs.writer import parquet_bytes, write_log_file
from shipyard.moments import as_utc
from shipyard.storage.location import Location

__all__ = ["by_day", "remove_files", "write_day_files"]


def by_day(records: Sequence[Any]) -> list[tuple[date, list[Any]]]:
    """The records grouped by the UTC day of their ``time`` (the log's date partition)."""
    days: dict[date, list[Any]] = {}
    for record in records:
        days.setdefault(as_utc(record.time).date(), []).append(record)
    return sorted(days.items())


def write_day_files(
    location: Location, kind: LogKind, model: str, records: Sequence[Any]
) -> list[str]:
    """Write one file per day under ``<kind>/model=<model>/date=<day>/``; their paths.

    A failure part way removes what was written, then raises.
    """
    written: list[str] = []
    try:
        for day, group in by_day(records):
            table = kind.to_table(group)
            if location.is_local:
                local = model_dir(location.local_path(), kind.name, model)
                written.append(str(write_log_file(local / f"date={day}", table)))
            else:
                folder = model_location(location, kind.name, model)
                name = f"date={day}/{_file_name()}.parquet"
                written.append(folder.write_bytes(name, parquet_bytes(table)))
    except BaseException:
        remove_files(location, written)
        raise
    return written


def remove_files(location: Location, paths: Sequence[str]) -> None:
    """Delete files a batch wrote (the batch was refused after all)."""
    for path in paths:
        if location.is_local:
            Path(path).unlink(missing_ok=True)
        else:
            # A file no audit event names: readers would take it as late feedback.
            with contextlib.suppress(OSError, StorageError):
                location.fs.rm(path)


def _file_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"part-{stamp}-{host_id()}-{os.getpid()}-{secrets.token_hex(6)}"
