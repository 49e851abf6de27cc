"""A worker's prediction journal: records appended with one ``write`` before the answer leaves.

Each :class:`~shipyard.logs.writer.PredictionLogWriter` owns one journal folder::

    <root>/<kind>/_journal/<stamp>-<host>-<pid>-<random>/
        lock                  flock'ed by the owner for as long as it lives
        seg-000001.journal    one frame per record, appended with os.write
        seg-000002.journal    ...

A frame is ``<magic byte> <header length> <payload length>`` (little-endian, 9 bytes),
then a JSON header and a raw payload: the prediction log puts a request's input matrix
and probabilities there as the bytes NumPy holds them, so neither the request path nor
the roll formats or parses a float (:meth:`~shipyard.logs.kinds.LogKind.encode`).

When the log root is a bucket, the journals stay on the host's own disk (under the
project's ``.shipyard/journal/<kind>/``): a journal is appended on every request, which
no object store can do. The name carries the host (:func:`~shipyard.logs.root.host_id`),
and the Parquet files rolled from it carry the name, so hosts never collide.

A record reaches the page cache in the ``write`` call, so a killed worker loses nothing
it answered; ``fsync`` (every ``serving.log_fsync_seconds``) bounds what a crash of the
whole machine loses. The writer's roll seals the open segment, turns sealed segments
into Parquet files and deletes them.

Who may roll a journal: its owner, or, once the owner is dead, whoever takes its
``lock`` (the kernel releases a dead process's ``flock``, even after ``kill -9``, and a
pid reused since cannot hold it). A folder is created under a hidden name and renamed
once locked, so nobody can take the lock of a journal that is still being born. Rolling
is idempotent: a segment's Parquet files have names derived from the journal, the
segment and the group, so rolling a segment again (the roller died between writing its
files and deleting it) replaces the same files instead of adding rows twice.

A frame cut short (by a failed ``write``, or a kill in the middle of one) ends its
segment: its ``log()`` never returned, so its request was never answered from it, and a
writer closes a segment after a failed write so that nothing follows a cut frame.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from shipyard.logs.root import host_id

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Journal", "claim_dead_journals", "frame", "journal_root", "segment_frames"]

_SEGMENT = "seg-{:06d}.journal"
_SEGMENTS = "seg-*.journal"
_FRAME = struct.Struct("<BII")  # magic, header length, payload length
_MAGIC = 0xA7


def frame(header: bytes, payload: bytes = b"") -> bytes:
    """One journal frame: a JSON ``header`` and a raw ``payload``."""
    return _FRAME.pack(_MAGIC, len(header), len(payload)) + header + payload


def journal_root(root: Path, kind: str) -> Path:
    """The folder holding every worker's journal of ``kind`` under the log ``root``."""
    return Path(root) / kind / "_journal"


