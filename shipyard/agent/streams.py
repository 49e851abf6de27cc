"""The agent's feed of the sequential change detectors (filled in by issue 16's work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["StreamWatch"]


class StreamWatch:
    """Feeds each detector the rows and labels logged since its stored cursor."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def tick(self) -> list[str]:
        """One pass: what the detectors raised."""
        return []
