"""The agent's pass over running A/B experiments (filled in by issue 16's work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["tick_experiments"]


def tick_experiments(project: Project) -> list[str]:
    """Decide every running experiment on its evidence so far; what was done."""
    return []
