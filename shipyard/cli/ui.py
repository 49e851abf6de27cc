"""``shipyard ui``: the web dashboard, served with uvicorn until Ctrl-C.

Who may look is decided here, as everywhere in the CLI: every page needs a token
(``shipyard tokens create --role viewer``), except that on a project where the OS user
may act without one (a local SQLite project) a dashboard listening on a loopback address
lets that user *read* without logging in. Acting (roll back, pause) always needs a
logged-in token with the deployer role. ``shipyard serve --ui`` uses
:func:`start_dashboard` to run the same app on a thread next to the model server.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.access import Scope
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState, os_user, os_user_may_act
from shipyard.errors import PortInUse

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from shipyard.config import Config
    from shipyard.project import Project

__all__ = ["acting_reader", "dashboard_for", "is_loopback", "start_dashboard", "ui_cmd"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (127.0.0.1, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dashboard_for(state: CliState, config: Config) -> tuple[Starlette, bool]:
    """The dashboard app for ``config``, and whether the OS user may read without a token."""
    from shipyard.ui.app import dashboard_app
    from shipyard.ui.auth import local_viewer

    project = acting_reader(state)
    local = os_user_may_act(config) and is_loopback(config.ui.host)
    viewer = local_viewer(os_user(state.environ)) if local else None
    return dashboard_app(config, project=project, local=viewer), local


def acting_reader(state: CliState) -> Project:
    """The project, once the principal starting the dashboard may read it."""
    project = state.project(existing_database=True)
    project.authorize(Scope.MODELS_READ)
    return project


def _listen(host: str, port: int) -> socket.socket:
    from shipyard.serving.server import listen

    try:
        return listen(host, port)
    except PortInUse as taken:
        raise PortInUse(
            taken.message, hint="Pick another port with --port or ui.port (0: any free port)."
        ) from None


def _url(sock: socket.socket, host: str) -> str:
    port = int(sock.getsockname()[1])
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def start_dashboard(state: CliState, config: Config) -> tuple[str, Callable[[], None]]:
    """Serve the dashboard on a thread of this process; its URL and what stops it."""
    import uvicorn

    app, _local = dashboard_for(state, config)
    sock = _listen(config.ui.host, config.ui.port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="shipyard-ui", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10.0)
        sock.close()

    return _url(sock, config.ui.host), stop


def ui_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [ui.host].")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port; 0 picks a free one [ui.port].")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the dashboard in the default web browser.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The web dashboard: fleet, models, versions, audit; roll back or pause from it."""
    import uvicorn

    state: CliState = ctx.obj
    flags = {"ui.host": host, "ui.port": port}
    state.overrides.update({k: v for k, v in flags.items() if v is not None})
    config = state.config()
    app, local = dashboard_for(state, config)
    sock = _listen(config.ui.host, config.ui.port)
    url = _url(sock, config.ui.host)
    if as_json:
        print_json({"url": url, "local_viewer": local})
    elif console.is_terminal:
        console.print(f"Dashboard on {esc(url)} (Ctrl-C stops)")
        if local:
            console.print(
                "[dim]Read-only without a token on this machine; log in with a deployer's "
                "token to roll back or pause.[/]"
            )
    else:
        console.print(url, soft_wrap=True, markup=False)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled: the dashboard stopped as asked
    finally:
        sock.close()
    if not as_json:
        console.print("Dashboard stopped.")
