"""``shipyard serve``: a model on KServe V1, Open Inference V2 and /invocations, or an LLM
model (``model.task: llm``) on the OpenAI-compatible gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.output import console, esc
from shipyard.cli.state import CliState

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.serving.server import ServeSpec

__all__ = ["serve_cmd"]


def serve_cmd(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            help="NAME (follows its champion and traffic settings), NAME/VERSION or "
            "NAME@ALIAS (pinned)."
        ),
    ],
    host: Annotated[str | None, typer.Option(help="Interface to listen on [serving.host].")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port [serving.port].")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Server processes sharing the port [serving.workers]."),
    ] = None,
    log_predictions: Annotated[
        bool, typer.Option(help="Write every prediction to the prediction log.")
    ] = True,
    max_batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Coalesce concurrent requests up to this many rows; 1 = off "
            "[serving.max_batch_size].",
        ),
    ] = None,
    max_wait_ms: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Longest a request waits for company; 0 batches only what queued while the "
            "model was busy [serving.max_wait_ms].",
        ),
    ] = None,
    sticky_key: Annotated[
        str | None,
        typer.Option(
            help="Keep a caller on one version: header:<name> or input:<column> "
            "[serving.sticky_key]."
        ),
    ] = None,
    agent: Annotated[
        bool,
        typer.Option(
            "--agent",
            help="Also run the agent in this process: roll-outs, scheduled monitors, "
            "continuous training.",
        ),
    ] = False,
    ui: Annotated[
        bool,
        typer.Option(
            "--ui", help="Also serve the web dashboard on ui.host:ui.port and print its URL."
        ),
    ] = False,
) -> None:
    """Serve a registered model over HTTP until interrupted (Ctrl-C drains and flushes)."""
    from shipyard.registry import parse_ref
    from shipyard.serving.server import ServeSpec

    state: CliState = ctx.obj
    flags = {
        "serving.host": host,
        "serving.port": port,
        "serving.workers": workers,
        "serving.max_batch_size": max_batch_size,
        "serving.max_wait_ms": max_wait_ms,
        "serving.sticky_key": sticky_key,
    }
    state.overrides.update({k: v for k, v in flags.items() if v is not None})
    config = state.config()
    project = acting(ctx, Scope.SERVE_RUN, parse_ref(ref).name)
    spec = ServeSpec.of(config, ref, log_predictions=log_predictions, principal=project.principal)
    stop_agent = _start_agent(state, config) if agent else None
    stop_ui = _start_ui(state, config) if ui else None
    try:
        _serve(spec, ref, config)
    finally:
        if stop_ui is not None:
            stop_ui()
        if stop_agent is not None:
            stop_agent()
    console.print("Stopped: in-flight requests finished, logs flushed.")


def _serve(spec: ServeSpec, ref: str, config: Config) -> None:
    from shipyard.registry import get_version, parse_ref
    from shipyard.serving.server import bound_port, build_server, listen, run

    settings = config.serving
    # The address first: a port in use fails here (exit code 8), before any model loads
    # and before anything says ready.
    sock = listen(settings.host, settings.port)
    address = f"http://{settings.host}:{bound_port(sock)}"
    try:
        if config.model.task == "llm":
            _serve_gateway(spec, ref, config, sock, address)
        elif settings.workers == 1:
            server = build_server(spec)
            mode = "following its champion and traffic" if server.following else "pinned"
            console.print(
                f"Serving {esc(server.name)}/{esc(server.version)} ({esc(server.flavour)}, "
                f"{mode}) on {esc(address)} — ready in {server.load_seconds:.2f} s"
            )
            run(spec, server=server, sock=sock)
        else:
            version = get_version(spec.project().client, parse_ref(ref))  # fail before forking
            console.print(
                f"Serving {esc(version.name)} with {settings.workers} workers on {esc(address)}; "
                "each worker reports when it is ready."
            )
            run(spec, workers=settings.workers, sock=sock)
    finally:
        sock.close()


def _serve_gateway(spec: ServeSpec, ref: str, config: Config, sock: Any, address: str) -> None:
    """An LLM model: the OpenAI-compatible gateway on /v1/chat/completions and /v1/embeddings."""
    import os

    from shipyard.llm.prices import import_configured_prices
    from shipyard.llm.server import build_gateway, run_gateway
    from shipyard.registry import get_version, parse_ref

    imported = import_configured_prices(spec.project())  # llm.prices, once per file content
    if imported is not None:
        console.print(
            f"Imported {esc(config.llm.prices or '')} as price table version "
            f"{imported.table_version} ({imported.models} models)."
        )
    workers = config.serving.workers
    if workers == 1:
        server = build_gateway(spec, os.environ)
        mode = "following its champion and traffic" if server.following else "pinned"
        console.print(
            f"Serving {esc(server.name)}/{esc(server.version)} ({esc(server.flavour)}, "
            f"{mode}) on {esc(address)}/v1 (OpenAI-compatible) — ready in "
            f"{server.load_seconds:.2f} s"
        )
        run_gateway(spec, server=server, sock=sock)
        return
    version = get_version(spec.project().client, parse_ref(ref))  # fail before forking
    console.print(
        f"Serving {esc(version.name)} (OpenAI-compatible) with {workers} workers on "
        f"{esc(address)}/v1; each worker reports when it is ready."
    )
    run_gateway(spec, workers=workers, sock=sock)


def _start_ui(state: CliState, config: Config) -> Callable[[], None]:
    """Serve the dashboard on a thread of this process; returns what stops it."""
    from shipyard.cli.ui import start_dashboard

    url, stop = start_dashboard(state, config)
    console.print(f"Dashboard on {esc(url)}")
    return stop


def _start_agent(state: CliState, config: Config) -> Callable[[], None]:
    """Run the agent on a thread of this process; returns what stops it."""
    import threading

    from shipyard.agent import Agent

    agent = Agent(state.project(), poll=config.delivery.poll_seconds)
    stop = threading.Event()
    thread = threading.Thread(
        target=agent.run,
        args=(stop,),
        kwargs={"on_action": lambda action: console.print(f"[dim]agent:[/] {esc(action)}")},
        name="shipyard-agent",
        daemon=True,
    )
    thread.start()
    console.print(f"Agent running in-process (polling every {agent.poll:g} s).")

    def stop_agent() -> None:
        stop.set()
        thread.join(timeout=max(10.0, agent.poll * 3))

    return stop_agent
