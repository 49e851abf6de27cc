"""Record every prediction and label to Parquet without slowing the request path.

``PredictionLogWriter.log()`` only appends to a bounded in-memory queue; one background
thread turns the queue into Parquet files, rolling a file every ``roll_rows`` records or
``roll_seconds`` seconds, whichever comes first. Files are partitioned hive-style::

    <root>/<kind>/model=<name>/date=YYYY-MM-DD/part-<utc stamp>-<pid>-<seq>-<random>.parquet

Many server processes may write into one root at once: names never collide, and each
file is written under a temporary name then renamed, so readers never see half a file.

Call ``close()`` (or use the writer as a context manager) on shutdown: it writes what is
still queued. The thread is a daemon, so a writer never closed cannot hang the exit, but
its queue is lost.

``inputs`` is a struct with one typed field per model input, so a window over the log
reads plain columns (``inputs.age`` in DuckDB). Files of different versions may hold
different fields; readers union them by name. ``output`` and ``label`` are JSON strings
(``output->>'$'``), with non-finite floats stored as JSON ``null``.

What a ``kind`` of log holds is registered in :mod:`shipyard.logs.kinds`; the two
built-in kinds, :class:`Predictions` and :class:`Labels`, are defined here.

Given a :class:`~shipyard.logs.pii.PiiPolicy`, the writer masks the PII-tagged fields of
``inputs`` (keyed hash or dropped) before a file is written, and hands the raw values
to the policy's separate store when it keeps them: no raw tagged value reaches a file
under the log root. Labels are normally written through
:class:`~shipyard.logs.label_book.LabelBook`, which checks conflicts first.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time as clock
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.errors import ConfigError
from shipyard.jsonable import to_json
from shipyard.logs.kinds import LogKind, log_kind, log_kinds, register
from shipyard.logs.kinds import log_schema as log_schema
from shipyard.moments import as_utc

logger = logging.getLogger(__name__)

_JSON = {b"encoding": b"json"}
_SLICE = 1024  # records converted per stretch of the writer thread
_PAUSE = 0.0005  # seconds the writer yields between slices

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("version", pa.string()),
        pa.field("role", pa.string()),
        pa.field("inputs", pa.struct([])),  # one field per model input; see prediction_schema
        pa.field("output", pa.string(), metadata=_JSON),
        pa.field("probabilities", pa.list_(pa.float64())),
        pa.field("latency_ms", pa.float64()),
        pa.field("status", pa.string()),
    ]
)
"""Columns of the prediction log, in file order; each file's ``inputs`` has its fields."""


def prediction_schema(inputs: pa.DataType) -> pa.Schema:
    """The prediction-log schema with ``inputs`` of the given struct type."""
    index = PREDICTION_SCHEMA.get_field_index("inputs")
    return PREDICTION_SCHEMA.set(index, pa.field("inputs", inputs))


LABEL_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("label", pa.string(), metadata=_JSON),
        pa.field("sender", pa.string()),
        pa.field("token_id", pa.string()),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""Columns of the label log, in file order: the label, then who sent it and when.

``sender`` is the principal's name ("anonymous" when the server does not
authenticate), ``token_id`` the public id of the token it used, ``received_at`` the
server's clock when the label was accepted (``time`` is when the label applies: the same
for feedback, maybe earlier for an ingested file). Files written before these columns
existed read them as null.
"""


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction as served: ``role`` is "live" or "shadow", ``status`` "ok" or "error"."""

    request_id: str
    time: datetime
    model: str
    version: str
    role: str
    inputs: dict[str, Any]
    output: Any
    probabilities: list[float] | None
    latency_ms: float
    status: str


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """One request's predictions: one queue item on the request path, rows in the file.

    The server logs this instead of one :class:`PredictionRecord` per row, so the request
    path does no per-row work; the writer thread expands it. The rows of a multi-row
    request get request ids ``<id>:<row>`` and share the request's latency equally.
    ``labels`` and ``probabilities`` are ``None`` when the prediction failed.
    """

    request_id: str
    time: datetime
    model: str
    version: str
    role: str
    columns: tuple[str, ...]
    matrix: np.ndarray
    labels: np.ndarray | None
    probabilities: np.ndarray | None
    latency_ms: float
    status: str

    @property
    def rows(self) -> int:
        """Rows this batch becomes in the log."""
        return len(self.matrix)


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """The ground truth for an earlier prediction, joined to it by ``request_id``.

    ``request_id`` is as the prediction log keeps it (in its sender's namespace, see
    :func:`shipyard.serving.request.namespaced`). ``sender``, ``token_id`` and
    ``received_at`` say who sent the label and when the server took it (``time``
    when not given).
    """

    request_id: str
    time: datetime
    model: str
    label: Any
    sender: str = "anonymous"
    token_id: str | None = None
    received_at: datetime | None = None


