"""Where a log lives: a local folder or a bucket prefix, as one :class:`Location`.

Every writer and reader of the logs takes its root as a ``Path`` (a local folder, as
before) or a :class:`~shipyard.storage.location.Location` (``serving.logs`` or
``<artifact_root>/logs`` in a bucket). The layout is the same in both::

    <root>/<kind>/model=<name>/date=YYYY-MM-DD/part-<journal>-<segment>-<group>-<n>.parquet
    <root>/<kind>/model=<name>/losses.ndjson             (local: one file, appended)
    <root>/<kind>/model=<name>/losses/<writer>-<n>.ndjson (bucket: one object per save)

``<journal>`` is ``<UTC stamp>-<host>-<pid>-<random>`` (:func:`host_id` is the host's
name, sanitised), so servers on several hosts write into one bucket without two of
them ever choosing the same name. The journals themselves stay on each host's disk.
"""

from __future__ import annotations

import re
import socket
from functools import cache
from pathlib import Path
from urllib.parse import quote

from shipyard.config import Config
from shipyard.storage import log_location
from shipyard.storage.location import Location

__all__ = [
    "LogRoot",
    "day_files",
    "fresh_listing",
    "host_id",
    "journal_folder",
    "lock_folder",
    "log_root",
    "model_location",
    "project_log_root",
]

LogRoot = Path | Location  # what the log functions take as their root

_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")


def project_log_root(config: Config) -> Path | Location:
    """The project's log root: a ``Path`` for a local folder, a ``Location`` for a bucket.

    ``serving.logs`` when set, else ``<artifact_root>/logs`` when the artifacts are in a
    bucket, else ``.shipyard/logs`` (:func:`shipyard.storage.log_location`).
    """
    where = log_location(config)
    return where.local_path() if where.is_local else where


def journal_folder(config: Config, kind: str) -> Path | None:
    """Where this host's journals of ``kind`` go: None (beside a local log), else under
    the workspace (``.shipyard/journal/<kind>``), since a bucket cannot be appended to."""
    if isinstance(project_log_root(config), Path):
        return None
    return config.workspace / "journal" / kind


def lock_folder(config: Config) -> Path:
    """This host's folder for the label log's locks when the log is in a bucket."""
    return config.workspace / "locks"


def log_root(root: Path | str | Location) -> Location:
    """``root`` as a :class:`Location` (a local path becomes a local one)."""
    if isinstance(root, Location):
        return root
    return Location(Path(root).absolute().as_posix())


def model_location(root: Path | Location, kind: str, model: str) -> Location:
    """The folder (or prefix) holding every file of ``model``'s ``kind`` log under ``root``."""
    return log_root(root).child(kind, f"model={quote(model, safe='')}")


@cache
def host_id() -> str:
    """This host's name for file names: letters, digits and dots, at most 40 characters."""
    name = _UNSAFE.sub(".", socket.gethostname()).strip(".")[:40]
    return name or "host"


def day_files(where: Location) -> list[str]:
    """Full URLs of the Parquet files in ``where``'s ``date=*/`` partitions, sorted.

    One recursive listing of the prefix (a bucket lists it in pages of 1,000 keys),
    read afresh, rather than one request per day folder as a glob would.
    """
    fresh_listing(where)
    prefix = where.path().split("://", 1)[-1].rstrip("/") + "/"
    found = []
    for key in where.fs.find(where.path()):
        name = key.split("://", 1)[-1].removeprefix(prefix)
        day, _, file = name.partition("/")
        if day.startswith("date=") and file.endswith(".parquet") and "/" not in file:
            found.append(f"{where.scheme}://{prefix}{name}")
    return sorted(found)


def fresh_listing(where: Location) -> None:
    """Forget what the bucket's file system cached about ``where``: other hosts write there."""
    if not where.is_local:
        where.fs.invalidate_cache()
