"""Record every prediction and label to Parquet, durably handed off before the answer leaves.

``PredictionLogWriter.log()`` appends the record, as one JSON line, to this worker's
journal (:mod:`shipyard.logs.journal`) with one ``os.write``: once it returns, the record
is in the page cache and survives the worker being killed. The journal is ``fsync``'ed at
most every ``fsync_seconds`` (0: on every write), which bounds what a crash of the whole
machine loses. One background thread rolls the journal into Parquet files every
``roll_rows`` rows or ``roll_seconds`` seconds, whichever comes first, and recovers the
journals of workers that died before rolling theirs. Files are partitioned hive-style::

    <root>/<kind>/model=<name>/date=YYYY-MM-DD/part-<stamp>-<host>-<pid>-<random>-<segment>-<group>-<n>.parquet

Many server processes, on one host or several, may write into one root at once: names
never collide (they carry the host, the pid and a random part), and readers never see
half a file: locally each file is written under a temporary name, fsync'ed, then
renamed; in a bucket (``root`` a remote :class:`~shipyard.storage.location.Location`)
each file is one PUT, which an object store makes visible whole or not at all. The
journal never goes to a bucket: with a remote root, ``journal`` names a folder on this
host's disk (the server uses ``<workspace>/journal/<kind>``). Rolling a journal segment
twice writes the same names again, never a row twice.

A request of many rows is journaled in chunks of ``_CHUNK_ROWS`` rows; nothing is dropped
for size. When the journal cannot be written (disk full, folder unwritable), records
wait in memory (at most ``max_queue`` rows) and are retried with backoff for
``retry_seconds``; what is still not journaled then is lost, counted, and recorded with
its time and model in :mod:`shipyard.logs.losses`, so each window's coverage is known.
:attr:`PredictionLogWriter.health` says whether the writer is failing, for readiness.

Call ``close()`` (or use the writer as a context manager) on shutdown: it rolls what is
journaled and removes the journal. A writer never closed leaves its journal for the next
writer on the same root to recover.

``inputs`` is a struct with one typed field per model input, so a window over the log
reads plain columns (``inputs.age`` in DuckDB). Files of different versions may hold
different fields; readers union them by name. ``output`` and ``label`` are JSON strings
(``output->>'$'``), with non-finite floats stored as JSON ``null``.

What a ``kind`` of log holds is registered in :mod:`shipyard.logs.kinds`; the two
built-in kinds, :class:`Predictions` and :class:`Labels`, are defined here.

Given a :class:`~shipyard.logs.pii.PiiPolicy`, the writer masks the PII-tagged fields of
``inputs`` (keyed hash or dropped) before a file is written, and hands the raw values
to the policy's separate store when it keeps them: no raw tagged value reaches a file
under the log root (the journal holds them until the roll, under the log root's
``_journal`` folder, which nothing reads but the writer). Labels are normally written
through :class:`~shipyard.logs.label_book.LabelBook`, which checks conflicts first.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time as clock
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.errors import ConfigError, StorageError
from shipyard.jsonable import to_json
from shipyard.logs.journal import (
    Journal,
    claim_dead_journals,
    journal_root,
    segment_frames,
)
from shipyard.logs.kinds import (
    LogKind,
    log_kind,
    log_kinds,
    register,
)
from shipyard.logs.kinds import log_schema as log_schema
from shipyard.logs.kinds import model_dir as model_dir
from shipyard.logs.losses import LossRecord, append_losses
from shipyard.logs.prediction_rows import (
    BATCH_HEADER,
    Requests,
    decode_batch,
    decode_frames,
    encode_batch,
    records_to_table,
    requests_of,
    requests_to_table,
)
from shipyard.logs.records import (
    LABEL_SCHEMA,
    PREDICTION_SCHEMA,
    LabelRecord,
    PredictionBatch,
    PredictionRecord,
    prediction_schema,
)
from shipyard.logs.root import host_id, log_root, model_location
from shipyard.moments import as_utc
from shipyard.storage.location import Location

__all__ = [
    "LABEL_SCHEMA",
    "PREDICTION_SCHEMA",
    "LabelRecord",
    "Labels",
    "LogHealth",
    "LogMask",
    "PredictionBatch",
    "PredictionLogWriter",
    "PredictionRecord",
    "Predictions",
    "log_schema",
    "make_private_dirs",
    "model_dir",
    "parquet_bytes",
    "prediction_schema",
    "write_log_file",
]

logger = logging.getLogger(__name__)

_SLICE = 1024  # rows converted per stretch of the writer thread
_PAUSE = 0.0005  # seconds the writer yields between slices
_CHUNK_ROWS = 8192  # rows per journal line: a large request is journaled in chunks
_RETRY_FIRST = 0.05  # seconds before the first retry of a journal that refused a write
_RETRY_MOST = 2.0  # the longest wait between retries (journal or roll)
_RECOVER_SECONDS = 10.0  # how often a running writer looks for dead workers' journals


@register
class Predictions(LogKind):
    """The prediction log: one row per answered row, live or shadow."""

    name = "predictions"
    schema = PREDICTION_SCHEMA
    record_types = (PredictionRecord, PredictionBatch)

    def to_table(self, records: Sequence[Any]) -> pa.Table:
        """Batches column by column; single records row by row."""
        if type(records[0]) is PredictionRecord:
            return records_to_table(records)
        groups: list[Requests] = []
        batches: list[PredictionBatch] = []
        for record in records:
            if type(record) is PredictionBatch:
                batches.append(record)
            else:
                groups.append(record)
        if batches:  # one group per model, version and role: a group carries one of each
            runs: dict[tuple[str, str, str], list[PredictionBatch]] = {}
            for batch in batches:
                runs.setdefault((batch.model, batch.version, batch.role), []).append(batch)
            groups.extend(requests_of(run) for run in runs.values())
        tables = [requests_to_table(group) for group in groups]
        if len(tables) == 1:
            return tables[0]
        return pa.concat_tables(tables, promote_options="permissive")

    def rows(self, record: Any) -> int:
        """A batch is as many rows as the request had."""
        return 1 if type(record) is PredictionRecord else int(record.rows)

    def layout(self, record: Any) -> Any:
        """Batches of one column layout and dtype share a file (one ``inputs`` struct)."""
        if type(record) is PredictionRecord:
            return None
        return (tuple(record.columns), record.matrix.dtype.str)

    def decode_frames(
        self, frames: Iterable[tuple[bytes, memoryview]], max_rows: int
    ) -> Iterator[Any]:
        """Runs of batches of one layout and day as one columnar record each."""
        return decode_frames(frames, super().decode, max_rows)

    def encode(self, record: Any) -> bytes:
        """A batch as frames of at most ``_CHUNK_ROWS`` rows, its arrays as raw bytes."""
        if type(record) is PredictionBatch:
            if record.rows <= _CHUNK_ROWS:
                return encode_batch(record)
            return b"".join(encode_batch(chunk) for chunk in record.chunks(_CHUNK_ROWS))
        return super().encode(record)

    def decode(self, header: bytes, payload: memoryview) -> Any:
        """The batch (or record) of one journal frame."""
        if header.startswith(BATCH_HEADER):
            return decode_batch(header, payload)
        return super().decode(header, payload)


@register
class Labels(LogKind):
    """The label log: ground truth joined to predictions by ``request_id``."""

    name = "labels"
    schema = LABEL_SCHEMA
    record_types = (LabelRecord,)

    def to_table(self, records: Sequence[Any]) -> pa.Table:
        """One row per label, the label as JSON."""
        stamp = LABEL_SCHEMA.field("time").type
        columns: dict[str, pa.Array] = {
            "request_id": pa.array([str(r.request_id) for r in records], pa.string()),
            "time": pa.array([r.time for r in records], stamp),
            "model": pa.array([str(r.model) for r in records], pa.string()),
            "label": pa.array([to_json(r.label) for r in records]),
            "sender": pa.array([str(r.sender) for r in records], pa.string()),
            "token_id": pa.array([r.token_id for r in records], pa.string()),
            "received_at": pa.array(
                [r.time if r.received_at is None else r.received_at for r in records], stamp
            ),
        }
        return pa.Table.from_pydict(columns, schema=LABEL_SCHEMA)


class LogMask(Protocol):
    """What the writer asks of a PII policy (:class:`~shipyard.logs.pii.PiiPolicy`)."""

    @property
    def tagged(self) -> bool:
        """Whether any column is tagged."""
        ...

    def apply(self, table: pa.Table, model: str, day: date) -> pa.Table:
        """``table`` as the log may keep it (raw values, if kept, go elsewhere first)."""
        ...


_FILES = itertools.count()  # per process; with the pid, stamp and random part: unique


def write_log_file(
    directory: Path,
    table: pa.Table,
    *,
    private: bool = False,
    name: str | None = None,
    durable: bool = False,
) -> Path:
    """Write ``table`` as a Parquet file in ``directory``; readers never see half of it.

    ``private`` makes the folders 0700 and the file 0600 (the raw PII store). ``name``
    (without ``.parquet``) replaces a file of that name, for an idempotent roll; by default
    the name is new. ``durable`` fsyncs the file and its folder before returning.
    """
    if private:
        make_private_dirs(directory)
    else:
        directory.mkdir(parents=True, exist_ok=True)
    if name is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"part-{stamp}-{os.getpid()}-{next(_FILES):06d}-{secrets.token_hex(4)}"
    temporary = directory / f".{name}.{secrets.token_hex(4)}.parquet.tmp"
    final = directory / f"{name}.parquet"
    try:
        pq.write_table(table, temporary)
        if private:
            temporary.chmod(0o600)
        if durable:
            _fsync_path(temporary)
        os.replace(temporary, final)
        if durable:
            _fsync_path(directory)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as the bytes of one Parquet file, for a single PUT to a bucket."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each readable by the owner only."""
    missing = []
    for folder in (directory, *directory.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is narrowed by the umask, never widened


@dataclass(frozen=True, slots=True)
class LogHealth:
    """Whether a writer can log right now, for readiness and ``/metrics``.

    ``failing`` while records cannot be journaled, are waiting in memory for the journal,
    or rolls to Parquet keep failing; ``reason`` says what failed last (no secrets).
    """

    failing: bool
    reason: str | None
    failing_since: datetime | None
    lost_rows: int
    pending_rows: int
    retrying_rows: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "failing": self.failing,
            "reason": self.reason,
            "failing_since": None if self.failing_since is None else self.failing_since.isoformat(),
            "lost_rows": self.lost_rows,
            "pending_rows": self.pending_rows,
            "retrying_rows": self.retrying_rows,
        }