@register
class Predictions(LogKind):
    """The prediction log: one row per answered row, live or shadow."""

    name = "predictions"
    schema = PREDICTION_SCHEMA
    record_types = (PredictionRecord, PredictionBatch)

    def to_table(self, records: Sequence[Any]) -> pa.Table:
        """Batches column by column; single records row by row."""
        if type(records[0]) is PredictionBatch:
            return _batches_to_table(list(records))
        return _records_to_table(records)

    def rows(self, record: Any) -> int:
        """A batch is as many rows as the request had."""
        return record.rows if type(record) is PredictionBatch else 1

    def layout(self, record: Any) -> Any:
        """Batches of one column layout and dtype share a file (one ``inputs`` struct)."""
        if type(record) is PredictionBatch:
            return (record.columns, record.matrix.dtype.str)
        return None


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


def model_dir(root: Path, kind: str, model: str) -> Path:
    """The directory holding every file of ``model``'s ``kind`` log under ``root``."""
    return Path(root) / kind / f"model={quote(model, safe='')}"


_FILES = itertools.count()  # per process; with the pid, stamp and random part: unique


def write_log_file(directory: Path, table: pa.Table, *, private: bool = False) -> Path:
    """Write ``table`` as a new Parquet file in ``directory``; readers never see half of it.

    ``private`` makes the folders 0700 and the file 0600 (the raw PII store).
    """
    if private:
        make_private_dirs(directory)
    else:
        directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"part-{stamp}-{os.getpid()}-{next(_FILES):06d}-{secrets.token_hex(4)}"
    temporary = directory / f".{name}.parquet.tmp"
    final = directory / f"{name}.parquet"
    try:
        pq.write_table(table, temporary)
        if private:
            temporary.chmod(0o600)
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


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


