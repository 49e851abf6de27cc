"""Prometheus metrics of one server: requests, latency, batch sizes, log health, traffic,
and trust (registry drift, versions served although their files fail verification).

Each app gets its own ``CollectorRegistry`` (tests run several servers in one process).
With several workers (``PROMETHEUS_MULTIPROC_DIR`` set before the workers start, as
``shipyard serve --workers N`` does), every worker writes its values to files in that
directory and ``GET /metrics`` on any worker reports the sum over all of them.

The request path only increments counters and observes histograms. State that lives
elsewhere (log writer counters, shadow queue, loaded models, traffic weights) is copied
into gauges by :meth:`ServerMetrics.refresh`: on every scrape, and at most once a
second while requests flow, so each worker's share stays current between scrapes. The
latest monitor run is read from the store on scrapes only, never on the request path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from shipyard.logs.writer import PredictionLogWriter
    from shipyard.models.served import ServedModel
    from shipyard.serving.hot_swap import Lineup, ModelSlot
    from shipyard.serving.shadow import ShadowRunner

__all__ = ["CONTENT_TYPE", "ServerMetrics", "multiprocess_dir"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_REFRESH_SECONDS = 1.0


def multiprocess_dir() -> str | None:
    """The directory shared by the workers' metric files, when running several."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServerMetrics:
    """The counters, histograms and gauges of one server (one worker of it)."""

    def __init__(self, slot: ModelSlot, writers: Callable[[], list[PredictionLogWriter]]) -> None:
        self.slot = slot
        self.writers = writers
        self.shadows: ShadowRunner | None = None
        self.batch_queue: Callable[[], int] = lambda: 0
        # The latest monitor run's result (a dict), when the server can read the store.
        self.monitor: Callable[[], dict[str, Any] | None] | None = None
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "shipyard_requests",
            "Prediction requests by model, version, role, protocol and status",
            ["model", "version", "role", "protocol", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "shipyard_request_seconds",
            "Server-side time per prediction request",
            ["model", "version", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "shipyard_batch_rows",
            "Rows per predict call",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.shadow_seconds = Histogram(
            "shipyard_shadow_seconds",
            "Time per shadow prediction (off the request path)",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.log_records = Gauge(
            "shipyard_log_records",
            "Prediction/label log records by state: written, dropped, queued",
            ["kind", "state"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.batch_queued = Gauge(
            "shipyard_batch_queue_rows",
            "Rows waiting for the micro-batcher's next predict call",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.shadow_queue = Gauge(
            "shipyard_shadow_queue_depth",
            "Shadow predictions waiting",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.shadow_dropped = Gauge(
            "shipyard_shadow_dropped",
            "Shadow predictions dropped because the shadow fell behind",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.load_seconds = Gauge(
            "shipyard_model_load_seconds",
            "Load time of each served model version",
            ["model", "version"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.traffic = Gauge(
            "shipyard_traffic_weight",
            "Share of live traffic per version and role (shadow: share copied)",
            ["model", "version", "role"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.feature_drift = Gauge(
            "shipyard_feature_drift_score",
            "Latest monitor run: drift score per feature",
            ["model", "version", "feature", "method"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.prediction_drift = Gauge(
            "shipyard_prediction_drift_score",
            "Latest monitor run: drift of the model's outputs against its reference",
            ["model", "version"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.prediction_band = Gauge(
            "shipyard_prediction_drift_band",
            "Latest monitor run: the model's prediction drift band (its inspect level)",
            ["model", "version"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.estimated = Gauge(
            "shipyard_estimated_performance",
            "Latest monitor run: label-free performance estimate (CBPE)",
            ["model", "version", "metric"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.realized = Gauge(
            "shipyard_realized_performance",
            "Latest monitor run: performance on the labelled predictions",
            ["model", "version", "metric"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.label_coverage = Gauge(
            "shipyard_label_coverage",
            "Latest monitor run: share of predictions with a label",
            ["model", "version"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.registry_drift = Gauge(
            "shipyard_registry_drift",
            "1 while MLflow's alias disagrees with the pointer Shipyard recorded "
            "(moved outside Shipyard; the recorded version keeps serving)",
            ["model", "alias"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.artifact_mismatch = Gauge(
            "shipyard_artifact_mismatch",
            "1 for a served version whose files do not match its signed card "
            "(serving.verify_signatures: warn)",
            ["model", "version"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self._shown: set[tuple[str, str]] = set()
        self._drifted: set[tuple[str, str]] = set()
        self._mismatched: set[tuple[str, str]] = set()
        self._next_refresh = 0.0

    def observe_shadow(self, model: ServedModel, status: str, seconds: float) -> None:
        """Count one shadow prediction (called from the shadow thread)."""
        self.requests.labels(model.name, model.version, "shadow", "shadow", status).inc()
        self.shadow_seconds.labels(model.name, model.version).observe(seconds)

    def tick(self) -> None:
        """Refresh the gauges if a second has passed; cheap enough for every request."""
        now = time.monotonic()
        if now >= self._next_refresh:
            self._next_refresh = now + _REFRESH_SECONDS
            self.refresh()

    def refresh(self) -> None:
        """Copy writer, batcher, shadow, model and traffic state into the gauges."""
        for writer in self.writers():
            self.log_records.labels(writer.kind, "written").set(writer.written)
            self.log_records.labels(writer.kind, "dropped").set(writer.dropped)
            self.log_records.labels(writer.kind, "queued").set(writer.queue_depth)
        self.batch_queued.set(self.batch_queue())
        if self.shadows is not None:
            self.shadow_queue.set(self.shadows.queue_depth)
            self.shadow_dropped.set(self.shadows.dropped)
        lineup = self.slot.lineup
        plan = lineup.plan
        shown: set[tuple[str, str]] = set()
        for version, model in lineup.models.items():
            self.load_seconds.labels(model.name, version).set(model.load_seconds)
        name = lineup.champion.name
        for route in plan.routes:
            self.traffic.labels(name, route.version, route.role).set(route.weight)
            shown.add((route.version, route.role))
        if plan.shadow_version is not None:
            self.traffic.labels(name, plan.shadow_version, "shadow").set(plan.shadow_share)
            shown.add((plan.shadow_version, "shadow"))
        for version, role in self._shown - shown:
            self.traffic.labels(name, version, role).set(0.0)
        self._shown = shown
        self._integrity(lineup)

    def _integrity(self, lineup: Lineup) -> None:
        """Registry drift and unverified versions: 1 while they last, then 0."""
        drifted = {(drift.model, drift.alias) for drift in self.slot.drift}
        for labels in drifted | self._drifted:
            self.registry_drift.labels(*labels).set(1.0 if labels in drifted else 0.0)
        self._drifted = drifted
        mismatched = {
            (model.name, version)
            for version, model in lineup.models.items()
            if model.verdict is not None and model.verdict.state == "mismatch"
        }
        for labels in mismatched | self._mismatched:
            self.artifact_mismatch.labels(*labels).set(1.0 if labels in mismatched else 0.0)
        self._mismatched = mismatched

    def _monitored(self) -> None:
        """Copy the latest monitor run into its gauges (best effort: the store may be down)."""
        if self.monitor is None:
            return
        try:
            run = self.monitor()
        except Exception:  # a scrape must not fail because the database did
            return
        if not run:
            return
        model, version = str(run.get("model")), str(run.get("version"))
        for feature in run.get("features", []):
            if feature.get("score") is not None:
                labels = (model, version, str(feature["feature"]), str(feature["method"]))
                self.feature_drift.labels(*labels).set(float(feature["score"]))
        prediction = run.get("prediction") or {}
        if prediction.get("score") is not None:
            self.prediction_drift.labels(model, version).set(float(prediction["score"]))
        band = (prediction.get("bands") or {}).get("inspect")
        if band is not None:
            self.prediction_band.labels(model, version).set(float(band))
        for metric, estimate in (run.get("estimated") or {}).items():
            if isinstance(estimate, dict) and estimate.get("value") is not None:
                self.estimated.labels(model, version, metric).set(float(estimate["value"]))
        performance = run.get("performance") or {}
        for metric, value in (performance.get("metrics") or {}).items():
            if value is not None:
                self.realized.labels(model, version, metric).set(float(value))
        if performance.get("coverage") is not None:
            self.label_coverage.labels(model, version).set(float(performance["coverage"]))

    def render(self) -> bytes:
        """The exposition text for ``GET /metrics`` (all workers' when there are several)."""
        self.refresh()
        self._monitored()  # a database read: here, off the event loop, not in tick()
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined)
        return generate_latest(combined)
