"""The label log as a book of record: a second label for a request is never a silent overwrite.

:meth:`LabelBook.write` takes one batch of labels for one model and, under a lock that
every process writing into the same log root shares, compares the batch's request ids
with every label already on disk, decides per ``labels.on_conflict``, writes one
Parquet file, and runs the caller's ``commit`` (the audit event) before the lock is
released. If ``commit`` fails, the file is removed: a batch is in the log and the audit
log together, or in neither.

- ``reject`` (the default): any request already labelled refuses the whole batch, a
  409 naming the request ids; nothing is written.
- ``keep_first``: labels for requests already labelled are ignored, and reported.
- ``keep_last``: every label is written; the old ones stay in the log, and readers take
  each request's latest label.

Why the disk is the truth: servers run as several workers, on several hosts sharing a
folder, beside ``shipyard labels ingest``. Each book keeps an index of the request ids
in every label file it has seen (per file, so pruned files drop out) and, under the
lock, reads only files that are new since its last look. Writes are synchronous (labels
are few next to predictions), so nothing is pending outside the lock. The lock is
``flock`` on ``<root>/labels/model=<name>/.lock``: it holds across processes on one
host and on network file systems that honour ``flock``.

In a bucket (``root`` a remote :class:`~shipyard.storage.location.Location`) each file
is one PUT and the check reads every host's files. The ``flock`` is then in
``lock_folder`` on this host's disk and orders this host's writers; hosts are ordered
by ``shared_lock``, a lock every host can take: :func:`database_lock` holds a
PostgreSQL advisory lock per model in the shared control-plane database for as long as
the check, the PUT and the audit event take. (Without one, two hosts taking labels for
the *same* request at the same instant could both pass the check.)
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import pyarrow.parquet as pq

from shipyard.errors import ConfigError, DataError, RequestError
from shipyard.logs.batch_files import by_day, remove_files, write_day_files
from shipyard.logs.kinds import log_kind
from shipyard.logs.root import (
    day_files,
    lock_folder,
    log_root,
    model_location,
    project_log_root,
)
from shipyard.logs.writer import LabelRecord, model_dir
from shipyard.storage.location import Location

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.store import Store

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LabelBook",
    "LabelOutcome",
    "OnConflict",
    "SharedLock",
    "conflict_error",
    "database_lock",
    "record_labels",
]

OnConflict = Literal["reject", "keep_first", "keep_last"]
_SHOWN = 5  # request ids named in a message or an audit payload


@dataclass(frozen=True)
class LabelOutcome:
    """What a batch did: the request ids written, ignored (keep_first), re-labelled."""

    model: str
    on_conflict: str
    written: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    files: tuple[PurePath, ...] = ()
    sender: str = "anonymous"
    token_id: str | None = None

    def audit_payload(self) -> dict[str, Any]:
        """The ``labels.written`` event's payload: counts, a digest and the first ids."""
        return {
            "count": len(self.written),
            "request_ids": list(self.written[:_SHOWN]),
            "request_ids_sha256": ids_digest(self.written),
            "ignored": len(self.ignored),
            "replaced": len(self.replaced),
            "on_conflict": self.on_conflict,
            "sender": self.sender,
            "token_id": self.token_id,
            "files": [path.name for path in self.files],
        }

    def to_dict(self) -> dict[str, Any]:
        """The reply to the sender: counts, and the ids ignored or re-labelled."""
        reply: dict[str, Any] = {"accepted": len(self.written), "dropped": 0}
        if self.ignored:
            reply["ignored"] = list(self.ignored)
        if self.replaced:
            reply["replaced"] = list(self.replaced)
        return reply


