"""Parameter overrides given on the command line as ``-p key=value``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from shipyard.errors import ConfigError

__all__ = ["flatten", "parse_overrides"]


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["depth=3", "lr=0.1", "name=x"]`` → ``{"depth": 3, "lr": 0.1, "name": "x"}``."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"Parameter override {pair!r} is not key=value.",
                hint="Write -p max_depth=5 (values are read as YAML: numbers, true/false, lists).",
            )
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        parsed[key.strip()] = value
    return parsed


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as dotted keys with string values, the way MLflow stores them."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
