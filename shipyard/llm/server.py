"""Building and running the gateway: what ``shipyard serve`` does for a model with task llm.

:func:`build_gateway` loads the served LLM version (its spec: provider, model, prompt
template, parameters) into a :class:`~shipyard.serving.hot_swap.ModelSlot`, and starts
what the classical server starts, the same way: a
:class:`~shipyard.serving.hot_swap.GenerationWatcher` (``loader=served_llm``), so an
alias move, a traffic change or a ``shipyard rollback`` is served within
``serving.poll_seconds``; the token check of ``serving.auth``; the Prometheus metrics.
Beside them: the provider pool (keys from the environment, never logged), the semantic
cache, the per-tenant caps, the price book and the trace log (kind ``traces``, written
by a :class:`~shipyard.logs.writer.PredictionLogWriter`).

:func:`run_gateway` serves it like :func:`shipyard.serving.server.run`: one process, or
``serving.workers`` processes on one socket, each building its own gateway from the
:class:`~shipyard.serving.server.ServeSpec` in the environment.
"""

from __future__ import annotations

import gc
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from shipyard.errors import ConfigError, NotFoundError
from shipyard.serving.server import SPEC_VARIABLE, Server, ServeSpec

if TYPE_CHECKING:
    from shipyard.llm.gateway import Gateway
    from shipyard.logs.traces import TraceRecord
    from shipyard.logs.writer import PredictionLogWriter

__all__ = ["FACTORY", "build_gateway", "gateway_from_environment", "run_gateway"]

FACTORY = "shipyard.llm.server:gateway_from_environment"  # what each worker process calls


def build_gateway(spec: ServeSpec, environ: Mapping[str, str]) -> Server:
    """Load the LLM version, start the watcher, caps, cache and trace log; build the app.

    ``environ`` is where the providers' keys are read (``api_key_env``); the CLI passes
    ``os.environ``.
    """
    from shipyard.llm.cache import SemanticCache
    from shipyard.llm.caps import CapGuard
    from shipyard.llm.embedders import embedder_of
    from shipyard.llm.gateway import create_gateway
    from shipyard.llm.gateway_seams import GatewayParts
    from shipyard.llm.metrics import LlmMetrics
    from shipyard.llm.prices import LivePriceBook
    from shipyard.llm.providers import ProviderPool
    from shipyard.llm.trace_sink import TraceSink
    from shipyard.models.llm import FLAVOUR, served_llm
    from shipyard.registry import get_version, parse_ref
    from shipyard.registry.pointers import trusted_ref
    from shipyard.serving.auth import BearerTokens, ServerAccess
    from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
    from shipyard.serving.metrics import ServerMetrics, Teams
    from shipyard.serving.router import StickyKey

    started = time.perf_counter()
    project = spec.project()
    config = project.config
    settings = config.serving
    llm = config.llm
    if not llm.providers:
        raise ConfigError(
            "model.task is llm but llm.providers is empty: the gateway has nowhere to send "
            "requests.",
            hint="Add a provider under llm.providers (name, base_url, api_key_env).",
        )
    client = project.client
    parsed = parse_ref(spec.ref)
    following = parsed.version is None and parsed.alias is None
    if parsed.version is None:
        parsed = trusted_ref(project.store, client, parsed)
    version = get_version(client, parsed)
    served = served_llm(client, version.name, str(version.version))
    slot = ModelSlot(served)
    store = project.store
    watcher = None
    if following:
        watcher = GenerationWatcher(
            slot,
            store=store,
            client=client,
            interval=settings.poll_seconds,
            loader=served_llm,
            storage=config.storage,
        )
    pool = ProviderPool.of_settings(llm, environ, config.root)
    closers: list[Callable[[], None]] = []
    if watcher is not None:
        closers.append(watcher.stop)
    caps = CapGuard(store, served.name, llm.caps).start()
    closers.append(caps.close)
    cache = SemanticCache(llm.cache, embedder_of(llm.cache, pool)) if llm.cache.enabled else None
    # A running gateway prices new calls by `shipyard llm prices import` within 10 s.
    prices = LivePriceBook(store, llm.currency).start()
    closers.append(prices.close)
    tokens = BearerTokens.of_store(lambda: project.store, ttl=2 * settings.poll_seconds)
    access = ServerAccess.of_config(config, tokens)
    writers = _trace_writers(spec, config)
    metrics = ServerMetrics(slot, lambda: writers)
    metrics.teams = Teams(config.model.owner, config.model.team)
    llm_metrics = LlmMetrics(registry=metrics.registry)
    sink = TraceSink([*(_journal(w) for w in writers), llm_metrics.observe])
    closers += [sink.close, *(w.close for w in writers)]  # the queue drains into the log
    pii = None
    if config.pii.columns:
        from shipyard.logs.pii import PiiPolicy

        pii = PiiPolicy.from_config(config)
    parts = GatewayParts(
        name=served.name,
        slot=slot,
        pool=pool,
        access=access,
        caps=caps,
        prices=prices,
        metrics=metrics,
        cap_settings=llm.caps,
        cache=cache,
        cache_settings=llm.cache,
        sticky=StickyKey.parse(settings.sticky_key) if settings.sticky_key else None,
        record=sink if llm.traces else None,
        pii=pii,
        guardrails=tuple(re.compile(term, re.IGNORECASE) for term in llm.judge.guardrail_terms),
        shadow_capacity=settings.shadow_queue,
        llm_metrics=llm_metrics,
    )
    gateway = create_gateway(
        parts,
        max_body_bytes=int(settings.max_body_mb * 1024 * 1024),
        body_timeout_seconds=settings.body_timeout_seconds,
        on_shutdown=closers,
    )
    if access.predictions or access.metadata or access.metrics:
        project.store  # noqa: B018 -- opened now, not on the first request
    for writer in writers:
        writer.start()
    if watcher is not None:
        watcher.start()  # applies the current traffic settings before the first request
    gc.collect()
    gc.freeze()  # as the classical server: start-up's objects out of the full passes
    if served.flavour != FLAVOUR:  # pragma: no cover - served_llm refuses others
        raise NotFoundError(f"{served.name}/{served.version} is not an LLM version.")
    return Server(
        app=gateway,
        name=served.name,
        version=served.version,
        flavour=served.flavour,
        following=following,
        load_seconds=time.perf_counter() - started,
    )


