"""Secrets in a resolved configuration, hidden: what ``config show`` and runbooks print.

    hidden(config.model_dump(mode="json"))   # passwords in URLs, routing keys, header
                                             # values and a Slack webhook's path → ***

An ``${ENV_VAR}`` reference is shown as written: it names where the secret lives, not
the secret.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["HIDDEN", "hidden"]

HIDDEN = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)[^/\s@]+@")
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def hidden(value: Any) -> Any:
    """``value`` (a resolved configuration, or part of one) with its secrets as ``***``."""
    if isinstance(value, dict):
        shown = {key: hidden(item) for key, item in value.items()}
        if "routing_key" in shown and "kind" in shown:  # an alert route
            shown["routing_key"] = _secret(shown["routing_key"])
            headers = shown.get("headers") or {}
            shown["headers"] = {key: _secret(item) for key, item in headers.items()}
            if shown["kind"] == "slack" and isinstance(shown.get("url"), str):
                scheme, _, rest = shown["url"].partition("://")
                host = rest.split("/", 1)[0]
                shown["url"] = f"{scheme}://{host}/{HIDDEN}" if rest != host else shown["url"]
        return shown
    if isinstance(value, list):
        return [hidden(item) for item in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda found: f"{found['head']}{HIDDEN}@", value)
    return value


def _secret(value: Any) -> Any:
    """A secret's place-holder, unless it is empty or an ``${ENV_VAR}`` reference."""
    if not isinstance(value, str) or not value or _REFERENCE.match(value):
        return value
    return HIDDEN
