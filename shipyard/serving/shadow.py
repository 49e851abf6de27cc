"""Shadow predictions off the request path.

A live request whose route says "shadow" hands the shadow model and the decoded inputs
to :meth:`ShadowRunner.submit`, which only appends to a bounded queue and returns. One
background thread predicts and logs the result with role ``shadow``. A shadow that
raises is logged with status ``error``; one that is slow only lets the queue fill, and
what does not fit is dropped and counted. Neither reaches the live response.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.models.served import Prediction, ServedModel
from shipyard.serving.request import ServedFeatures

logger = logging.getLogger(__name__)

__all__ = ["ShadowRunner"]

Observer = Callable[[ServedModel, str, float], None]  # model, status, seconds


@dataclass(frozen=True, slots=True)
class _Job:
    model: ServedModel
    matrix: np.ndarray
    request_id: str
    at: datetime
    served: ServedFeatures | None  # entity keys and event times of looked-up features


class ShadowRunner:
    """Predicts with shadow models on one background thread; :meth:`submit` never blocks."""

    def __init__(
        self,
        log: PredictionLogWriter | None = None,
        *,
        capacity: int = 1000,
        observe: Observer | None = None,
    ) -> None:
        self.log = log
        self.capacity = capacity
        self.observe = observe
        self.completed = 0
        self.failed = 0
        self.dropped = 0
        self._queue: deque[_Job] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="shipyard-shadow", daemon=True)

    @property
    def queue_depth(self) -> int:
        """Shadow predictions waiting."""
        return len(self._queue)

    def submit(
        self,
        model: ServedModel,
        matrix: np.ndarray,
        request_id: str,
        served: ServedFeatures | None = None,
    ) -> bool:
        """Queue one shadow prediction; False (and counted) when the queue is full or closed.

        ``served`` (a model served from entity keys) is logged after the inputs, as the
        live log does, so the skew check can recompute the shadow's features too.
        """
        if self._closed or len(self._queue) >= self.capacity:
            self.dropped += 1
            return False
        self._queue.append(_Job(model, matrix, request_id, datetime.now(UTC), served))
        if not self._thread.is_alive():
            self._thread.start()  # on first use: a server without a shadow never starts it
        with self._wake:
            self._wake.notify()
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued (up to ``timeout`` seconds), then stop the thread."""
        self._closed = True
        with self._wake:
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.dropped += len(self._queue)
        self._queue.clear()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
            if not self._queue:
                return
            self._predict(self._queue.popleft())

    def _predict(self, job: _Job) -> None:
        started = time.perf_counter()
        prediction: Prediction | None = None
        try:
            prediction = job.model.predict(job.matrix)
        except Exception:  # the shadow's failure is data, not an outage
            logger.debug("shadow %s/%s failed", job.model.name, job.model.version, exc_info=True)
        seconds = time.perf_counter() - started
        status = "ok" if prediction is not None else "error"
        if prediction is None:
            self.failed += 1
        else:
            self.completed += 1
        if self.observe is not None:
            self.observe(job.model, status, seconds)
        if self.log is not None:
            columns, matrix = job.model.spec.columns, job.matrix
            if job.served is not None and len(job.served.matrix) == len(matrix):
                columns, matrix = job.served.beside(columns, matrix)
            self.log.log(
                PredictionBatch(
                    request_id=job.request_id,
                    time=job.at,
                    model=job.model.name,
                    version=job.model.version,
                    role="shadow",
                    columns=columns,
                    matrix=matrix,
                    labels=None if prediction is None else prediction.labels,
                    probabilities=None if prediction is None else prediction.probabilities,
                    latency_ms=seconds * 1000,
                    status=status,
                )
            )
