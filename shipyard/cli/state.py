"""Global CLI options, and the ``Project`` they resolve to, built once per command."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import Config, load_config
from shipyard.project import Principal, Project

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["CliState", "resolve_principal"]


def resolve_principal(environ: Mapping[str, str] | None = None) -> Principal:
    """Who runs this command: ``SHIPYARD_USER``, else the operating-system user.

    The one place identity is read; everything below the CLI asks the ``Project``.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get("SHIPYARD_USER")
    if explicit:
        return Principal(explicit, "SHIPYARD_USER")
    try:
        return Principal(getpass.getuser(), "os-user")
    except (KeyError, OSError):
        return Principal("unknown", "os-user")


@dataclass
class CliState:
    """What the root command's flags said; the project is resolved on first use."""

    config_path: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _config: Config | None = None
    _project: Project | None = None

    def config(self, *, require_file: bool = True) -> Config:
        """The resolved configuration (defaults < file < environment < flags)."""
        if self._config is None:
            self._config = load_config(
                self.config_path, overrides=self.overrides, require_file=require_file
            )
        return self._config

    def project(self) -> Project:
        """The project of the resolved configuration, acting as this command's principal."""
        if self._project is None:
            self._project = Project(self.config(), resolve_principal())
        return self._project

    def store(self) -> Store:
        """The control-plane store of the project."""
        return self.project().store
