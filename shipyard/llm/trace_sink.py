"""Where the gateway's finished traces go: the trace log and the LLM metrics, off the event loop.

The request path only appends the finished :class:`~shipyard.llm.traces.Trace` to a
queue (a microsecond); one background thread turns it into records (masking included),
journals them with the trace log's :class:`~shipyard.logs.writer.PredictionLogWriter`
and counts them in :class:`~shipyard.llm.metrics.LlmMetrics`. That work then runs
while the event loop waits on the network, instead of between a response and the next
request on the connection. :meth:`TraceSink.close` drains the queue before returning,
so a stopping server loses no trace.

At most ``capacity`` traces wait; past that, new ones are dropped and counted
(:attr:`TraceSink.dropped`): a trace log that cannot keep up never grows memory
without bound, and never slows the answers.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.llm.traces import Trace
    from shipyard.logs.traces import TraceRecord

__all__ = ["TraceSink"]

logger = logging.getLogger(__name__)

Consumer = Callable[["Sequence[TraceRecord]"], None]


class TraceSink:
    """Takes finished traces on the request path; records them on its own thread."""

    def __init__(self, consumers: Sequence[Consumer], *, capacity: int = 100_000) -> None:
        self.consumers = tuple(consumers)
        self.capacity = capacity
        self.recorded = 0
        self.dropped = 0
        self.failed = 0
        self._queue: deque[Trace] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="shipyard-traces", daemon=True)
        self._thread.start()

    def __call__(self, trace: Trace) -> None:
        """Queue one finished trace (every span ended); never blocks."""
        if self._closed or len(self._queue) >= self.capacity:
            self.dropped += 1
            return
        self._queue.append(trace)
        self._wake.set()

    @property
    def queued(self) -> int:
        """Traces waiting to be recorded."""
        return len(self._queue)

    def close(self, timeout: float = 30.0) -> None:
        """Record what is queued, then stop the thread."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        queue = self._queue
        while True:
            self._wake.wait()
            self._wake.clear()
            while queue:
                self._record(queue.popleft())
            if self._closed and not queue:
                return

    def _record(self, trace: Trace) -> None:
        try:
            records = trace.records()
            for consume in self.consumers:
                consume(records)
            self.recorded += 1
        except Exception:  # a trace that cannot be recorded must not stop the others
            self.failed += 1
            logger.exception("recording trace %s failed", trace.request_id)