class PredictionLogWriter:
    """Append records to a Parquet log from a background thread; ``log()`` never blocks."""

    def __init__(
        self,
        root: Path,
        *,
        kind: str = "predictions",
        max_queue: int = 100_000,
        roll_rows: int = 10_000,
        roll_seconds: float = 5.0,
        pii: LogMask | None = None,
    ) -> None:
        """``pii`` masks the tagged input columns before any file is written."""
        self._kind = log_kind(kind)
        self._record_types = self._kind.record_types
        self._rows = self._kind.rows
        if max_queue < 1 or roll_rows < 1 or roll_seconds <= 0:
            raise ConfigError(
                f"Invalid prediction-log limits: max_queue={max_queue}, "
                f"roll_rows={roll_rows}, roll_seconds={roll_seconds}.",
                hint="max_queue and roll_rows must be at least 1, roll_seconds above 0.",
            )
        self.root = Path(root)
        self.kind = kind
        self.max_queue = max_queue
        self.roll_rows = roll_rows
        self.roll_seconds = roll_seconds
        self.pii = pii if pii is not None and pii.tagged else None
        self._queue: deque[Any] = deque()
        self._queued = 0  # rows in the queue (a batch is many rows)
        self._lock = threading.Lock()  # guards the bound check + append, and the counters
        self._write_lock = threading.Lock()  # one drainer at a time: thread or flush()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._written = 0
        self._dropped = 0
        self._last_error: Exception | None = None

    @property
    def written(self) -> int:
        """Records written to Parquet so far."""
        return self._written

    @property
    def dropped(self) -> int:
        """Records lost: queue full, writer closed, unconvertible, or a failed write."""
        return self._dropped

    @property
    def queue_depth(self) -> int:
        """Records waiting to be written."""
        return self._queued

    @property
    def last_error(self) -> Exception | None:
        """The most recent error that lost records, or None."""
        return self._last_error

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._closed:
            raise RuntimeError("This PredictionLogWriter is closed; create a new one.")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"shipyard-{self.kind}-log", daemon=True
            )
            self._thread.start()

    def log(self, record: Any) -> bool:
        """Queue one record or batch; False (and counted as dropped) when full, closed or
        mistyped."""
        if type(record) not in self._record_types:
            expected = " or ".join(t.__name__ for t in self._record_types)
            self._lose(_rows_anywhere(record), TypeError(f"expected {expected}, got {record!r}"))
            return False
        rows = self._rows(record)
        with self._lock:
            if self._closed or self._queued + rows > self.max_queue:
                self._dropped += rows
                return False
            self._queue.append(record)
            self._queued += rows
        if self._queued >= self.roll_rows and not self._wake.is_set():
            self._wake.set()
        return True

    def flush(self) -> None:
        """Write everything queued now; returns once it is on disk (or counted as dropped)."""
        self._drain(everything=True)

    def close(self) -> None:
        """Flush, then stop the thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._drain(everything=True)

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

    def _run(self) -> None:
        next_roll = clock.monotonic() + self.roll_seconds
        while not self._closed:
            self._wake.wait(max(0.0, next_roll - clock.monotonic()))
            self._wake.clear()
            try:
                if clock.monotonic() >= next_roll:
                    next_roll = clock.monotonic() + self.roll_seconds
                    self._drain(everything=True)
                else:
                    self._drain(everything=False)
            except Exception as exc:  # the thread must outlive any bug in one batch
                logger.exception("prediction log writer failed")
                self._last_error = exc

    def _drain(self, *, everything: bool) -> None:
        # Only records queued before the call: under steady load a flush must still end.
        with self._write_lock:
            pending = self._queued
            while pending > 0 and (everything or pending >= self.roll_rows):
                batch, rows = [], 0
                while rows < self.roll_rows and self._queue:
                    record = self._queue.popleft()
                    batch.append(record)
                    rows += self._rows(record)
                with self._lock:
                    self._queued -= rows
                pending -= rows
                self._write(batch)

    def _write(self, batch: list[Any]) -> None:
        # One file per model, day and input layout: a file's ``inputs`` has one struct type.
        partitions: dict[tuple[str, date, Any], list[Any]] = {}
        for record in batch:
            try:
                key = (str(record.model), as_utc(record.time).date(), self._kind.layout(record))
            except Exception as exc:
                self._lose(self._rows(record), exc)
                continue
            partitions.setdefault(key, []).append(record)
        for (model, day, _), records in partitions.items():
            table = self._to_table_in_slices(records)
            if table.num_rows == 0:
                continue
            try:
                if self.pii is not None:
                    table = self.pii.apply(table, model, day)
                self._write_file(model, day, table)
            except Exception as exc:
                logger.warning("lost %d %s records: %s", table.num_rows, self.kind, exc)
                self._lose(table.num_rows, exc)
            else:
                self._written += table.num_rows

    def _to_table_in_slices(self, records: list[Any]) -> pa.Table:
        """Convert a few hundred records at a time, letting the server run in between.

        Converting holds the GIL; in one long stretch it stalls the event loop again and
        again (each time the loop waits for I/O, it must wait out the switch interval to
        get the GIL back). Slices with a pause between keep each stall short.
        """
        if len(records) <= _SLICE:
            return self._to_table(records)
        tables = []
        for start in range(0, len(records), _SLICE):
            tables.append(self._to_table(records[start : start + _SLICE]))
            clock.sleep(_PAUSE)
        return self._concat(tables)

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
                self._lose(self._rows(record), exc)
        return self._concat(good) if good else self._kind.schema.empty_table()

    def _concat(self, tables: list[pa.Table]) -> pa.Table:
        """One table; when the pieces' inputs cannot be unified, the first (the rest lost)."""
        try:
            return pa.concat_tables(tables, promote_options="permissive")
        except Exception as exc:
            self._lose(sum(t.num_rows for t in tables[1:]), exc)
            return tables[0]

    def _write_file(self, model: str, day: date, table: pa.Table) -> None:
        directory = model_dir(self.root, self.kind, model) / f"date={day.isoformat()}"
        write_log_file(directory, table)

    def _lose(self, count: int, error: Exception) -> None:
        with self._lock:
            self._dropped += count
            self._last_error = error


