"""Micro-batching: concurrent requests for one model version share one ``predict`` call.

A single consumer task takes queued requests in arrival order. Matrices are concatenated,
the model runs, and the result is split back into one slice per request. An oversized
request runs alone.

Batching is adaptive: a request waits for company only while company is known to be
coming. The batcher expects as many requests as the previous batch answered (clients
that just got their answer send their next request); a batch flushes as soon as that
many are queued, when it holds ``max_batch_size`` rows, or when its oldest request has
waited ``max_wait_ms``, whichever comes first. A lone client (the previous batch had one
request) therefore never waits, and at high concurrency batches still fill: requests
that arrive while the model runs are queued and taken together. A lone request (the
consumer idle, nothing queued, no company expected) gives requests already on their way
one event-loop turn to join, then runs in its caller; if any joined, the consumer
batches them all. Each flush is recorded as a :class:`BatchDecision` (``last_decisions``).

By default the model runs on the event loop's own thread, like an unbatched request.
Handing it to a thread costs more than it saves for CPU-bound models that hold the GIL:
every hand-off back to the loop may wait out Python's thread switch interval (measured:
no throughput gain from batching with an executor, against 2-3× without). Pass an
``executor`` for models that release the GIL for long stretches.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar, overload

import numpy as np

from shipyard.errors import ConfigError

__all__ = ["BatchDecision", "BatchSettings", "MicroBatcher", "split_rows"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class BatchSettings:
    """How many rows one ``predict`` call may take and how long a request waits for company."""

    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, not {self.max_batch_size}.")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms must not be negative, not {self.max_wait_ms}.")


def split_rows(result: Any, sizes: list[int]) -> list[Any]:
    """Split a batch result into ``sizes[i]``-row results: an ndarray along axis 0, a
    dataclass field-wise (array fields with one row per input row; others are shared)."""
    total = sum(sizes)
    bounds = np.cumsum(sizes)[:-1]
    if isinstance(result, np.ndarray):
        if result.ndim == 0 or result.shape[0] != total:
            raise ValueError(f"predict returned {result.shape} for a batch of {total} rows.")
        return list(np.split(result, bounds))
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        pieces = {
            field.name: np.split(value, bounds)
            for field in dataclasses.fields(result)
            if field.init
            and isinstance(value := getattr(result, field.name), np.ndarray)
            and value.ndim > 0
            and value.shape[0] == total
        }
        return [
            dataclasses.replace(result, **{name: parts[i] for name, parts in pieces.items()})
            for i in range(len(sizes))
        ]
    raise TypeError(f"Cannot split a {type(result).__name__} by rows; pass split= to MicroBatcher.")


def _rows_of(result: Any) -> int | None:
    """How many rows an ndarray result (or a dataclass's first array field) has."""
    if isinstance(result, np.ndarray):
        return result.shape[0] if result.ndim else None
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        for field in dataclasses.fields(result):
            value = getattr(result, field.name)
            if isinstance(value, np.ndarray) and value.ndim:
                return int(value.shape[0])
    return None


def _concatenate(matrices: list[np.ndarray]) -> np.ndarray:
    """Stack request matrices; mixed dtypes promote when numeric, else become object."""
    if len(matrices) == 1:
        return matrices[0]
    dtypes = {matrix.dtype for matrix in matrices}
    if len(dtypes) == 1:
        return np.concatenate(matrices, axis=0)
    # Promoting floats and strings to a string dtype would change values; object keeps them.
    numeric = all(np.issubdtype(dtype, np.number) or dtype == np.bool_ for dtype in dtypes)
    dtype = np.result_type(*dtypes) if numeric else np.dtype(object)
    return np.concatenate(matrices, axis=0, dtype=dtype)


FlushReason = Literal["alone", "expected", "full", "deadline", "closing"]


@dataclass(frozen=True)
class BatchDecision:
    """Why one batch was flushed when it was.

    ``reason``: ``alone`` (one request, and no company expected: it did not wait),
    ``expected`` (every request the batcher expected had arrived), ``full``
    (``max_batch_size`` rows queued), ``deadline`` (the oldest request waited
    ``max_wait_ms``) or ``closing`` (the batcher is draining). ``held`` says whether any of
    its requests was kept waiting for company; ``expected`` is how many requests the
    batcher was expecting when it decided.
    """

    requests: int
    rows: int
    expected: int
    reason: FlushReason
    held: bool


class _Request(NamedTuple):
    matrix: np.ndarray
    future: asyncio.Future[Any]
    arrived: float  # the event loop's time() at submit


class MicroBatcher(Generic[T, R]):
    """Coalesces concurrent ``submit`` calls for one model version into batched ``predict``."""

    @overload
    def __init__(
        self: MicroBatcher[T, T],
        predict: Callable[[np.ndarray], T],
        settings: BatchSettings,
        *,
        split: None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        predict: Callable[[np.ndarray], T],
        settings: BatchSettings,
        *,
        split: Callable[[T, list[int]], list[R]],
        executor: concurrent.futures.Executor | None = None,
    ) -> None: ...
    def __init__(
        self,
        predict: Callable[[np.ndarray], T],
        settings: BatchSettings,
        *,
        split: Callable[[T, list[int]], list[R]] | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        self.predict = predict
        self.settings = settings
        self.split: Callable[[T, list[int]], list[R]] = split or split_rows
        # split_rows of a one-request batch gives the result back unchanged: skip it.
        self._split_one = split is None
        self.executor = executor
        self._batches = 0
        self._rows = 0
        self._sizes: collections.deque[int] = collections.deque(maxlen=256)
        self._decisions: collections.deque[BatchDecision] = collections.deque(maxlen=256)
        self._pending: collections.deque[_Request] = collections.deque()
        self._queued_rows = 0
        self._expected = 1  # requests the next batch waits for: the last batch's count
        self._waiter: asyncio.Future[None] | None = None  # set while the consumer sleeps
        self._timer: asyncio.TimerHandle | None = None  # the oldest request's deadline
        self._due = False  # that deadline has passed
        self._held = False  # a request of the coming batch was kept waiting for company
        self._consumer: asyncio.Task[None] | None = None
        self._closing = False

    async def submit(self, matrix: np.ndarray) -> R:
        """Predict one request's rows, sharing the model call with concurrent requests."""
        if matrix.ndim != 2:
            raise ValueError(f"submit takes a 2-D matrix of rows, not shape {matrix.shape}.")
        if self._closing:
            raise RuntimeError("The batcher is closed.")
        loop = asyncio.get_running_loop()
        if not self.settings.enabled:
            self._count(len(matrix))
            return self._parts(await self._call(matrix), [len(matrix)])[0]
        if self._consumer is None:
            self._consumer = loop.create_task(self._consume(), name="shipyard-batcher")
        future: asyncio.Future[R] = loop.create_future()
        request = _Request(matrix, future, loop.time())
        lone = (
            self.executor is None
            and self._waiter is not None  # the consumer is idle...
            and not self._pending  # ...nothing is queued...
            and self._expected <= 1  # ...and no company is expected
        )
        self._pending.append(request)
        self._queued_rows += len(matrix)
        if lone:
            return await self._alone(request)
        if self._waiter is not None:  # the consumer sleeps: wake it only if a batch is ready
            if self._flush_reason() is not None:
                self._wake()
            else:
                self._held = True
                self._arm_deadline(loop)
        # Cancelling the caller cancels this future; the consumer then skips the request.
        return await future

    async def _alone(self, request: _Request) -> R:
        """Run a lone request here, without the consumer's two hand-offs.

        Requests already on their way through the event loop get one turn to join first:
        if any did, they woke the consumer, and this request waits for that batch.
        """
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            request.future.cancel()  # the consumer skips it
            raise
        if self._closing or len(self._pending) != 1 or self._pending[0] is not request:
            return await request.future  # company came: the consumer batches it
        self._pending.popleft()
        rows = len(request.matrix)
        self._queued_rows -= rows
        self._decisions.append(BatchDecision(1, rows, self._expected, "alone", False))
        self._expected = 1
        self._count(rows)
        result: T = self.predict(request.matrix)
        return self._parts(result, [rows])[0]

    async def close(self) -> None:
        """Finish every queued request, then stop the consumer."""
        self._closing = True
        if self._consumer is not None:
            self._wake()
            await self._consumer

    @property
    def queued_rows(self) -> int:
        """Rows waiting for the next batch."""
        return self._queued_rows

    @property
    def batches(self) -> int:
        """How many times ``predict`` has been called."""
        return self._batches

    @property
    def rows(self) -> int:
        """How many rows ``predict`` has been given in total."""
        return self._rows

    @property
    def last_batch_sizes(self) -> collections.deque[int]:
        """Rows per ``predict`` call, most recent last (the last 256 calls)."""
        return self._sizes

    @property
    def last_decisions(self) -> collections.deque[BatchDecision]:
        """Why each batch flushed when it did, most recent last (the last 256 batches)."""
        return self._decisions

    @property
    def expected(self) -> int:
        """How many requests the next batch waits for (the last batch's count)."""
        return self._expected

    async def _call(self, matrix: np.ndarray) -> T:
        if self.executor is None:
            return self.predict(matrix)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.predict, matrix)

    def _parts(self, result: T, sizes: list[int]) -> list[R]:
        """Each request's share of ``result``; a lone request's is the result itself."""
        if self._split_one and len(sizes) == 1 and _rows_of(result) == sizes[0]:
            return [result]  # type: ignore[list-item]  # R is T when split is split_rows
        return self.split(result, sizes)

    def _count(self, rows: int) -> None:
        self._batches += 1
        self._rows += rows
        self._sizes.append(rows)

    def _flush_reason(self) -> FlushReason | None:
        """Why the queued requests should run now, or ``None`` to keep waiting for company."""
        if self._closing:
            return "closing"
        if self._queued_rows >= self.settings.max_batch_size:
            return "full"
        queued = len(self._pending)
        if queued >= self._expected:
            return "alone" if queued == 1 and not self._held else "expected"
        return "deadline" if self._due else None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _arm_deadline(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the consumer when the oldest queued request has waited ``max_wait_ms``."""
        if self._timer is None and self._pending:
            when = self._pending[0].arrived + self.settings.max_wait_ms / 1000
            self._timer = loop.call_at(when, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        self._due = True
        self._wake()

    async def _sleep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until submit, the deadline or close wakes the consumer."""
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self._pending and self._pending[0].future.done():
                    self._queued_rows -= len(self._pending.popleft().matrix)
                if not self._pending:
                    if self._closing:
                        return
                    await self._sleep(loop)
                    continue
                reason = self._flush_reason()
                if reason is None:  # company is expected: wait for it, or the deadline
                    self._held = True
                    self._arm_deadline(loop)
                    await self._sleep(loop)
                    continue
                expected, held = self._expected, self._held
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._due = self._held = False
                if batch := self._take_batch():
                    self._expected = len(batch)
                    self._decisions.append(
                        BatchDecision(
                            len(batch), sum(len(r.matrix) for r in batch), expected, reason, held
                        )
                    )
                    await self._run(batch)
        finally:  # pending requests remain only if the consumer itself was cancelled
            if self._timer is not None:
                self._timer.cancel()
            while self._pending:
                self._pending.popleft().future.cancel()

    def _take_batch(self) -> list[_Request]:
        """Pop the oldest requests that fit in one batch (at least one, however large)."""
        batch: list[_Request] = []
        rows = 0
        while self._pending:
            request = self._pending[0]
            size, live = len(request.matrix), not request.future.done()
            if (live and batch) and (
                rows + size > self.settings.max_batch_size
                or request.matrix.shape[1:] != batch[0].matrix.shape[1:]
            ):
                break
            self._pending.popleft()
            self._queued_rows -= size
            if live:  # a cancelled request (client went away) is dropped
                batch.append(request)
                rows += size
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        sizes = [len(request.matrix) for request in batch]
        self._count(sum(sizes))
        try:
            matrix = _concatenate([request.matrix for request in batch])
            result = await self._call(matrix)
            parts = self._parts(result, sizes)
            if len(parts) != len(batch):
                raise ValueError(f"split returned {len(parts)} parts for {len(batch)} requests.")
        except asyncio.CancelledError:
            for request in batch:
                request.future.cancel()
            raise
        except Exception as error:
            if len(batch) > 1:  # one request's bad rows must not fail its neighbours
                for request in batch:
                    await self._run([request])
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(error)
            return
        for request, part in zip(batch, parts, strict=True):
            if not request.future.done():
                request.future.set_result(part)