class Journal:
    """One worker's journal folder: append lines, seal segments, list sealed ones.

    Not thread-safe: the writer calls :meth:`append` and :meth:`seal` under its lock.
    """

    def __init__(self, folder: Path, lock_fd: int) -> None:
        self.folder = folder
        self.name = folder.name
        self._lock_fd = lock_fd
        self._fd: int | None = None
        self._sequence = 0
        self._open_rows = 0  # rows in the open segment
        self._sealed: list[tuple[Path, int]] = []  # (segment, rows), oldest first

    @classmethod
    def create(cls, parent: Path) -> Journal:
        """A new, locked journal folder under ``parent`` (created if missing)."""
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # raw inputs: owner only
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{host_id()}-{os.getpid()}-{secrets.token_hex(4)}"
        hidden = parent / f".{name}"
        hidden.mkdir(mode=0o700)
        lock_fd = os.open(hidden / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            final = parent / name
            os.rename(hidden, final)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(final, lock_fd)

    @property
    def fd(self) -> int | None:
        """The open segment's file descriptor (None before the first append after a seal)."""
        return self._fd

    def append(self, data: bytes, rows: int) -> None:
        """Write ``data`` (whole frames) to the open segment; OSError if it did not all land.

        After a failure the segment is closed, so a later frame never follows a cut one.
        """
        fd = self._fd
        if fd is None:
            self._sequence += 1
            path = self.folder / _SEGMENT.format(self._sequence)
            fd = self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._open_rows = 0
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                if written <= 0:  # pragma: no cover - a regular file writes or raises
                    raise OSError(errno.EIO, "journal write wrote nothing")
                view = view[written:]
        except OSError:
            self._close_segment()
            raise
        self._open_rows += rows

    def sync(self, fsync: object = os.fsync) -> None:
        """``fsync`` the open segment (``fsync`` is the call to use: a seam for tests)."""
        if self._fd is not None:
            fsync(self._fd)  # type: ignore[operator]

    def seal(self) -> None:
        """Close the open segment: later lines go to a new one, this one may be rolled."""
        self._close_segment()

    def sealed(self) -> list[tuple[Path, int]]:
        """Sealed segments not yet rolled, oldest first, with the rows each holds."""
        return list(self._sealed)

    def rolled(self, segment: Path) -> None:
        """Forget ``segment``: its rows are in Parquet files; delete it."""
        self._sealed = [(path, rows) for path, rows in self._sealed if path != segment]
        segment.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the (rolled) folder and release the lock."""
        self._close_segment()
        for path, _ in self._sealed:
            path.unlink(missing_ok=True)
        _remove_folder(self.folder, self._lock_fd)

    def release(self) -> None:
        """Close everything and give the lock up, leaving the segments for a recoverer."""
        self._close_segment()
        os.close(self._lock_fd)

    def _close_segment(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._sealed.append((self.folder / _SEGMENT.format(self._sequence), self._open_rows))
        self._open_rows = 0
        with contextlib.suppress(OSError):
            os.close(fd)


class DeadJournal:
    """A journal whose owner died: its segments, and the lock this process now holds."""

    def __init__(self, folder: Path, lock_fd: int) -> None:
        self.folder = folder
        self.name = folder.name
        self._lock_fd = lock_fd

    def segments(self) -> list[Path]:
        """Its segments, oldest first."""
        try:
            return sorted(self.folder.glob(_SEGMENTS))
        except OSError:
            return []

    def remove(self) -> None:
        """Delete the (rolled) folder and release the lock."""
        _remove_folder(self.folder, self._lock_fd)

    def release(self) -> None:
        """Give the lock back without removing anything (the roll failed; try later)."""
        os.close(self._lock_fd)


def claim_dead_journals(parent: Path) -> Iterator[DeadJournal]:
    """Each journal under ``parent`` whose owner is gone, locked by this process in turn.

    The caller rolls each and calls its ``remove()`` (or ``release()``) before the next.
    """
    if fcntl is None:  # pragma: no cover - Windows: no way to know the owner died
        return
    try:
        folders = sorted(p for p in parent.iterdir() if not p.name.startswith("."))
    except OSError:
        return
    for folder in folders:
        try:
            lock_fd = os.open(folder / "lock", os.O_RDWR)  # never O_CREAT: see the docstring
        except OSError:
            continue
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its owner (or another recoverer) holds it
            os.close(lock_fd)
            continue
        if not (folder / "lock").exists():  # removed by a recoverer before we locked
            os.close(lock_fd)
            continue
        yield DeadJournal(folder, lock_fd)


def segment_frames(segment: Path) -> Iterator[tuple[bytes, memoryview]]:
    """The whole frames of ``segment`` in order, as (header, payload); a cut one ends it."""
    data = memoryview(segment.read_bytes())
    at, end, size = 0, len(data), _FRAME.size
    while at + size <= end:
        magic, header_length, payload_length = _FRAME.unpack_from(data, at)
        header_end = at + size + header_length
        payload_end = header_end + payload_length
        if magic != _MAGIC or payload_end > end:
            return
        yield bytes(data[at + size : header_end]), data[header_end:payload_end]
        at = payload_end


def _remove_folder(folder: Path, lock_fd: int) -> None:
    try:
        for path in folder.glob(_SEGMENTS):
            path.unlink(missing_ok=True)
        (folder / "lock").unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass  # a stray file: the folder stays, empty of segments, harmless
    finally:
        os.close(lock_fd)