@dataclass(frozen=True, slots=True)
class _Held:
    """A record the journal refused, waiting for a retry."""

    since: float  # monotonic
    data: bytes
    rows: int
    loss: LossRecord | None


class PredictionLogWriter:
    """Journal each record before ``log()`` returns; a thread rolls the journal into Parquet."""

    def __init__(
        self,
        root: Path | Location,
        *,
        kind: str = "predictions",
        max_queue: int = 100_000,
        roll_rows: int = 10_000,
        roll_seconds: float = 5.0,
        fsync_seconds: float = 1.0,
        retry_seconds: float = 30.0,
        pii: LogMask | None = None,
        fsync: Callable[[int], None] = os.fsync,
        journal: Path | None = None,
    ) -> None:
        """``pii`` masks the tagged input columns before any file is written.

        ``max_queue`` bounds the rows held in memory while the journal cannot be written,
        ``retry_seconds`` how long they are retried before they count as lost.
        ``fsync`` is the call that syncs the journal (a seam for tests); ``journal`` the
        folder of the workers' journals (default ``<root>/<kind>/_journal``; required, on
        this host's disk, when ``root`` is a bucket).
        """
        self._kind = log_kind(kind)
        self._record_types = self._kind.record_types
        self._rows = self._kind.rows
        if max_queue < 1 or roll_rows < 1 or roll_seconds <= 0 or fsync_seconds < 0:
            raise ConfigError(
                f"Invalid prediction-log limits: max_queue={max_queue}, roll_rows={roll_rows}, "
                f"roll_seconds={roll_seconds}, fsync_seconds={fsync_seconds}.",
                hint="max_queue and roll_rows must be at least 1, roll_seconds above 0, "
                "fsync_seconds 0 or more.",
            )
        self.location = log_root(root)
        # A local root stays the Path it always was; a bucket is its Location.
        self.root: Path | Location = root if isinstance(root, Location) else Path(root)
        if not self.location.is_local and journal is None:
            raise ConfigError(
                f"The {kind} log in {self.location.url} needs a local journal folder.",
                hint="Pass journal=<a folder on this host's disk>; the server uses "
                "<workspace>/journal/<kind>.",
            )
        self.kind = kind
        self.max_queue = max_queue
        self.roll_rows = roll_rows
        self.roll_seconds = roll_seconds
        self.fsync_seconds = fsync_seconds
        self.retry_seconds = retry_seconds
        self.pii = pii if pii is not None and pii.tagged else None
        self._fsync = fsync
        self._journals = (
            journal if journal is not None else journal_root(self.location.local_path(), kind)
        )
        self._journal: Journal | None = None
        self._lock = threading.Lock()  # the journal's fd, the held records, the counters
        self._write_lock = threading.Lock()  # one roller at a time: thread, flush() or close()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pending = 0  # rows journaled, not yet rolled
        self._dirty = False  # journaled since the last fsync
        self._last_sync = clock.monotonic()  # of the last fsync (none yet: since creation)
        self._held: deque[_Held] = deque()
        self._held_rows = 0
        self._retry_delay = _RETRY_FIRST
        self._next_retry = 0.0
        self._roll_after = 0.0  # monotonic: no roll before (after a failed one)
        self._journal_error: str | None = None
        self._roll_error: str | None = None
        self._failing_since: datetime | None = None
        self._unsaved: dict[tuple[str, str, str, datetime, str], int] = {}
        self._written = 0
        self._recovered = 0
        self._dropped = 0
        self._last_error: Exception | None = None
        self._writer_id = f"{host_id()}-{os.getpid()}-{secrets.token_hex(4)}"

    @property
    def journals(self) -> Path:
        """The folder of this writer's journals (on this host's disk)."""
        return self._journals

    @property
    def written(self) -> int:
        """Rows written to Parquet so far (recovered rows of dead workers included)."""
        return self._written

    @property
    def recovered(self) -> int:
        """Rows this writer rolled from the journals of dead workers."""
        return self._recovered

    @property
    def dropped(self) -> int:
        """Rows lost: writer closed, unreadable, or not journaled within ``retry_seconds``."""
        return self._dropped

    @property
    def queue_depth(self) -> int:
        """Rows waiting for Parquet: journaled, or held for a retry of the journal."""
        return self._pending + self._held_rows

    @property
    def last_error(self) -> Exception | None:
        """The most recent error that lost rows or failed a write, or None."""
        return self._last_error

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def failing(self) -> bool:
        """Whether records cannot be journaled, wait for a retry, or cannot be rolled now."""
        return bool(self._held) or self._journal_error is not None or self._roll_error is not None

    @property
    def health(self) -> LogHealth:
        """The writer's state for readiness: failing or not, why, and what is lost."""
        reason = self._journal_error or self._roll_error
        failing = self.failing
        return LogHealth(
            failing=failing,
            reason=reason if failing else None,
            failing_since=self._failing_since if failing else None,
            lost_rows=self._dropped,
            pending_rows=self._pending,
            retrying_rows=self._held_rows,
        )

    def start(self) -> None:
        """Start the background thread (once); it first recovers dead workers' journals."""
        if self._closed:
            raise RuntimeError("This PredictionLogWriter is closed; create a new one.")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"shipyard-{self.kind}-log", daemon=True
            )
            self._thread.start()

    def log(self, record: Any) -> bool:
        """Journal one record or batch before returning; False (counted lost) if it cannot be.

        True means journaled, or held for a retry while the journal cannot be written.
        """
        if type(record) not in self._record_types:
            expected = " or ".join(t.__name__ for t in self._record_types)
            self._lose(_rows_anywhere(record), TypeError(f"expected {expected}, got {record!r}"))
            return False
        rows = self._rows(record)
        try:
            data = self._kind.encode(record)
        except Exception as exc:
            self._lose(rows, exc, _loss_of(record, rows))
            return False
        with self._lock:
            if self._closed:
                closed = RuntimeError("the prediction log writer is closed")
                self._lose(rows, closed, _loss_of(record, rows), locked=True)
                return False
            if not self._held:
                try:
                    journal = self._journal or self._open_journal()
                    journal.append(data, rows)
                except OSError as exc:
                    self._journal_failed(exc)
                else:
                    self._pending += rows
                    self._dirty = True
                    if self.fsync_seconds == 0:
                        self._sync_locked(journal)
                    if self._journal_error is not None:
                        self._journal_error = None
                        self._settle()
                    if self._pending >= self.roll_rows and not self._wake.is_set():
                        self._wake.set()
                    return True
            if self._held_rows + rows > self.max_queue:
                full = OSError(
                    f"the journal cannot be written and {self._held_rows} rows already wait"
                )
                self._lose(rows, full, _loss_of(record, rows), locked=True)
                return False
            self._held.append(_Held(clock.monotonic(), data, rows, _loss_of(record, rows)))
            self._held_rows += rows
        self._wake.set()
        return True

    def flush(self) -> None:
        """Roll everything journaled so far into Parquet; returns once it is on disk.

        What cannot be rolled now (the disk is full) stays in the journal for later.
        """
        self._retry_held()
        self._roll()
        self._save_losses()

    def close(self) -> None:
        """Roll what is journaled, stop the thread and remove the journal. Safe to call twice.

        Held records get one last try at the journal; what still cannot be journaled is
        lost. A journal that cannot be rolled now stays for the next writer to recover.
        Journals of dead workers found now are recovered first.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._retry_held(final=True)
        if self._thread is not None:
            self._guarded(self._recover)
        self._roll()
        self._save_losses()
        with self._write_lock, self._lock:
            journal, self._journal = self._journal, None
            if journal is not None:
                journal.seal()
                if journal.sealed():
                    journal.release()
                else:
                    journal.remove()

    def __enter__(self) -> PredictionLogWriter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- the background thread -----------------------------------------------------------

    def _run(self) -> None:
        self._guarded(self._recover)
        now = clock.monotonic()
        next_roll = now + self.roll_seconds
        next_recovery = now + _RECOVER_SECONDS
        while not self._closed:
            deadlines = [next_roll, next_recovery]
            if self._held:
                deadlines.append(self._next_retry)
            if self._dirty and self.fsync_seconds > 0:
                deadlines.append(self._last_sync + self.fsync_seconds)

            self._wake.wait(max(0.0, min(deadlines) - clock.monotonic()))
            self._wake.clear()
            if self._closed:
                break
            now = clock.monotonic()
            if self._held and now >= self._next_retry:
                self._guarded(self._retry_held)
            if self._sync_due(now):
                self._guarded(self._sync)
            if now >= next_roll or self._pending >= self.roll_rows:
                if now >= next_roll:
                    next_roll = now + self.roll_seconds
                if now >= self._roll_after:
                    self._guarded(self._roll)
            if now >= next_recovery:
                next_recovery = now + _RECOVER_SECONDS
                self._guarded(self._recover)
            if self._unsaved:
                self._guarded(self._save_losses)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:  # the thread must outlive any bug in one step
            logger.exception("prediction log writer failed")
            self._last_error = exc

    def _sync_due(self, now: float) -> bool:
        interval = self.fsync_seconds
        return self._dirty and interval > 0 and now >= self._last_sync + interval

    def _open_journal(self) -> Journal:
        self._journal = Journal.create(self._journals)
        return self._journal

    def _sync(self) -> None:
        """fsync the open segment, outside the lock (a dup'ed fd survives a seal)."""
        with self._lock:
            journal = self._journal
            fd = None if journal is None or journal.fd is None else os.dup(journal.fd)
            self._dirty = False
            self._last_sync = clock.monotonic()
        if fd is None:
            return
        try:
            self._fsync(fd)
        except OSError as exc:
            self._journal_failed(exc, "journal fsync failed")
        finally:
            os.close(fd)

    def _sync_locked(self, journal: Journal) -> None:
        try:
            journal.sync(self._fsync)
        except OSError as exc:
            self._journal_failed(exc, "journal fsync failed")
        self._dirty = False

    def _journal_failed(self, exc: OSError, what: str = "journal write failed") -> None:
        self._journal_error = f"{what}: {exc}"
        self._last_error = exc
        if self._failing_since is None:
            self._failing_since = datetime.now(UTC)

    def _settle(self) -> None:
        if self._journal_error is None and self._roll_error is None and not self._held:
            self._failing_since = None

    def _retry_held(self, *, final: bool = False) -> None:
        """Journal the held records, oldest first; lose those past ``retry_seconds``."""
        expired: list[_Held] = []
        with self._lock:
            error: OSError | None = None
            while self._held:
                held = self._held[0]
                try:
                    journal = self._journal or self._open_journal()
                    journal.append(held.data, held.rows)
                except OSError as exc:
                    self._journal_failed(exc)
                    error = exc
                    break
                self._held.popleft()
                self._held_rows -= held.rows
                self._pending += held.rows
                self._dirty = True
            now = clock.monotonic()
            while self._held and (final or now - self._held[0].since >= self.retry_seconds):
                held = self._held.popleft()
                self._held_rows -= held.rows
                expired.append(held)
            if error is None:
                self._journal_error = None
                self._retry_delay = _RETRY_FIRST
            elif self._held:
                self._next_retry = now + self._retry_delay
                self._retry_delay = min(self._retry_delay * 2, _RETRY_MOST)
            for held in expired:
                cause = error or OSError("the journal could not be written in time")
                self._lose(held.rows, cause, held.loss, locked=True)
            self._settle()
        if expired:
            logger.warning(
                "lost %d %s rows: not journaled within %g s",
                sum(h.rows for h in expired),
                self.kind,
                self.retry_seconds,
            )

    def _roll(self) -> None:
        """Seal the open segment and turn every sealed one into Parquet files."""
        with self._write_lock:
            with self._lock:
                journal = self._journal
                if journal is None:
                    return
                journal.seal()
                sealed = journal.sealed()
            for segment, rows in sealed:
                try:
                    self._roll_segment(segment, journal.name)
                except (OSError, StorageError) as exc:
                    self._roll_failed(exc)
                    return
                with self._lock:
                    journal.rolled(segment)
                    self._pending -= rows
            if self._roll_error is not None:
                with self._lock:
                    self._roll_error = None
                    self._settle()

    def _roll_failed(self, exc: OSError | StorageError) -> None:
        logger.warning("cannot roll the %s journal now (kept, retried): %s", self.kind, exc)
        with self._lock:
            self._roll_error = f"roll to Parquet failed: {exc}"
            self._last_error = exc
            if self._failing_since is None:
                self._failing_since = datetime.now(UTC)
        self._roll_after = clock.monotonic() + _RETRY_MOST

    def _recover(self) -> None:
        """Roll the journals of writers that died (their lock is free) and delete them."""
        with self._write_lock:
            for dead in claim_dead_journals(self._journals):
                try:
                    for segment in dead.segments():
                        self._recovered += self._roll_segment(segment, dead.name)
                        segment.unlink(missing_ok=True)
                except (OSError, StorageError) as exc:
                    dead.release()
                    self._roll_failed(exc)
                    return
                logger.info("recovered the %s journal %s", self.kind, dead.name)
                dead.remove()

    def _roll_segment(self, segment: Path, journal: str) -> int:
        """Write ``segment``'s records as Parquet files named after it; the rows written."""
        prefix = f"part-{journal}-{segment.stem.removeprefix('seg-')}"
        group: list[Any] = []
        rows = groups = written = 0
        for record in self._kind.decode_frames(segment_frames(segment), self.roll_rows):
            if isinstance(record, Exception):
                self._lose(1, record)
                continue
            size = self._rows(record)
            if group and rows + size > self.roll_rows:  # files of at most roll_rows rows
                written += self._write(group, f"{prefix}-{groups:04d}")
                group, rows, groups = [], 0, groups + 1
            group.append(record)
            rows += size
        if group:
            written += self._write(group, f"{prefix}-{groups:04d}")
        return written

    def _write(self, batch: list[Any], name: str) -> int:
        """One file per model, day and input layout (a file's ``inputs`` has one struct type).

        OSError propagates: the segment stays in the journal and is rolled again later.
        """
        partitions: dict[tuple[str, date, Any], list[Any]] = {}
        for record in batch:
            try:
                key = (str(record.model), as_utc(record.time).date(), self._kind.layout(record))
            except Exception as exc:
                self._lose(self._rows(record), exc, _loss_of(record, self._rows(record)))
                continue
            partitions.setdefault(key, []).append(record)
        written = 0
        for number, ((model, day, _), records) in enumerate(partitions.items()):
            table = self._to_table_in_slices(records)
            if table.num_rows == 0:
                continue
            try:
                if self.pii is not None:
                    table = self.pii.apply(table, model, day)
            except OSError:
                raise
            except Exception as exc:
                logger.warning("lost %d %s records: %s", table.num_rows, self.kind, exc)
                self._lose(table.num_rows, exc, _loss_of(records[0], table.num_rows))
                continue
            file = f"{name}-{number:02d}"
            if self.location.is_local:
                directory = model_dir(self.location.local_path(), self.kind, model)
                write_log_file(directory / f"date={day}", table, name=file, durable=True)
            else:
                folder = model_location(self.location, self.kind, model)
                folder.write_bytes(f"date={day}/{file}.parquet", parquet_bytes(table))
            self._written += table.num_rows
            written += table.num_rows
        return written

    def _to_table_in_slices(self, records: list[Any]) -> pa.Table:
        """Convert about ``_SLICE`` rows at a time, letting the server run in between.

        Converting holds the GIL; in one long stretch it stalls the event loop again and
        again (each time the loop waits for I/O, it must wait out the switch interval to
        get the GIL back). Slices with a pause between keep each stall short. (A record
        may be a run of many requests: slices count rows.)
        """
        slices: list[list[Any]] = [[]]
        rows = 0
        for record in records:
            if rows >= _SLICE:
                slices.append([])
                rows = 0
            slices[-1].append(record)
            rows += self._rows(record)
        if len(slices) == 1:
            return self._to_table(records)
        tables = []
        for piece in slices:
            tables.append(self._to_table(piece))
            clock.sleep(_PAUSE)
        return self._concat(tables, records[0])

    def _to_table(self, records: list[Any]) -> pa.Table:
        try:
            return self._kind.to_table(records)
        except Exception:
            pass
        # One bad record must not sink its neighbours: convert one by one, drop the bad.
        good = []
        for record in records:
            try:
                good.append(self._kind.to_table([record]))
            except Exception as exc:
                rows = self._rows(record)
                self._lose(rows, exc, _loss_of(record, rows))
        return self._concat(good, records[0]) if good else self._kind.schema.empty_table()

    def _concat(self, tables: list[pa.Table], example: Any) -> pa.Table:
        """One table; when the pieces' inputs cannot be unified, the first (the rest lost)."""
        try:
            return pa.concat_tables(tables, promote_options="permissive")
        except Exception as exc:
            rows = sum(t.num_rows for t in tables[1:])
            self._lose(rows, exc, _loss_of(example, rows))
            return tables[0]

    # --- losses ------------------------------------------------------------------------------

    def _lose(
        self, count: int, error: Exception, loss: LossRecord | None = None, *, locked: bool = False
    ) -> None:
        if locked:
            self._count_loss(count, error, loss)
        else:
            with self._lock:
                self._count_loss(count, error, loss)

    def _count_loss(self, count: int, error: Exception, loss: LossRecord | None) -> None:
        self._dropped += count
        self._last_error = error
        if loss is not None:
            reason = f"{type(error).__name__}: {error}"[:200]
            key = (loss.model, loss.version, loss.role, loss.time.replace(microsecond=0), reason)
            self._unsaved[key] = self._unsaved.get(key, 0) + count

    def _save_losses(self) -> None:
        """Append the losses not yet on disk to their models' sidecars (kept if it fails)."""
        with self._lock:
            unsaved, self._unsaved = self._unsaved, {}
        if not unsaved:
            return
        losses = [
            LossRecord(time, model, version, rows, reason, role)
            for (model, version, role, time, reason), rows in unsaved.items()
        ]
        try:
            append_losses(self.location, self.kind, losses, writer=self._writer_id)
        except (OSError, StorageError):
            with self._lock:
                for key, rows in unsaved.items():
                    self._unsaved[key] = self._unsaved.get(key, 0) + rows


def _loss_of(record: Any, rows: int) -> LossRecord | None:
    """What a lost ``record`` was, for its window's coverage (None if it cannot say)."""
    try:
        return LossRecord(
            time=as_utc(record.time),
            model=str(record.model),
            version=str(getattr(record, "version", "")),
            rows=rows,
            reason="",
            role=str(getattr(record, "role", "live")),
        )
    except Exception:
        return None


def _rows_anywhere(record: Any) -> int:
    """Rows ``record`` is in the log that takes it (1 when none does)."""
    for name in log_kinds():
        kind = log_kind(name)
        if type(record) in kind.record_types:
            return kind.rows(record)
    return 1
