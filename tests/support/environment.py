"""The environment every test runs in, for fixtures wider than one test.

``tests/conftest.py`` cleans the environment per test (an autouse fixture), but a module-
or session-scoped fixture is set up before that fixture runs. ``clean_environment`` gives
such a fixture the same environment: no ``SHIPYARD_*`` variable of the developer's shell
(or of ``make test``), the OS user "tester", a credentials file of its own, no telemetry.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["clean_environment"]


def clean_environment(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Set, through ``monkeypatch``, what each test gets; credentials go under ``folder``."""
    for name in list(os.environ):
        if name.startswith("SHIPYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOGNAME", "tester")
    monkeypatch.setenv("SHIPYARD_SECURITY__CREDENTIALS", str(folder / "credentials.json"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
