"""Prometheus series of LLM calls: requests, tokens, cost, cache results and savings, TTFT,
provider errors and cap refusals, by model, version and tenant.

:class:`LlmMetrics` puts its instruments in a registry it is given: the gateway passes
its :class:`~shipyard.serving.metrics.ServerMetrics` registry, so ``GET /metrics`` shows
them with the server's, ``owner``/``team`` labels included. They are plain counters and
histograms: with several workers (``PROMETHEUS_MULTIPROC_DIR`` set before they start)
prometheus_client writes each worker's values to that directory and any worker's scrape
sums them, a dead worker's share included, so no series goes backwards.

The request path calls :meth:`LlmMetrics.observe` with a finished trace's records (or
:meth:`refused` / :meth:`provider_error`); each takes a few microseconds: label children
are cached per label set (``labels()`` costs more than the increment).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from shipyard.logs.traces import TraceRecord

__all__ = ["LlmMetrics"]

_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LlmMetrics:
    """The LLM instruments of one worker, in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "shipyard_llm_requests",
            "LLM calls by model, version, role, tenant and status (ok or error)",
            ["model", "version", "role", "tenant", "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "shipyard_llm_tokens",
            "Tokens spent by model, version, tenant and type (prompt, completion, cached; "
            "cached prompt tokens are also counted in prompt)",
            ["model", "version", "tenant", "type"],
            registry=registry,
        )
        self.cost = Counter(
            "shipyard_llm_cost",
            "What LLM calls cost, in currency, as recorded (provider-reported or computed "
            "from the price table valid at the call)",
            ["model", "version", "tenant", "currency"],
            registry=registry,
        )
        self.unpriced = Counter(
            "shipyard_llm_unpriced",
            "Provider calls no price matched (their cost counts as 0): add a price",
            ["model", "provider_model"],
            registry=registry,
        )
        self.cache = Counter(
            "shipyard_llm_cache",
            "Cache results by model, version, tenant and result (exact, semantic, miss, bypass)",
            ["model", "version", "tenant", "result"],
            registry=registry,
        )
        self.saved = Counter(
            "shipyard_llm_cache_saved",
            "What cache hits avoided: the cached answers' usage priced as calls",
            ["model", "version", "tenant", "currency"],
            registry=registry,
        )
        self.ttft = Histogram(
            "shipyard_llm_ttft_seconds",
            "Time to the first token of streamed provider calls",
            ["model", "version"],
            buckets=_TTFT_BUCKETS,
            registry=registry,
        )
        self.seconds = Histogram(
            "shipyard_llm_request_seconds",
            "Time per LLM call, gateway span (cache hits included)",
            ["model", "version"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.provider_errors = Counter(
            "shipyard_llm_provider_errors",
            "Failed provider attempts by model, provider and status (429, 5xx, 504 timeout …)",
            ["model", "provider", "status"],
            registry=registry,
        )
        self.refusals = Counter(
            "shipyard_llm_cap_refusals",
            "Requests refused with 429 by a per-tenant cap (never charged)",
            ["model", "tenant"],
            registry=registry,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, records: Iterable[TraceRecord]) -> None:
        """Count one finished call from its trace records: a request per root span, an
        error when any span of the call failed (as the cost report counts ``errors``)."""
        spans = records if isinstance(records, (list, tuple)) else list(records)
        status = "error" if any(r.status == "error" for r in spans) else "ok"
        # The cache result counts once per call, though the lookup and the root may both say.
        cached = next((r for r in spans if r.cache), None)
        if cached is not None:
            self._child(self.cache, cached.model, cached.version, cached.tenant, cached.cache).inc()
        for r in spans:
            model, version, tenant = r.model, r.version, r.tenant
            if not r.parent_span_id:
                self._child(self.requests, model, version, r.role, tenant, status).inc()
                self._child(self.seconds, model, version).observe(r.duration_ms / 1000.0)
            if r.prompt_tokens:
                self._child(self.tokens, model, version, tenant, "prompt").inc(r.prompt_tokens)
            if r.completion_tokens:
                child = self._child(self.tokens, model, version, tenant, "completion")
                child.inc(r.completion_tokens)
            if r.cached_tokens:
                self._child(self.tokens, model, version, tenant, "cached").inc(r.cached_tokens)
            if r.cost:
                self._child(self.cost, model, version, tenant, r.currency).inc(r.cost)
            if r.cost_source == "unpriced":
                self._child(self.unpriced, model, r.provider_model).inc()
            if r.saved_cost:
                self._child(self.saved, model, version, tenant, r.currency).inc(r.saved_cost)
            if r.ttft_ms is not None:
                self._child(self.ttft, model, version).observe(r.ttft_ms / 1000.0)

    def provider_error(self, model: str, provider: str, status: int | str) -> None:
        """Count one failed provider attempt (a retry or fallback followed, or not)."""
        self._child(self.provider_errors, model, provider, str(status)).inc()

    def refused(self, model: str, tenant: str) -> None:
        """Count one request a cap refused with 429."""
        self._child(self.refusals, model, tenant).inc()
