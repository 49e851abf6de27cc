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
host and on network file systems that honour ``flock``; an object store needs one
writer.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.parquet as pq

from shipyard.errors import DataError, RequestError
from shipyard.logs.kinds import log_kind
from shipyard.logs.writer import LabelRecord, model_dir, write_log_file
from shipyard.moments import as_utc

if TYPE_CHECKING:
    from shipyard.store import Store

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LabelBook", "LabelOutcome", "OnConflict", "conflict_error", "record_labels"]

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
    files: tuple[Path, ...] = ()
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

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._seen: dict[str, dict[Path, frozenset[str]]] = {}  # model → file → ids

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
                files=tuple(files),
                sender=first.sender,
                token_id=first.token_id,
            )
            try:
                if commit is not None and outcome.written:
                    commit(outcome)
            except BaseException:
                for path in files:
                    path.unlink(missing_ok=True)
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
        directory = model_dir(self.root, "labels", model)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock, open(directory / ".lock", "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _known(self, model: str) -> set[str]:
        """Request ids labelled on disk: files already indexed, plus any new ones read now."""
        seen = self._seen.setdefault(model, {})
        directory = model_dir(self.root, "labels", model)
        present = set(directory.glob("date=*/*.parquet"))
        for gone in set(seen) - present:  # pruned
            del seen[gone]
        for path in sorted(present - set(seen)):
            try:
                column = pq.read_table(path, columns=["request_id"]).column(0)
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

    def _write_files(self, model: str, records: list[LabelRecord]) -> list[Path]:
        """One file per day the labels apply to (the log's date partition)."""
        kind = log_kind("labels")
        written: list[Path] = []
        try:
            for day, group in _by_day(records):
                folder = model_dir(self.root, "labels", model) / f"date={day.isoformat()}"
                written.append(write_log_file(folder, kind.to_table(group)))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return written


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


def _by_day(records: list[LabelRecord]) -> list[tuple[date, list[LabelRecord]]]:
    days: dict[date, list[LabelRecord]] = {}
    for record in records:
        days.setdefault(as_utc(record.time).date(), []).append(record)
    return sorted(days.items())


def _ids_per_file(records: list[LabelRecord]) -> list[frozenset[str]]:
    return [frozenset(r.request_id for r in group) for _, group in _by_day(records)]
