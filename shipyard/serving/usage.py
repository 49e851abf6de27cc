"""What serving costs: this worker's CPU (and GPU) time, priced and shared among the models.

    meter = CostMeter(Prices(cpu_hour=0.04))
    meter.answered(("churn", "3", "champion"))      # the request path: one dict update
    for usage in meter.take(champion=("churn", "3")):   # off it, every second or so
        ...  # Usage(model, version, role, requests, cpu_seconds, gpu_seconds, cost)

:meth:`CostMeter.take` reads the process's CPU time (``time.process_time``: every thread
of this worker, the log writer and the shadow included) and, when a GPU is priced,
its wall time × the GPUs each server holds. It shares the interval's time among the
(model, version, role) that answered predictions in it, by their count (shadow
predictions under role ``shadow``); an interval with none goes to the champion, because
an idle server still costs what it costs. Times only grow, so every share is ≥ 0 and
counters fed from it stay monotone.

:class:`UsageRecorder` is each worker's thread that takes the time every second and
stores what it took every ``cost.flush_seconds`` (``shipyard_usage``), for the
dashboard's history; a store that fails loses those rows, never a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shipyard.errors import ShipyardError

logger = logging.getLogger(__name__)

__all__ = ["CostMeter", "Prices", "Usage", "UsageRecorder"]

Key = tuple[str, str, str]  # model, version, role


@dataclass(frozen=True)
class Prices:
    """The ``cost`` section as serving needs it (:class:`shipyard.config.cost.CostSettings`)."""

    cpu_hour: float = 0.04
    gpu_hour: float = 0.0
    gpus: int = 0
    currency: str = "USD"

    @property
    def gpu_priced(self) -> bool:
        """True when GPU time counts: a price per GPU-hour and GPUs on the server."""
        return self.gpu_hour > 0 and self.gpus > 0

    def amount(self, cpu_seconds: float, gpu_seconds: float) -> float:
        """What ``cpu_seconds`` of CPU and ``gpu_seconds`` of GPU time cost."""
        return cpu_seconds * self.cpu_hour / 3600 + gpu_seconds * self.gpu_hour / 3600


@dataclass
class Usage:
    """One (model, version, role)'s share of an interval: predictions, time and cost."""

    model: str
    version: str
    role: str
    requests: int = 0
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    cost: float = 0.0

    @property
    def key(self) -> Key:
        """(model, version, role)."""
        return (self.model, self.version, self.role)

    def add(self, other: Usage) -> None:
        """Add ``other``'s figures (same key) to these."""
        self.requests += other.requests
        self.cpu_seconds += other.cpu_seconds
        self.gpu_seconds += other.gpu_seconds
        self.cost += other.cost


@dataclass
class CostMeter:
    """This process's compute time since the last :meth:`take`, and who it served."""

    prices: Prices = field(default_factory=Prices)
    _cpu: float = field(default_factory=time.process_time)
    _wall: float = field(default_factory=time.monotonic)
    _tally: dict[tuple[str, ...], int] = field(default_factory=dict)  # answered, since start
    _taken: dict[tuple[str, ...], int] = field(default_factory=dict)  # the tally last taken
    _pending: dict[Key, Usage] = field(default_factory=dict)  # taken, not yet drained
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, key: tuple[str, ...]) -> None:
        """Count one answered prediction for ``key``: (model, version, role, anything more).

        The request path passes the key it already built for its request counter, so
        this is one dict update. One writer per key: the event loop, or the shadow thread.
        """
        tally = self._tally
        tally[key] = tally.get(key, 0) + 1

    def take(self, champion: tuple[str, str]) -> list[Usage]:
        """The time since the last call, priced and shared by predictions answered since.

        ``champion`` (model, version) takes an interval without predictions.
        """
        with self._lock:
            cpu, wall = time.process_time(), time.monotonic()
            cpu_seconds = max(0.0, cpu - self._cpu)
            wall_seconds = max(0.0, wall - self._wall)
            self._cpu, self._wall = cpu, wall
            tally = self._tally.copy()  # one C call: safe against the writers
            counts: dict[Key, int] = {}
            for key, n in tally.items():
                added = n - self._taken.get(key, 0)
                if added > 0:
                    short = (key[0], key[1], key[2])
                    counts[short] = counts.get(short, 0) + added
            self._taken = tally
        gpu_seconds = wall_seconds * self.prices.gpus if self.prices.gpu_priced else 0.0
        total = sum(counts.values())
        if total == 0:
            shares: dict[Key, tuple[int, float]] = {(*champion, "champion"): (0, 1.0)}
        else:
            shares = {key: (n, n / total) for key, n in sorted(counts.items())}
        taken = [
            Usage(
                *key,
                requests=n,
                cpu_seconds=cpu_seconds * share,
                gpu_seconds=gpu_seconds * share,
                cost=self.prices.amount(cpu_seconds * share, gpu_seconds * share),
            )
            for key, (n, share) in shares.items()
        ]
        with self._lock:
            for usage in taken:
                pending = self._pending.setdefault(usage.key, Usage(*usage.key))
                pending.add(usage)
        return taken

    def drain(self) -> list[Usage]:
        """Everything taken since the last drain, one :class:`Usage` per key (then forgotten)."""
        with self._lock:
            drained, self._pending = list(self._pending.values()), {}
        return drained


class UsageRecorder:
    """A worker's background thread: takes compute time every second, stores it every so often.

    ``account`` (:meth:`ServerMetrics.account`) moves the time since its last call into
    the cost counters; every ``flush_seconds`` what was taken since the last flush is
    handed to ``write`` as (interval end, usages). A ``write`` that raises loses that
    interval's rows only: they are counted in :attr:`dropped`, the first failure is
    logged (its type and Shipyard's message, which hides passwords), and no request ever
    waits on it. :meth:`close` takes and writes the last interval (graceful shutdown).
    """

    def __init__(
        self,
        account: Callable[[], object],
        meter: CostMeter,
        write: Callable[[datetime, list[Usage]], object],
        *,
        flush_seconds: float = 15.0,
        account_seconds: float = 1.0,
    ) -> None:
        self.account = account
        self.meter = meter
        self.write = write
        self.flush_seconds = flush_seconds
        self.account_seconds = min(account_seconds, flush_seconds)
        self.written = 0  # rows stored
        self.dropped = 0  # rows lost to a failing store
        self._told = False  # the first failure is logged, the rest only counted
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="shipyard-usage", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread, then take and store the last interval."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.flush()

    def flush(self) -> None:
        """Take the time since the last take, and store everything not yet stored."""
        with self._flush_lock:
            self.account()
            usages = self.meter.drain()
            if not usages:
                return
            try:
                self.write(datetime.now(UTC), usages)
            except Exception as exc:  # the store's outage must not reach serving
                self.dropped += len(usages)
                if not self._told:
                    self._told = True
                    logger.warning(
                        "usage rows not stored (%s%s); serving goes on, the cost counters "
                        "in /metrics stay complete",
                        type(exc).__name__,
                        f": {exc}" if isinstance(exc, ShipyardError) else "",
                    )
            else:
                self.written += len(usages)

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_seconds
        while not self._stop.wait(self.account_seconds):
            try:
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self.flush_seconds
                    self.flush()
                else:
                    self.account()
            except Exception:  # never let the thread die: the next second tries again
                logger.debug("usage accounting failed", exc_info=True)
