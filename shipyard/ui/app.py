"""The dashboard's web app: Starlette routes, Jinja2 pages, one error table, static files.

    app = dashboard_app(load_config("shipyard.yaml"))
    uvicorn.run(app, host="127.0.0.1", port=8600)

Pages are rendered on the server (:mod:`shipyard.ui.pages`) from the records
:mod:`shipyard.ui.data` returns; a page asked for JSON (``Accept: application/json``, or
any request with a bearer header) answers that record as JSON instead. Charts are
drawn in the browser by plotly's own ``plotly.min.js`` (served from the installed
``plotly`` package, never a CDN) and ``static/dashboard.js``, from JSON embedded in the
page. Every template autoescapes; the only unescaped output is that JSON, written by
:func:`~shipyard.ui.rendering.script_json`, which escapes ``<``, ``>`` and ``&`` so no
value can close its ``<script>`` tag.

Errors never reach the visitor as a traceback (:mod:`shipyard.ui.answers`): a
:class:`~shipyard.errors.ShipyardError` is its own status with its message and hint, a
missing or refused token is a redirect to ``/login`` (or a 401 JSON answer for a
script), and anything unexpected is logged and answered with a page that says only that
it failed. Who may look and act: :mod:`shipyard.ui.auth`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.access import Principal
from shipyard.errors import ShipyardError
from shipyard.ui.auth import LOOPBACK_HOSTS, DashboardAuth
from shipyard.ui.rendering import Dashboard, templates

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.project import Project

__all__ = ["dashboard_app", "plotly_js"]

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
_OWN_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_LONG_CACHE = "public, max-age=31536000, immutable"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on the
    # dashboard's own forms, and the forms check their Origin.
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        b"form-action 'self'; base-uri 'none'",
    ),
]


class _SecurityHeaders:
    """Adds the headers every answer carries: no framing, no sniffing, a strict CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name for name, _ in headers}
                headers += [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def plotly_js() -> Path:
    """Where the installed ``plotly`` package keeps its bundled ``plotly.min.js``."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise HTTPException(404, "The plotly package is not installed: pip install plotly.")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


async def _plotly(_request: Request) -> Response:
    return FileResponse(
        plotly_js(), media_type="text/javascript", headers={"cache-control": _LONG_CACHE}
    )


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    media = _OWN_STATIC.get(name)
    if media is None:
        raise HTTPException(404, f"There is no static file {name!r}.")
    return FileResponse(STATIC / name, media_type=media, headers={"cache-control": "no-cache"})


async def _healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def dashboard_app(
    config: Config,
    *,
    project: Project | None = None,
    local: Principal | None = None,
    token_ttl: float = 1.0,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The dashboard for the project of ``config``.

    ``project`` is what the pages read (built with a service principal when omitted, and
    closed when the app stops); who *acts* is always the visitor's token. ``local`` is the
    local viewer (see :mod:`shipyard.ui.auth`): when given, the app also refuses any
    ``Host`` but a loopback name (and ``allowed_hosts``). ``token_ttl``: how long a
    token's check is believed, in seconds.
    """
    from shipyard.project import Project
    from shipyard.serving.auth import BearerTokens
    from shipyard.ui import answers, pages

    own = project is None
    reading = project if project is not None else Project(config, Principal.service("dashboard"))
    tokens = BearerTokens.of_store(lambda: reading.store, ttl=token_ttl)
    dashboard = Dashboard(config, reading, DashboardAuth(tokens, local=local), templates())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.dashboard = dashboard
        try:
            yield
        finally:
            if own:
                reading.close()

    routes = [
        Route("/healthz", _healthz),
        Route("/static/plotly.min.js", _plotly),
        Route("/static/{name}", _static),
        *pages.ROUTES,
    ]
    middleware = [Middleware(_SecurityHeaders)]
    if local is not None:
        hosts = [*LOOPBACK_HOSTS, *(allowed_hosts or [])]
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ShipyardError: answers.shipyard_error,
            HTTPException: answers.http_error,
            Exception: answers.unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard  # also without a lifespan (a bare ASGI call)
    return app
