"""Running the server: one process, or several workers sharing one port.

:func:`build_server` turns a configuration and a model reference into a ready app: it
loads the model, starts the prediction and label log writers and the hot-swap watcher,
and hands the app the steps that stop them. :func:`run` serves it with uvicorn (uvloop
and httptools). With ``workers > 1`` each worker process builds its own server from a
:class:`ServeSpec` passed in the environment, the workers share their Prometheus
metrics through files in a temporary directory, and every worker writes its own log
files (names never collide), so all of it stays correct across workers.

The address is taken first (:func:`listen`): a port in use is reported, with its own
exit code, before any model is loaded and before anything says "ready". The socket is
handed to uvicorn, so nothing else can take the port in between.

Shutdown (Ctrl-C or SIGTERM) stops accepting connections, lets in-flight requests and
queued shadow predictions finish, then flushes the logs.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from shipyard.access import role_named
from shipyard.config import Config
from shipyard.errors import PortInUse
from shipyard.project import Principal, Project
from shipyard.serving.fast_path import PredictionRoutes

if TYPE_CHECKING:
    from datetime import datetime

    from mlflow import MlflowClient
    from starlette.types import ASGIApp

    from shipyard.logs.pii import PiiPolicy
    from shipyard.models.served import ServedModel
    from shipyard.serving.features import FeatureAttacher
    from shipyard.serving.hot_swap import ModelSlot
    from shipyard.serving.metrics import ScorecardBounds, ServerMetrics
    from shipyard.serving.usage import UsageRecorder
    from shipyard.store import Store

__all__ = ["ServeSpec", "Server", "build_server", "listen", "run"]

T = TypeVar("T")
SPEC_VARIABLE = "SHIPYARD_SERVE_SPEC"
GRACEFUL_SECONDS = 30


@dataclass(frozen=True)
class ServeSpec:
    """What to serve and how: the model reference and the resolved configuration."""

    ref: str
    config: dict[str, Any]
    root: str
    log_predictions: bool = True
    principal: str = "shipyard-serve"  # who started the server, as the CLI resolved it
    role: str = "operator"  # their role, and the token they started it with
    token_id: str | None = None

    @classmethod
    def of(
        cls,
        config: Config,
        ref: str,
        *,
        log_predictions: bool = True,
        principal: Principal | None = None,
    ) -> ServeSpec:
        """A spec for ``ref`` under ``config`` (which already holds the CLI's overrides)."""
        root = str(config.root)
        operator = role_named("operator")
        who = principal or Principal("shipyard-serve", "service", "operator", operator.scopes)
        return cls(
            ref,
            # Only what was set: the workers' configuration then knows, as the parent's
            # did, which settings were left to their defaults (serving.logs follows a
            # bucket artifact_root only when it was not set).
            config.model_dump(mode="json", exclude_unset=True),
            root,
            log_predictions,
            who.name,
            who.role,
            who.token_id,
        )

    def project(self) -> Project:
        """The project this server runs in, acting as the principal who started it."""
        role = role_named(self.role)
        who = Principal(
            self.principal, "shipyard serve", self.role, role.scopes, token_id=self.token_id
        )
        return Project(self.resolved_config(), who)

    def resolved_config(self) -> Config:
        """The configuration, as the parent process resolved it."""
        return Config.model_validate(self.config).model_copy(update={"root": Path(self.root)})


@dataclass(frozen=True)
class Server:
    """A built app and what was loaded for it.

    ``app`` is the classical server's :class:`PredictionRoutes`, or another ASGI app with
    the same ``state`` (the LLM gateway of ``shipyard.llm.server``).
    """

    app: PredictionRoutes | ASGIApp
    name: str
    version: str
    flavour: str
    following: bool
    load_seconds: float


def build_server(spec: ServeSpec) -> Server:
    """Load the model, start the log writers and the watcher, and build the app."""
    from shipyard.governance.integrity import signature_check
    from shipyard.logs.writer import PredictionLogWriter
    from shipyard.models.served import load_served_model
    from shipyard.registry import get_version, parse_ref
    from shipyard.registry.pointers import trusted_ref
    from shipyard.serving.app import create_app
    from shipyard.serving.auth import BearerTokens, ServerAccess
    from shipyard.serving.batcher import BatchSettings
    from shipyard.serving.features import FeatureAttacher
    from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
    from shipyard.serving.metrics import Evidence, Teams
    from shipyard.serving.router import StickyKey

    started = time.perf_counter()
    project = spec.project()
    config = project.config
    settings = config.serving
    client = project.client
    parsed = parse_ref(spec.ref)
    following = parsed.version is None and parsed.alias is None
    if parsed.version is None:  # aliases resolve through the pointers Shipyard recorded
        parsed = trusted_ref(project.store, client, parsed)
    version = get_version(client, parsed)
    check = signature_check(project)  # refuses files that do not match their signed card
    served = load_served_model(client, version.name, str(version.version), check=check)
    features = FeatureAttacher(config)  # a version with the features tag reads entity keys

    def load(client: MlflowClient, name: str, number: str) -> ServedModel:
        return features.attach(client, load_served_model(client, name, number, check=check))

    served = features.attach(client, served)
    writers: list[PredictionLogWriter] = []
    log = labels = None
    if spec.log_predictions:
        from shipyard.logs.pii import PiiPolicy
        from shipyard.logs.root import journal_folder, project_log_root
        from shipyard.serving.feedback import FeedbackDesk

        log = PredictionLogWriter(
            project_log_root(config),
            journal=journal_folder(config, "predictions"),
            roll_rows=settings.log_roll_rows,
            roll_seconds=settings.log_roll_seconds,
            fsync_seconds=settings.log_fsync_seconds,  # a machine crash loses at most this
            # tagged inputs (and features tagged pii) masked before any file
            pii=feature_pii(PiiPolicy.from_config(config), served, features),
        )
        labels = FeedbackDesk.for_project(project, served.name)  # checked, audited writes
        writers = [log]
    slot = ModelSlot(served)
    watcher = None
    if following:
        store = project.store
        watcher = GenerationWatcher(
            slot,
            store=store,
            client=client,
            interval=settings.poll_seconds,
            loader=load,
            check=check,
            storage=config.storage,  # a bucket that does not answer is told in seconds
        )
    batch = BatchSettings(
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        enabled=settings.max_batch_size > 1,
    )
    # A revoked token is refused within two polls, like a rollback is served within one.
    tokens = BearerTokens.of_store(lambda: project.store, ttl=2 * settings.poll_seconds)
    access = ServerAccess.of_config(config, tokens)
    if access.predictions or access.metadata or access.metrics:
        project.store  # noqa: B018 -- opened now, not on the first request
    on_shutdown = [watcher.stop] if watcher is not None else []
    on_shutdown += [writer.close for writer in writers]
    on_shutdown += [labels.close] if labels is not None else []
    usage: list[UsageRecorder] = []  # started below, once the metrics exist
    on_shutdown += [lambda: _close_all(usage)]
    app = create_app(
        slot,
        log=log,
        labels=labels,
        batch=batch,
        max_body_bytes=int(settings.max_body_mb * 1024 * 1024),
        body_timeout_seconds=settings.body_timeout_seconds,
        sticky=StickyKey.parse(settings.sticky_key) if settings.sticky_key else None,
        shadow_capacity=settings.shadow_queue,
        on_shutdown=[*on_shutdown, _mark_worker_dead],
        access=access,
    )
    metrics = app.state.metrics
    metrics.health.require_log = settings.require_log and log is not None
    metrics.teams = Teams(config.model.owner, config.model.team)
    monitoring = config.monitoring
    metrics.evidence = Evidence(monitoring.min_rows, monitoring.min_labelled)
    metrics.bounds = scorecard_bounds(config)
    usage.append(usage_recorder(project, metrics))
    if watcher is not None:
        metrics.monitor = _cached(lambda: latest_runs(store, served.name, slot), 15.0)
    for writer in writers:
        writer.start()
    usage[0].start()
    if watcher is not None:
        watcher.start()  # applies the current traffic settings before the first request
    # What start-up loaded (MLflow, the model) lives as long as the server: keep it out of
    # the collector's full passes, which otherwise stalled requests for 150-200 ms every
    # few seconds under load (p99 at c=64: 170 ms before, 28 ms after).
    gc.collect()
    gc.freeze()
    return Server(
        app=app,
        name=served.name,
        version=served.version,
        flavour=served.flavour,
        following=following,
        load_seconds=time.perf_counter() - started,
    )


def feature_pii(policy: PiiPolicy, served: ServedModel, features: FeatureAttacher) -> PiiPolicy:
    """``policy`` with the model columns of PII-tagged features added (tagged ``pii``).

    The served version's tagged columns, and, once the definitions were read, every view's
    PII features by name (a version swapped in later usually keeps its column names).
    """
    from shipyard.serving.features import FeatureSpec, pii_columns

    spec = served.spec
    added: dict[str, str] = {}
    if isinstance(spec, FeatureSpec) and spec.plan is not None:
        added.update(pii_columns(spec.plan, spec))
        repo = features.repo
        for view in repo.views.values():
            added.update(dict.fromkeys(view.pii_features, "pii"))
        for odv in repo.on_demand.values():
            added.update(dict.fromkeys(odv.pii_features, "pii"))
    if not added:
        return policy
    return replace(policy, columns={**added, **policy.columns})


def usage_recorder(project: Project, metrics: ServerMetrics) -> UsageRecorder:
    """Price ``metrics``' compute with the ``cost`` section; a recorder storing its usage."""
    from shipyard.serving.usage import Prices, Usage, UsageRecorder
    from shipyard.store.usage import UsageRecord, write_usage

    cost = project.config.cost
    prices = Prices(cost.cpu_hour, cost.gpu_hour, cost.gpus_per_server, cost.currency)
    metrics.meter.prices = prices
    host = socket.gethostname()

    def write(at: datetime, usages: list[Usage]) -> None:
        pid = os.getpid()
        records = [
            UsageRecord(
                at,
                host,
                pid,
                u.model,
                u.version,
                u.role,
                u.requests,
                u.cpu_seconds,
                u.gpu_seconds,
                u.cost,
                prices.currency,
            )
            for u in usages
        ]
        write_usage(project.store, records)

    recorder = UsageRecorder(
        metrics.account, metrics.meter, write, flush_seconds=cost.flush_seconds
    )
    metrics.usage = recorder
    return recorder


def scorecard_bounds(config: Config) -> ScorecardBounds:
    """The configured scorecard's latency bound and metric floors (none without a scorecard)."""
    from shipyard.errors import ShipyardError
    from shipyard.evaluation.evaluate import load_scorecard
    from shipyard.serving.metrics import ScorecardBounds

    try:
        scorecard = load_scorecard(config)
    except ShipyardError:
        return ScorecardBounds()
    criteria = [*([scorecard.primary] if scorecard.primary else []), *scorecard.metrics]
    floors = [
        (criterion.metric, bound, float(value))
        for criterion in criteria
        if criterion.slice is None
        for bound, value in (("min", criterion.min), ("max", criterion.max))
        if value is not None
    ]
    latency = scorecard.latency
    p99 = latency.max_p99_ms / 1000 if latency and latency.max_p99_ms is not None else None
    return ScorecardBounds(p99, tuple(dict.fromkeys(floors)))


def latest_runs(store: Store, name: str, slot: ModelSlot) -> list[dict[str, Any]]:
    """The latest stored monitor run of each version ``slot`` has loaded."""
    from sqlalchemy import func, select

    from shipyard.store.tables import MonitorRunRow

    versions = sorted(slot.lineup.models)
    newest = (
        select(MonitorRunRow.version, func.max(MonitorRunRow.id).label("id"))
        .where(MonitorRunRow.model == name, MonitorRunRow.version.in_(versions))
        .group_by(MonitorRunRow.version)
        .subquery()
    )
    query = select(MonitorRunRow.result).join(newest, MonitorRunRow.id == newest.c.id)
    with store.session() as session:
        return [dict(result) for result in session.scalars(query)]


def app_from_environment() -> PredictionRoutes | ASGIApp:
    """The uvicorn factory each worker process calls: builds from ``SHIPYARD_SERVE_SPEC``."""
    spec = ServeSpec(**json.loads(os.environ[SPEC_VARIABLE]))
    server = build_server(spec)
    print(
        f"worker {os.getpid()}: {server.name}/{server.version} ready in "
        f"{server.load_seconds:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    return server.app


_BACKLOG = 2048  # uvicorn's default backlog


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, as uvicorn would bind it; :class:`PortInUse` if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        taken = exc.errno == errno.EADDRINUSE
        raise PortInUse(
            f"Cannot listen on {host}:{port}: "
            + ("the port is in use." if taken else f"{exc.strerror or exc}."),
            hint="Stop what listens there (`ss -ltnp` shows it), or pick another port with "
            "--port or serving.port."
            if taken
            else "Pick another address with --host/--port (serving.host, serving.port).",
        ) from None
    # Listening from now on: a connection made once the server says it is ready waits in
    # the backlog until uvicorn accepts it, instead of being refused in between.
    sock.listen(_BACKLOG)
    sock.set_inheritable(True)  # the workers serve on it
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port ``sock`` listens on (the one the system chose, for port 0)."""
    return int(sock.getsockname()[1])


def run(
    spec: ServeSpec,
    *,
    workers: int = 1,
    server: Server | None = None,
    sock: socket.socket | None = None,
    factory: str = "shipyard.serving.server:app_from_environment",
) -> None:
    """Serve until interrupted: ``server`` in this process, or ``workers`` processes.

    ``sock`` is the listening socket from :func:`listen` (bound here when not given).
    ``factory`` is the ``module:function`` each worker process builds its app with from
    ``SHIPYARD_SERVE_SPEC`` (the LLM gateway passes its own).
    """
    import uvicorn

    settings = spec.resolved_config().serving
    sock = sock if sock is not None else listen(settings.host, settings.port)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": bound_port(sock),
        "log_level": "warning",
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
    }
    if workers == 1:
        app = server.app if server else build_server(spec).app
        with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is a stop
            uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="shipyard-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[SPEC_VARIABLE] = json.dumps(asdict(spec))
    try:
        config = uvicorn.Config(
            factory,
            factory=True,
            workers=workers,
            **options,
        )
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _cached(read: Callable[[], T], seconds: float) -> Callable[[], T]:
    """``read``, called at most once per ``seconds``; the last answer in between."""
    last: list[tuple[float, T]] = []

    def cached() -> T:
        now = time.monotonic()
        if not last or now - last[0][0] >= seconds:
            last[:] = [(now, read())]
        return last[0][1]

    return cached


def _close_all(recorders: list[UsageRecorder]) -> None:
    """Close each usage recorder: it stores its last interval."""
    for recorder in recorders:
        recorder.close()


def _mark_worker_dead() -> None:
    """Drop this worker's live gauges from the shared metrics once it stops."""
    from shipyard.serving.metrics import multiprocess_dir

    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
