"""``shipyard.connect``: a ``Project`` for Python code, with the same identity as the CLI.

    from shipyard.connect import connect
    from shipyard.training import train

    project = connect("shipyard.yaml")   # SHIPYARD_TOKEN, else your `shipyard login`
    train(project)

The token comes from ``SHIPYARD_TOKEN``, else from the credentials file ``shipyard
login`` wrote for this project's database. Without one, the OS user acts on a local
SQLite project; a shared database refuses (``Unauthenticated``). Code that builds a
``Project`` with its own ``Principal`` holds the database itself, and is trusted as such.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from shipyard.cli.state import resolve_principal
from shipyard.config import load_config
from shipyard.project import Project

__all__ = ["connect"]


def connect(
    config_path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Project:
    """The project of ``config_path`` (default ./shipyard.yaml), acting as its token's principal."""
    environ = os.environ if environ is None else environ
    config = load_config(None if config_path is None else Path(config_path), environ=environ)
    return Project(config, resolve_principal(config, environ))
