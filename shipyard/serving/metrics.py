"""Prometheus metrics of one server: requests, latency, batch sizes, log health, models.

Each app gets its own ``CollectorRegistry`` (tests run several servers in one process).
The log writer's counters and the loaded model are read when Prometheus scrapes, so the
request path only increments a counter and observes a histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from shipyard.serving.hot_swap import ModelSlot
    from shipyard.serving.prediction_log import PredictionLogWriter

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _LiveState(Collector):
    """Gauges read at scrape time: log records written/dropped/queued, model load time."""

    def __init__(self, slot: ModelSlot, writers: Callable[[], list[PredictionLogWriter]]) -> None:
        self.slot = slot
        self.writers = writers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        model = self.slot.current
        loaded = GaugeMetricFamily(
            "shipyard_model_load_seconds",
            "Load time of the served model",
            labels=["model", "version"],
        )
        loaded.add_metric([model.name, model.version], model.load_seconds)
        yield loaded
        for name, help_text, read in (
            ("shipyard_log_records_written", "Log records written", lambda w: w.written),
            ("shipyard_log_records_dropped", "Log records dropped", lambda w: w.dropped),
            ("shipyard_log_queue_depth", "Log records waiting", lambda w: w.queue_depth),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["kind"])
            for writer in self.writers():
                family.add_metric([writer.kind], float(read(writer)))
            yield family


class ServerMetrics:
    """The counters and histograms the request path updates."""

    def __init__(self, slot: ModelSlot, writers: Callable[[], list[PredictionLogWriter]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shipyard_requests",
            "Prediction requests by model, version, role, protocol and status",
            ["model", "version", "role", "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shipyard_request_seconds",
            "Server-side time per prediction request",
            ["model", "version", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "shipyard_batch_rows",
            "Rows per predict call",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LiveState(slot, writers))

    def render(self) -> bytes:
        """The exposition text for ``GET /metrics``."""
        return generate_latest(self.registry)
