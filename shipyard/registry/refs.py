"""Model references as users type them: ``NAME``, ``NAME/VERSION`` or ``NAME@ALIAS``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import NotFoundError

__all__ = ["ModelRef", "parse_ref"]

_REF = re.compile(r"^(?P<name>[^/@]+?)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_\-]+))?$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model, optionally pinned to a version or an alias."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}/{self.version}"
        if self.alias:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> ModelRef:
    """Parse ``NAME``, ``NAME/VERSION`` or ``NAME@ALIAS``."""
    match = _REF.match(text.strip())
    if not match:
        raise NotFoundError(
            f"{text!r} is not a model reference.",
            hint="Write NAME, NAME/VERSION (e.g. churn/3) or NAME@ALIAS (e.g. churn@champion).",
        )
    return ModelRef(match["name"], match["version"], match["alias"])