def _rows_anywhere(record: Any) -> int:
    """Rows ``record`` is in the log that takes it (1 when none does)."""
    for name in log_kinds():
        kind = log_kind(name)
        if type(record) in kind.record_types:
            return kind.rows(record)
    return 1


def _records_to_table(records: Sequence[PredictionRecord]) -> pa.Table:
    """Single predictions row by row (each ``inputs`` a dict)."""
    inputs = pa.array([_plain_inputs(r.inputs) for r in records])
    rows = {
        "request_id": [str(r.request_id) for r in records],
        "time": [r.time for r in records],
        "model": [str(r.model) for r in records],
        "version": [str(r.version) for r in records],
        "role": [str(r.role) for r in records],
        "inputs": inputs,
        "output": [to_json(r.output) for r in records],
        "probabilities": [_probabilities(r.probabilities) for r in records],
        "latency_ms": [float(r.latency_ms) for r in records],
        "status": [str(r.status) for r in records],
    }
    return pa.Table.from_pydict(rows, schema=prediction_schema(inputs.type))


def _batches_to_table(batches: list[PredictionBatch]) -> pa.Table:
    """Requests sharing one input layout, column by column: NumPy in, Arrow out."""
    sizes = [batch.rows for batch in batches]
    total = sum(sizes)
    matrix = np.concatenate([batch.matrix for batch in batches])
    columns = batches[0].columns
    if total:
        fields = [_input_column(matrix[:, j]) for j in range(len(columns))]
        inputs = pa.StructArray.from_arrays(fields, names=list(columns))
    else:
        inputs = pa.array([], pa.struct([]))
    request_ids: list[str] = []
    outputs: list[str] = []
    probabilities: list[Any] = []
    for batch, size in zip(batches, sizes, strict=True):
        if size == 1:
            request_ids.append(str(batch.request_id))
        else:
            request_ids.extend(f"{batch.request_id}:{i}" for i in range(size))
        if batch.labels is None:
            outputs.extend(["null"] * size)
        else:
            outputs.extend(to_json(label) for label in batch.labels.tolist())
        if batch.probabilities is None:
            probabilities.extend([None] * size)
        else:
            probabilities.extend(np.asarray(batch.probabilities, dtype=np.float64).tolist())

    single = total == len(batches)  # the common case: one row per request

    def repeated(values: list[Any], type_: pa.DataType) -> pa.Array:
        if single:
            return pa.array(values, type_)
        return pa.array([v for v, n in zip(values, sizes, strict=True) for _ in range(n)], type_)

    columns_out = {
        "request_id": pa.array(request_ids, pa.string()),
        "time": repeated([b.time for b in batches], PREDICTION_SCHEMA.field("time").type),
        "model": repeated([str(b.model) for b in batches], pa.string()),
        "version": repeated([str(b.version) for b in batches], pa.string()),
        "role": repeated([str(b.role) for b in batches], pa.string()),
        "inputs": inputs,
        "output": pa.array(outputs, pa.string()),
        "probabilities": pa.array(probabilities, pa.list_(pa.float64())),
        "latency_ms": repeated(
            [float(b.latency_ms) / max(b.rows, 1) for b in batches], pa.float64()
        ),
        "status": repeated([str(b.status) for b in batches], pa.string()),
    }
    return pa.Table.from_pydict(columns_out, schema=prediction_schema(inputs.type))


def _input_column(values: np.ndarray) -> pa.Array:
    """One input column as a typed Arrow array (text columns: strings or their JSON)."""
    if values.dtype.kind in "fiub":
        return pa.array(values)
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column: keep as text
        return pa.array([None if v is None else to_json(v) for v in values.tolist()], pa.string())


def _plain_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v.tolist() if hasattr(v, "tolist") else v for k, v in inputs.items()}


def _probabilities(values: Any) -> list[float] | None:
    return None if values is None else [float(value) for value in values]
