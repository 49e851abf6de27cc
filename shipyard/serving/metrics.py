"""Prometheus metrics of one server: requests, latency, batch sizes, log health, traffic,
trust (registry drift, versions served unverified), health, compute cost, and the latest
monitor runs.

Two kinds of series, kept apart because they behave differently across workers:

- *Per-worker instruments* (requests, latency, batch rows, log records, queues, shadow
  drops, ``shipyard_degraded``) live in the app's ``CollectorRegistry``. With several
  workers (``PROMETHEUS_MULTIPROC_DIR`` set before they start, as ``shipyard serve
  --workers N`` does) each worker writes them to files in that directory and ``GET
  /metrics`` on any worker reports all of them. Counts are counters (``_total``): a
  worker's writer and shadow counts are copied in as increments, so a dead worker's
  share stays in the sum and the series never goes backwards.
- *State series* (traffic weights, load times, registry drift, unverified versions,
  the scorecard's bounds, and the monitor's gauges) are computed when scraped, from
  this worker's lineup and the store. Nothing stale can outlive what it describes: a
  version with no traffic (weight 0, not champion, no shadow share) has no gauges, and
  a monitor window below ``monitoring.min_rows`` (or below ``min_labelled`` labels, for
  realised performance) exports none, so no rule can fire on too little evidence.

Every ``shipyard_*`` series carries ``owner`` and ``team`` labels from ``model.owner``
and ``model.team`` (left off while unset, which Prometheus reads the same as empty).
Process metrics (``process_*``) come from prometheus_client's ``ProcessCollector``:
one process's in a single-process server; each live worker's, with a ``pid`` label,
with several (its custom collectors do not run in multiprocess mode, so they are read
per worker pid here).

Compute cost (``shipyard_cpu_seconds_total`` and ``shipyard_compute_cost_total``, by
model, version and role) is this worker's CPU time (and GPU wall time × GPUs, where
priced) shared among the routes that answered in each interval
(:class:`~shipyard.serving.usage.CostMeter`). :meth:`ServerMetrics.account` takes it:
the usage recorder's thread does every second, and every scrape does, never a request.

The request path only increments counters and observes histograms; :meth:`tick` copies
the rest into the instruments at most once a second, and every scrape does too.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector

from shipyard.serving.health import REASONS, HealthCheck
from shipyard.serving.usage import CostMeter, Usage, UsageRecorder

if TYPE_CHECKING:
    from shipyard.logs.writer import PredictionLogWriter
    from shipyard.models.served import ServedModel
    from shipyard.serving.hot_swap import ModelSlot
    from shipyard.serving.shadow import ShadowRunner

__all__ = [
    "CONTENT_TYPE",
    "Evidence",
    "ScorecardBounds",
    "ServerMetrics",
    "Teams",
    "multiprocess_dir",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_REFRESH_SECONDS = 1.0
_PID = re.compile(r"_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The directory shared by the workers' metric files, when running several."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@dataclass(frozen=True)
class Teams:
    """Who answers for the model: ``model.owner`` and ``model.team``, on every series."""

    owner: str = ""
    team: str = ""

    def labels(self) -> dict[str, str]:
        """The labels to add (unset ones left off)."""
        return {k: v for k, v in (("owner", self.owner), ("team", self.team)) if v}


@dataclass(frozen=True)
class Evidence:
    """How much a monitor window needs before its gauges are exported (``monitoring.*``)."""

    min_rows: int = 200
    min_labelled: int = 50


@dataclass(frozen=True)
class ScorecardBounds:
    """The scorecard's bounds the live rules compare with.

    ``latency_p99_seconds`` is ``latency.max_p99_ms``; ``floors`` holds (metric, "min" or
    "max", value) for the primary and secondary metrics without a slice.
    """

    latency_p99_seconds: float | None = None
    floors: tuple[tuple[str, str, float], ...] = ()


class ServerMetrics:
    """The instruments and state series of one server (one worker of it)."""

    def __init__(self, slot: ModelSlot, writers: Callable[[], list[PredictionLogWriter]]) -> None:
        self.slot = slot
        self.writers = writers
        self.health = HealthCheck(slot, writers)
        self.teams = Teams()
        self.evidence = Evidence()
        self.bounds = ScorecardBounds()
        self.shadows: ShadowRunner | None = None
        self.batch_queue: Callable[[], int] = lambda: 0
        # The latest monitor run of each served version (dicts), when the store is readable.
        self.monitor: Callable[[], list[dict[str, Any]]] | None = None
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "shipyard_requests",
            "Prediction requests by model, version, role, protocol and status",
            ["model", "version", "role", "protocol", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "shipyard_request_seconds",
            "Server-side time per answered (200) prediction request",
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
        self.log_records = Counter(
            "shipyard_log_records",
            "Prediction/label log rows (and usage rows) by state: written (to Parquet, or "
            "the store) or dropped (lost)",
            ["kind", "state"],
            registry=registry,
        )
        self.log_queue = Gauge(
            "shipyard_log_queue_rows",
            "Prediction/label log rows waiting for Parquet",
            ["kind"],
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
        self.shadow_dropped = Counter(
            "shipyard_shadow_dropped",
            "Shadow predictions dropped because the shadow fell behind",
            registry=registry,
        )
        self.degraded = Gauge(
            "shipyard_degraded",
            "1 while some worker is degraded for the reason (readiness 'degraded' says why)",
            ["reason"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.cpu_seconds = Counter(
            "shipyard_cpu_seconds",
            "Server CPU seconds, shared among model, version and role by predictions answered "
            "(an interval without any goes to the champion)",
            ["model", "version", "role"],
            registry=registry,
        )
        self.compute_cost = Counter(
            "shipyard_compute_cost",
            "Compute cost in cost.currency: CPU seconds x cost.cpu_hour / 3600, plus GPU "
            "wall seconds x cost.gpus_per_server x cost.gpu_hour / 3600 where priced",
            ["model", "version", "role"],
            registry=registry,
        )
        self.feature_lookups = Counter(
            "shipyard_feature_lookups",
            "Online feature rows looked up, by model, view and outcome: hit, unknown (no row "
            "for the entity) or expired (older than the view's ttl)",
            ["model", "view", "outcome"],
            registry=registry,
        )
        self.feature_lookup_seconds = Histogram(
            "shipyard_feature_lookup_seconds",
            "Time per online store read (one view, all the rows of one request)",
            ["model", "view"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.meter = CostMeter()
        self.usage: UsageRecorder | None = None  # stores usage rows (``shipyard serve``)
        if multiprocess_dir() is None:
            ProcessCollector(registry=registry)
        self._drifted: set[tuple[str, str]] = set()  # every alias drift seen
        self._copied: dict[tuple[str, ...], int] = {}  # counts already added to counters
        self._next_refresh = 0.0
        # The request series' children per label values: labels() (a lock and checks) costs
        # more than the increment. prometheus_client keeps a child per label set until
        # remove()/clear(); nothing here removes request series. Whatever does must clear
        # these two dicts with it, else a cached child would count into a dropped series.
        self._counted: dict[tuple[str, ...], Any] = {}
        self._timed: dict[tuple[str, ...], Any] = {}

    def count_request(
        self, model: str, version: str, role: str, protocol: str, status: int
    ) -> None:
        """Count one prediction request answered with ``status``."""
        key = (model, version, role, protocol, str(status))
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = self.requests.labels(*key)
        child.inc()
        if status == 200:
            self.meter.answered(key)  # its share of the compute cost

    def time_request(self, model: str, version: str, protocol: str, seconds: float) -> None:
        """Observe the server-side time of one answered (200) prediction request."""
        key = (model, version, protocol)
        child = self._timed.get(key)
        if child is None:
            child = self._timed[key] = self.latency.labels(*key)
        child.observe(seconds)

    def observe_lookup(self, model: str, view: str, seconds: float, counts: dict[str, int]) -> None:
        """Count one request's rows looked up in ``view`` by outcome, and time the read."""
        self.feature_lookup_seconds.labels(model, view).observe(seconds)
        for outcome, count in counts.items():
            if count:
                self.feature_lookups.labels(model, view, outcome).inc(count)

    def observe_shadow(self, model: ServedModel, status: str, seconds: float) -> None:
        """Count one shadow prediction (called from the shadow thread)."""
        self.requests.labels(model.name, model.version, "shadow", "shadow", status).inc()
        self.shadow_seconds.labels(model.name, model.version).observe(seconds)
        self.meter.answered((model.name, model.version, "shadow"))

    def account(self) -> list[Usage]:
        """Take the compute time since the last call into the cost counters; what was taken.

        Called off the request path (the usage recorder's thread, each scrape).
        """
        champion = self.slot.lineup.champion
        taken = self.meter.take((champion.name, champion.version))
        for usage in taken:
            self.cpu_seconds.labels(*usage.key).inc(usage.cpu_seconds)
            self.compute_cost.labels(*usage.key).inc(usage.cost)
        return taken

    def tick(self) -> None:
        """Refresh the instruments if a second has passed; cheap enough for every request."""
        now = time.monotonic()
        if now >= self._next_refresh:
            self._next_refresh = now + _REFRESH_SECONDS
            self.refresh()

    def refresh(self) -> None:
        """Copy writer, batcher, shadow and health state into this worker's instruments."""
        for writer in self.writers():
            for state, total in (("written", writer.written), ("dropped", writer.dropped)):
                self._count(
                    (writer.kind, state), self.log_records.labels(writer.kind, state), total
                )
            self.log_queue.labels(writer.kind).set(writer.queue_depth)
        if self.usage is not None:  # usage rows stored or lost, as log rows are
            for state, total in (("written", self.usage.written), ("dropped", self.usage.dropped)):
                self._count(("usage", state), self.log_records.labels("usage", state), total)
        self.batch_queued.set(self.batch_queue())
        if self.shadows is not None:
            self.shadow_queue.set(self.shadows.queue_depth)
            self._count(("shadow",), self.shadow_dropped, self.shadows.dropped)
        degraded = self.health().degraded
        for reason in REASONS:
            self.degraded.labels(reason).set(1.0 if reason in degraded else 0.0)

    def _count(self, key: tuple[str, ...], counter: Counter, total: int) -> None:
        """Bring ``counter`` up to ``total`` (a count kept elsewhere that only grows)."""
        added = total - self._copied.get(key, 0)
        if added > 0:
            counter.inc(added)
            self._copied[key] = total

    def state(self) -> list[Metric]:
        """The state series, as of now: lineup, trust, scorecard bounds, monitor gauges."""
        lineup = self.slot.lineup
        name = lineup.champion.name
        plan = lineup.plan
        traffic = _family(
            "traffic_weight",
            "Share of live traffic per version and role (shadow: share copied)",
            ["model", "version", "role"],
        )
        for route in plan.routes:
            traffic.add_metric([name, route.version, route.role], route.weight)
        if plan.shadow_version is not None and plan.shadow_share:
            traffic.add_metric([name, plan.shadow_version, "shadow"], plan.shadow_share)
        load = _family(
            "model_load_seconds", "Load time of each loaded version", ["model", "version"]
        )
        for version, model in sorted(lineup.models.items()):
            load.add_metric([name, version], model.load_seconds)
        drift = _family(
            "registry_drift",
            "1 while MLflow's alias disagrees with the pointer "
            "Shipyard recorded (the recorded version keeps serving)",
            ["model", "alias"],
        )
        drifted = {(found.model, found.alias) for found in self.slot.drift}
        self._drifted |= drifted  # an ended drift reads 0, so a dashboard sees it end
        for labels in sorted(self._drifted):
            drift.add_metric(list(labels), 1.0 if labels in drifted else 0.0)
        mismatch = _family(
            "artifact_mismatch",
            "1 for a served version whose files do not "
            "match its signed card (serving.verify_signatures: warn)",
            ["model", "version"],
        )
        for version, model in sorted(lineup.models.items()):
            if model.verdict is not None and model.verdict.state == "mismatch":
                mismatch.add_metric([name, version], 1.0)
        families = [traffic, load, drift, mismatch, *self._bounds(name)]
        return families + self._monitored(name, self.served_versions())

    def served_versions(self) -> set[str]:
        """Versions that take traffic now: the champion, challengers above 0, the shadow."""
        plan = self.slot.lineup.plan
        served = {r.version for r in plan.routes if r.weight > 0 or r.role == "champion"}
        if plan.shadow_version is not None and plan.shadow_share > 0:
            served.add(plan.shadow_version)
        return served

    def _bounds(self, name: str) -> list[Metric]:
        latency = _family(
            "scorecard_latency_seconds",
            "The scorecard's latency bound (latency.max_p99_ms) the live p99 is held to",
            ["model", "quantile"],
        )
        if self.bounds.latency_p99_seconds is not None:
            latency.add_metric([name, "0.99"], self.bounds.latency_p99_seconds)
        floor = _family(
            "scorecard_bound",
            "The scorecard's bound on a metric (bound=min: a "
            "floor, bound=max: a ceiling) that labelled performance is held to",
            ["model", "metric", "bound"],
        )
        for metric, bound, value in self.bounds.floors:
            floor.add_metric([name, metric, bound], value)
        return [latency, floor]

    def _monitored(self, name: str, served: set[str]) -> list[Metric]:
        """The monitor's gauges for each served version whose window holds enough evidence."""
        feature = _family(
            "feature_drift_score",
            "Latest monitor run: drift score per feature",
            ["model", "version", "feature", "method"],
        )
        prediction = _family(
            "prediction_drift_score",
            "Latest monitor run: drift of the model's outputs against its reference",
            ["model", "version"],
        )
        band = _family(
            "prediction_drift_band",
            "Latest monitor run: the model's prediction drift band (its inspect level)",
            ["model", "version"],
        )
        estimated = _family(
            "estimated_performance",
            "Latest monitor run: label-free performance estimate (CBPE)",
            ["model", "version", "metric"],
        )
        realized = _family(
            "realized_performance",
            "Latest monitor run: performance on the labelled predictions",
            ["model", "version", "metric"],
        )
        coverage = _family(
            "label_coverage",
            "Latest monitor run: share of predictions with a label",
            ["model", "version"],
        )
        families: list[Metric] = [feature, prediction, band, estimated, realized, coverage]
        for run in self._runs():
            version = str(run.get("version"))
            if str(run.get("model")) != name or version not in served:
                continue  # a version with no traffic: its gauges are gone
            if int(run.get("rows") or 0) < self.evidence.min_rows:
                continue  # too small a window: drift scores there are noise
            key = [name, version]
            for item in run.get("features") or []:
                if _number(item.get("score")) is not None:
                    labels = [*key, str(item["feature"]), str(item["method"])]
                    feature.add_metric(labels, float(item["score"]))
            drift = run.get("prediction") or {}
            if _number(drift.get("score")) is not None:
                prediction.add_metric(key, float(drift["score"]))
            inspect = _number((drift.get("bands") or {}).get("inspect"))
            if inspect is not None:
                band.add_metric(key, inspect)
            for metric, estimate in sorted((run.get("estimated") or {}).items()):
                value = _number(estimate.get("value")) if isinstance(estimate, dict) else None
                if value is not None:
                    estimated.add_metric([*key, metric], value)
            performance = run.get("performance") or {}
            if _number(performance.get("coverage")) is not None:
                coverage.add_metric(key, float(performance["coverage"]))
            if int(performance.get("labelled") or 0) < self.evidence.min_labelled:
                continue  # too few labels to say anything about performance
            for metric, value in sorted((performance.get("metrics") or {}).items()):
                if _number(value) is not None:
                    realized.add_metric([*key, metric], float(value))
        return families

    def _runs(self) -> list[dict[str, Any]]:
        if self.monitor is None:
            return []
        try:
            return [run for run in self.monitor() if run]
        except Exception:  # a scrape must not fail because the database did
            return []

    def collect(self) -> Iterator[Metric]:
        """Every series, with the owner and team labels (a prometheus_client collector)."""
        extra = self.teams.labels()
        for family in self._families():
            if extra and family.name.startswith("shipyard"):
                family.samples = [s._replace(labels={**s.labels, **extra}) for s in family.samples]
            yield family

    def _families(self) -> Iterable[Metric]:
        directory = multiprocess_dir()
        if directory is None:
            yield from self.registry.collect()
        else:
            _forget_dead_workers(directory)
            yield from MultiProcessCollector(None, directory).collect()
            yield from _worker_processes(directory)
        yield from self.state()

    def render(self) -> bytes:
        """The exposition text for ``GET /metrics`` (all workers' when there are several)."""
        self.refresh()
        self.account()
        out = CollectorRegistry(auto_describe=False)
        out.register(self)
        return generate_latest(out)


def _family(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"shipyard_{name}", documentation, labels=labels)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, null, NaN, a string such as 'inf')."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def _worker_pids(directory: str) -> set[int]:
    return {int(m.group(1)) for n in os.listdir(directory) if (m := _PID.search(n))}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that died without a goodbye (``kill -9``)."""
    for pid in _worker_pids(directory):
        if pid != os.getpid() and not _alive(pid):
            mark_process_dead(pid, directory)


def _worker_processes(directory: str) -> Iterator[Metric]:
    """``process_*`` of every live worker, each sample labelled with its ``pid``."""
    merged: dict[str, Metric] = {}
    for pid in sorted(_worker_pids(directory) | {os.getpid()}):
        if not _alive(pid):
            continue
        for family in ProcessCollector(pid=_constant(pid), registry=None).collect():
            into = merged.setdefault(
                family.name, Metric(family.name, family.documentation, family.type)
            )
            into.samples += [
                s._replace(labels={**s.labels, "pid": str(pid)}) for s in family.samples
            ]
    yield from merged.values()