def _trace_writers(spec: ServeSpec, config: Any) -> list[PredictionLogWriter]:
    """The trace log's writer (kind ``traces``), unless logging or tracing is off."""
    if not spec.log_predictions or not config.llm.traces:
        return []
    from shipyard.logs.root import journal_folder, project_log_root
    from shipyard.logs.writer import PredictionLogWriter

    settings = config.serving
    return [
        PredictionLogWriter(
            project_log_root(config),
            kind="traces",
            journal=journal_folder(config, "traces"),
            roll_rows=settings.log_roll_rows,
            roll_seconds=settings.log_roll_seconds,
            fsync_seconds=settings.log_fsync_seconds,
        )
    ]


def _journal(writer: PredictionLogWriter) -> Callable[[Sequence[TraceRecord]], None]:
    """What hands one trace's spans to ``writer``."""
    log = writer.log

    def record(records: Sequence[TraceRecord]) -> None:
        for span in records:
            log(span)

    return record


def gateway_from_environment() -> Gateway:
    """The uvicorn factory each worker process calls: builds from ``SHIPYARD_SERVE_SPEC``."""
    spec = ServeSpec(**json.loads(os.environ[SPEC_VARIABLE]))
    server = build_gateway(spec, os.environ)
    print(
        f"worker {os.getpid()}: {server.name}/{server.version} ready in "
        f"{server.load_seconds:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    return cast("Gateway", server.app)


def run_gateway(
    spec: ServeSpec,
    *,
    workers: int = 1,
    server: Server | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve the gateway until interrupted: ``server`` here, or ``workers`` processes."""
    from shipyard.serving.server import run

    if workers == 1:
        run(spec, server=server or build_gateway(spec, os.environ), sock=sock)
        return
    run(spec, workers=workers, sock=sock, factory=FACTORY)