class LabelBook:
    """Conflict-checked, synchronous writes to the label log under ``root``."""

    def __init__(
        self,
        root: Path | Location,
        *,
        lock_folder: Path | None = None,
        shared_lock: SharedLock | None = None,
    ) -> None:
        """``lock_folder`` (on this host's disk) holds the locks when ``root`` is a bucket;
        ``shared_lock`` orders the writers of every host (see :func:`database_lock`)."""
        self.location = log_root(root)
        self.root: Path | Location = root if isinstance(root, Location) else Path(root)
        if not self.location.is_local and lock_folder is None:
            raise ConfigError(
                f"The label log in {self.location.url} needs a local folder for its lock.",
                hint="Pass lock_folder=<a folder on this host's disk> (the server uses "
                "<workspace>/locks).",
            )
        self.lock_folder = lock_folder
        self.shared_lock = shared_lock
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, frozenset[str]]] = {}  # model → file → ids

    @classmethod
    def for_config(cls, config: Config, store: Store) -> LabelBook:
        """The project's label book: its log root, and in a bucket, this host's lock
        folder (``.shipyard/locks``) and the database lock that orders every host."""
        root = project_log_root(config)
        if isinstance(root, Path):
            return cls(root)
        return cls(root, lock_folder=lock_folder(config), shared_lock=database_lock(store))

    def write(
        self,
        records: Sequence[LabelRecord],
        *,
        on_conflict: OnConflict = "reject",
        commit: Callable[[LabelOutcome], None] | None = None,
    ) -> LabelOutcome:
        """Write one batch for one model; a 409 (``RequestError``) when ``reject`` refuses it.

        A request id twice in one batch is a conflict too: ``reject`` refuses the batch,
        ``keep_first`` keeps its first label, ``keep_last`` its last. ``commit`` runs under
        the lock after the file is written (not when nothing was); if it raises, the file
        is removed and the error propagates.
        """
        if on_conflict not in ("reject", "keep_first", "keep_last"):
            raise ValueError(f"on_conflict must be reject, keep_first or keep_last: {on_conflict}")
        if not records:
            raise RequestError("No labels to write.")
        model = records[0].model
        if any(record.model != model for record in records):
            raise RequestError("One batch of labels is for one model.")
        first = records[0]
        twice = _repeated([record.request_id for record in records])
        if twice and on_conflict == "reject":
            raise conflict_error(twice, where="more than once in this batch")
        batch = _one_each(records, last=on_conflict == "keep_last")
        with self._locked(model):
            known = self._known(model)
            already = tuple(r.request_id for r in batch if r.request_id in known)
            if already and on_conflict == "reject":
                raise conflict_error(already)
            again = tuple(dict.fromkeys((*already, *twice)))  # in the log, or in this batch
            keep = batch
            if on_conflict == "keep_first":
                keep = [r for r in batch if r.request_id not in set(already)]
            files = self._write_files(model, keep)
            outcome = LabelOutcome(
                model=model,
                on_conflict=on_conflict,
                written=tuple(r.request_id for r in keep),
                ignored=again if on_conflict == "keep_first" else (),
                replaced=again if on_conflict == "keep_last" else (),
                files=tuple(PurePosixPath(path) for path in files),
                sender=first.sender,
                token_id=first.token_id,
            )
            try:
                if commit is not None and outcome.written:
                    commit(outcome)
            except BaseException:
                self._remove(files)
                raise
            seen = self._seen[model]
            for path, record_ids in zip(files, _ids_per_file(keep), strict=True):
                seen[path] = record_ids
        return outcome

    def labelled(self, model: str) -> frozenset[str]:
        """Every request id of ``model`` with a label on disk now."""
        with self._locked(model):
            return frozenset(self._known(model))

    @contextmanager
    def _locked(self, model: str) -> Iterator[None]:
        if self.location.is_local:
            directory = model_dir(self.location.local_path(), "labels", model)
            lock = directory / ".lock"
        else:
            assert self.lock_folder is not None
            directory = self.lock_folder
            lock = directory / f"labels-{quote(model, safe='')}.lock"
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock, open(lock, "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                if self.shared_lock is None:
                    yield
                else:
                    with self.shared_lock(model):
                        yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _known(self, model: str) -> set[str]:
        """Request ids labelled on disk: files already indexed, plus any new ones read now."""
        seen = self._seen.setdefault(model, {})
        folder = model_location(self.location, "labels", model)
        if folder.is_local:
            present = set(folder.glob("date=*/*.parquet"))
        else:
            present = set(day_files(folder))
        for gone in set(seen) - present:  # pruned
            del seen[gone]
        for path in sorted(present - set(seen)):
            try:
                source = path if folder.is_local else BytesIO(folder.fs.cat_file(path))
                column = pq.read_table(source, columns=["request_id"]).column(0)
            except FileNotFoundError:
                continue  # pruned while we listed
            except (OSError, KeyError, ValueError) as exc:
                raise DataError(
                    f"Cannot read the label file {path}: {exc}",
                    hint="A file there is not a Shipyard label file; move it out of the log.",
                ) from exc
            seen[path] = frozenset(str(value) for value in column.to_pylist())
        known: set[str] = set()
        for ids in seen.values():
            known.update(ids)
        return known

    def _write_files(self, model: str, records: list[LabelRecord]) -> list[str]:
        """One file per day the labels apply to (the log's date partition); their paths."""
        return write_day_files(self.location, log_kind("labels"), model, records)

    def _remove(self, paths: Sequence[str]) -> None:
        """Delete files this book wrote (their batch was refused after all)."""
        remove_files(self.location, paths)


SharedLock = Callable[[str], AbstractContextManager[None]]  # model -> a held lock


def database_lock(store: Store) -> SharedLock | None:
    """A lock per model that holds across hosts: a PostgreSQL advisory lock in the shared
    control-plane database. None for another database (SQLite lives on one host, where
    the ``flock`` is enough).

    The lock is held on a connection of its own, from the check of a batch to its audit
    event; if the holder dies, PostgreSQL ends its session and frees the lock.
    """
    from sqlalchemy import text

    engine = store.engine
    if engine.dialect.name != "postgresql":
        return None

    @contextmanager
    def locked(model: str) -> Iterator[None]:
        digest = hashlib.sha256(f"shipyard.labels:{model}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})

    return locked


def record_labels(store: Store, outcome: LabelOutcome, *, request_id: str | None = None) -> None:
    """The audit event of an accepted batch: ``labels.written`` on ``model:<name>``."""
    from shipyard.store.event_kinds import EventKind

    store.record(
        EventKind.LABELS_WRITTEN,
        f"model:{outcome.model}",
        outcome.audit_payload(),
        request_id=request_id,
    )


def conflict_error(request_ids: Sequence[str], *, where: str = "already") -> RequestError:
    """The 409 for labels of requests labelled already (or twice in a batch), naming them."""
    count = len(request_ids)
    return RequestError(
        f"{count} label{'s' if count > 1 else ''} conflict: request id"
        f"{'s' if count > 1 else ''} {_named(request_ids)} "
        f"{'have' if count > 1 else 'has'} a label {where}; nothing was written. "
        "labels.on_conflict is reject: send one label per unlabelled request, or set it to "
        "keep_first or keep_last.",
        status=409,
    )


def ids_digest(request_ids: Sequence[str]) -> str:
    """SHA-256 of the sorted request ids, one per line: names the batch in the audit log."""
    return hashlib.sha256("\n".join(sorted(request_ids)).encode()).hexdigest()


def _named(request_ids: Sequence[str]) -> str:
    shown = ", ".join(request_ids[:_SHOWN])
    more = len(request_ids) - _SHOWN
    return shown if more <= 0 else f"{shown} (and {more} more)"


def _repeated(ids: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    twice: list[str] = []
    for rid in ids:
        if rid in seen and rid not in twice:
            twice.append(rid)
        seen.add(rid)
    return twice


def _one_each(records: Sequence[LabelRecord], *, last: bool) -> list[LabelRecord]:
    """One record per request id: its first (or last) in the batch, in batch order."""
    chosen: dict[str, LabelRecord] = {}
    for record in records:
        if last or record.request_id not in chosen:
            chosen.pop(record.request_id, None)
            chosen[record.request_id] = record
    return list(chosen.values())


def _ids_per_file(records: list[LabelRecord]) -> list[frozenset[str]]:
    return [frozenset(r.request_id for r in group) for _, group in by_day(records)]
