"""Helpers shared by the tests: one place, so tests never import each other."""

from __future__ import annotations

from shipyard.config import Config
from shipyard.project import Principal, Project

__all__ = ["TESTER", "project_of"]

TESTER = "tester"  # the principal every test acts as unless it says otherwise


def project_of(config: Config, actor: str = TESTER) -> Project:
    """The project of ``config``, acting as ``actor`` (identified by the test itself)."""
    return Project(config, Principal(actor, "test"))
