"""Alert routes: one ``send(alert)`` each, posting JSON over HTTP(S) with the standard library.

A route raises :class:`DeliveryError` when it cannot deliver (``retryable=False`` when
another attempt cannot help, e.g. a 400 for a malformed event); the caller retries and
records. ``${NAME}`` in a route's URL, routing key or header values is read from the
environment, so secrets stay out of ``shipyard.yaml``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from shipyard.config import AlertRoute
from shipyard.errors import ConfigError
from shipyard.levels import AlertLevel
from shipyard.monitoring.alerting.payloads import pagerduty_event, slack_message, webhook_body
from shipyard.monitoring.alerting.signals import Alert

__all__ = [
    "DeliveryError",
    "HTTPRoute",
    "PagerDutyRoute",
    "Route",
    "SlackRoute",
    "WebhookRoute",
    "routes_from_config",
]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RETRYABLE_STATUS = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A route could not deliver an alert; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Route(Protocol):
    """Somewhere alerts go. ``name`` appears in events, so it must not hold secrets."""

    name: str
    min_level: AlertLevel

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise (preferably :class:`DeliveryError`)."""
        ...


class HTTPRoute:
    """POSTs a JSON body built from the alert; subclasses say which body."""

    kind: ClassVar[str] = "http"

    def __init__(
        self,
        url: str,
        *,
        min_level: AlertLevel = "inspect",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            # The URL itself is not quoted: it may carry a token.
            raise ConfigError(
                f"{name or f'A {self.kind} alert route'}: the url is not an http(s) URL.",
                hint="Give each entry of monitoring.routes a url like https://hooks.slack.com/….",
            )
        self.url = url
        self.min_level = min_level
        self.headers = dict(headers or {})
        self.timeout = timeout
        # Webhook URLs are secrets (Slack's carry the token in the path): name by host.
        self.name = name or f"{self.kind} ({parsed.hostname})"

    def body(self, alert: Alert) -> dict[str, Any]:
        """The JSON this route posts for ``alert``."""
        raise NotImplementedError

    def send(self, alert: Alert) -> None:
        """POST the body; raise :class:`DeliveryError` unless the answer is 2xx."""
        post_json(self.url, self.body(alert), headers=self.headers, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, min_level={self.min_level!r})"


class WebhookRoute(HTTPRoute):
    """A generic JSON webhook: the body is :meth:`Alert.to_dict`."""

    kind = "webhook"

    def body(self, alert: Alert) -> dict[str, Any]:
        """:meth:`Alert.to_dict`."""
        return webhook_body(alert)


class SlackRoute(HTTPRoute):
    """A Slack incoming webhook (``text`` plus Block Kit ``blocks``)."""

    kind = "slack"

    def body(self, alert: Alert) -> dict[str, Any]:
        """A Slack message with a plain-text fallback and Block Kit blocks."""
        return slack_message(alert)


class PagerDutyRoute(HTTPRoute):
    """PagerDuty Events API v2: trigger on open and escalation, resolve on recovery."""

    kind = "pagerduty"

    def __init__(
        self,
        url: str,
        routing_key: str,
        *,
        min_level: AlertLevel = "inspect",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(url, min_level=min_level, headers=headers, timeout=timeout, name=name)
        self.routing_key = routing_key

    def body(self, alert: Alert) -> dict[str, Any]:
        """The Events API v2 event for ``alert``."""
        return pagerduty_event(alert, self.routing_key)


_KINDS: dict[str, type[HTTPRoute]] = {
    "webhook": WebhookRoute,
    "slack": SlackRoute,
    "pagerduty": PagerDutyRoute,
}


def routes_from_config(
    settings: Sequence[AlertRoute],
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> list[HTTPRoute]:
    """The routes ``monitoring.routes`` declares, with ``${NAME}`` read from ``environ``."""
    env = os.environ if environ is None else environ
    routes: list[HTTPRoute] = []
    for index, route in enumerate(settings):
        where = f"monitoring.routes[{index}]"
        url = _expand(route.url, env, f"{where}.url")
        headers = {
            key: _expand(value, env, f"{where}.headers.{key}")
            for key, value in route.headers.items()
        }
        host = urllib.parse.urlsplit(url).hostname
        common: dict[str, Any] = {
            "min_level": route.min_level,
            "headers": headers,
            "timeout": timeout,
            "name": f"{where} {route.kind} ({host})",
        }
        if route.kind == "pagerduty":
            if not route.routing_key:
                raise ConfigError(
                    f"{where} is a PagerDuty route without a routing_key.",
                    hint="Set routing_key to the Events API v2 integration key, e.g. "
                    "routing_key: ${PAGERDUTY_ROUTING_KEY}.",
                )
            key = _expand(route.routing_key, env, f"{where}.routing_key")
            routes.append(PagerDutyRoute(url, key, **common))
        else:
            routes.append(_KINDS[route.kind](url, **common))
    return routes


def post_json(
    url: str, body: Mapping[str, Any], *, headers: Mapping[str, str], timeout: float
) -> None:
    """POST ``body`` as JSON; a non-2xx answer or a network failure raises DeliveryError."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body, allow_nan=False).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "shipyard", **headers},
    )
    try:
        opener = urllib.request.build_opener(_NoRedirect)  # reads proxy settings per call
        with opener.open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
        retryable = exc.code >= 500 or exc.code in _RETRYABLE_STATUS
        message = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
        raise DeliveryError(message, retryable=retryable) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeliveryError(f"{type(exc).__name__}: {reason}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a bodiless GET; a 3xx is a failure here.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _expand(value: str, environ: Mapping[str, str], where: str) -> str:
    missing = [name for name in _VARIABLE.findall(value) if name not in environ]
    if missing:
        raise ConfigError(
            f"{where} reads ${{{missing[0]}}} from the environment, but it is not set.",
            hint=f"Export {missing[0]} before starting the monitor, or write the value in "
            "shipyard.yaml.",
        )
    return _VARIABLE.sub(lambda match: environ[match.group(1)], value)
