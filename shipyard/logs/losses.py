"""What the prediction log lost, kept beside it, and the coverage of a window.

A writer that cannot journal or convert rows (disk full, unwritable folder, a record it
cannot read) records each loss as one JSON line in ``<root>/<kind>/model=<m>/losses.ndjson``:
when the lost predictions were made, of which version, how many rows, and why. Readers of a
window (monitoring, guardrails, label joins) compare what reached the log with what was
lost in the same window: a window's **coverage** is logged rows ÷ (logged + lost). A
decision on a window below ``monitoring.min_log_coverage`` says so and does not act.

Appends are one ``write`` of whole lines with ``O_APPEND``, so workers sharing a root never
interleave their lines. An object in a bucket cannot be appended to: there, each save of
a writer is one new object ``<root>/<kind>/model=<m>/losses/<host>-<pid>-<random>-<n>.ndjson``,
so writers on several hosts never touch each other's, and a reader sums them all (a
window's coverage counts the losses of every host).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from shipyard.jsonable import dump_json
from shipyard.logs.kinds import model_dir
from shipyard.logs.root import fresh_listing, log_root, model_location
from shipyard.moments import as_utc
from shipyard.storage.location import Location

__all__ = ["LogCoverage", "LossRecord", "append_losses", "log_coverage", "read_losses"]

LOSSES_FILE = "losses.ndjson"
LOSSES_FOLDER = "losses"  # in a bucket: one object per save
_SAVES = itertools.count()


@dataclass(frozen=True, slots=True)
class LossRecord:
    """``rows`` predictions of ``model`` made at ``time`` that never reached the log."""

    time: datetime
    model: str
    version: str
    rows: int
    reason: str
    role: str = "live"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "time": as_utc(self.time).isoformat(),
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "reason": self.reason,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True)
class LogCoverage:
    """How much of a window's answered predictions reached the log."""

    logged: int
    lost: int

    @property
    def answered(self) -> int:
        """Rows answered in the window: logged or lost."""
        return self.logged + self.lost

    @property
    def ratio(self) -> float:
        """logged ÷ answered; 1.0 for a window with no answers."""
        return 1.0 if self.answered == 0 else self.logged / self.answered

    @property
    def complete(self) -> bool:
        """Whether nothing is known to be lost."""
        return self.lost == 0

    def enough(self, minimum: float) -> bool:
        """Whether the coverage is at least ``minimum`` (``monitoring.min_log_coverage``)."""
        return self.ratio >= minimum

    def describe(self) -> str:
        """One sentence for a decision's reason."""
        return (
            f"the log holds {self.logged:,} of {self.answered:,} answered rows in this window "
            f"({self.ratio:.1%}); {self.lost:,} were lost"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"logged": self.logged, "lost": self.lost, "ratio": self.ratio}


def append_losses(
    root: Path | Location, kind: str, losses: Iterable[LossRecord], *, writer: str = "writer"
) -> None:
    """Add ``losses`` to each model's sidecar (OSError if the folder cannot take them).

    In a bucket, each model's losses become one new object named after ``writer`` (its
    host, pid and a random part) and a counter; a StorageError if the bucket refuses it.
    """
    by_model: dict[str, list[bytes]] = {}
    for loss in losses:
        line = dump_json(loss.to_dict()) + b"\n"
        by_model.setdefault(loss.model, []).append(line)
    where = log_root(root)
    for model, lines in by_model.items():
        if not where.is_local:
            name = f"{LOSSES_FOLDER}/{writer}-{next(_SAVES):06d}.ndjson"
            model_location(where, kind, model).write_bytes(name, b"".join(lines))
            continue
        directory = model_dir(where.local_path(), kind, model)
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOSSES_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, b"".join(lines))
        finally:
            os.close(fd)


def read_losses(
    root: Path | Location,
    model: str,
    *,
    kind: str = "predictions",
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LossRecord]:
    """``model``'s recorded losses with ``since <= time < until``, oldest first."""
    raw = _raw_losses(model_location(root, kind, model))
    start = None if since is None else as_utc(since)
    end = None if until is None else as_utc(until)
    found = []
    for line in raw.splitlines():
        try:
            entry = orjson.loads(line)
            loss = LossRecord(
                time=as_utc(datetime.fromisoformat(entry["time"])),
                model=str(entry["model"]),
                version=str(entry.get("version", "")),
                rows=int(entry["rows"]),
                reason=str(entry.get("reason", "")),
                role=str(entry.get("role", "live")),
            )
        except (ValueError, KeyError, TypeError):
            continue  # a cut line (its writer died mid-write): nothing to count
        if (start is None or loss.time >= start) and (end is None or loss.time < end):
            found.append(loss)
    return sorted(found, key=lambda loss: loss.time)


def _raw_losses(folder: Location) -> bytes:
    """Every loss line of one model's log: the local sidecar and the per-save objects."""
    parts: list[bytes] = []
    if folder.is_local:
        with contextlib.suppress(FileNotFoundError):
            parts.append((folder.local_path() / LOSSES_FILE).read_bytes())
        return b"\n".join(parts)
    fresh_listing(folder)
    for path in folder.glob(f"{LOSSES_FOLDER}/*.ndjson"):
        try:
            name = path.rsplit("/", 1)[-1]
            parts.append(folder.read_bytes(f"{LOSSES_FOLDER}/{name}"))
        except FileNotFoundError:
            continue  # pruned while we listed
    return b"\n".join(parts)


def log_coverage(
    root: Path | Location,
    model: str,
    logged: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    versions: Collection[str] | None = None,
    roles: Collection[str] | None = None,
) -> LogCoverage:
    """Coverage of a window that read ``logged`` rows of ``model`` with ``since <= time < until``.

    Only losses of the given ``versions`` and ``roles`` count (all when None).
    """
    losses = read_losses(root, model, since=since, until=until)
    lost = sum(
        loss.rows
        for loss in losses
        if (versions is None or loss.version in versions) and (roles is None or loss.role in roles)
    )
    return LogCoverage(logged=int(logged), lost=lost)
