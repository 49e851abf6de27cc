"""What one model page's charts share: the range, its buckets, and each source read once.

A :class:`ChartContext` reads lazily and keeps what it read, so the three log charts
share one DuckDB pass, the four monitoring charts one query of stored runs, and every
annotated chart one query of events.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from shipyard.logs.root import project_log_root
from shipyard.store.events import Event
from shipyard.ui.data import control
from shipyard.ui.data.annotations import annotations_of
from shipyard.ui.data.buckets import Grid, grid_for
from shipyard.ui.data.log_stats import _EPOCH, BucketStats, bucket_stats
from shipyard.ui.data.ranges import TimeRange
from shipyard.ui.views import Annotation

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = ["ChartContext"]


class ChartContext:
    """One model over one range: the series functions' only argument."""

    def __init__(self, project: Project, model: str, window: TimeRange) -> None:
        self.project = project
        self.model = model
        self.window = window
        self.grid: Grid = grid_for(window)

    @property
    def store(self) -> Store:
        """The project's control-plane store."""
        return self.project.store

    @cached_property
    def moves(self) -> list[tuple[datetime, str | None]]:
        """The champion's recorded moves, oldest first; the registry's alias as one move
        from the start of time when none was recorded (a version promoted before Shipyard)."""
        moves = control.champion_moves(self.store, self.model)
        if not moves:
            current = control.current_alias(self.store, self.model, "champion")
            if current is not None:
                moves = [(_EPOCH, current)]
        return moves

    def champion_at(self, moment: datetime) -> str | None:
        """The version that was champion at ``moment``."""
        champion = None
        for at, version in self.moves:
            if at > moment:
                break
            champion = version
        return champion

    def arm_of(self, version: str | None, moment: datetime) -> str | None:
        """``version``'s live arm at ``moment``: champion or challenger (None: unknown)."""
        if version is None:
            return None
        return "champion" if self.champion_at(moment) == version else "challenger"

    @cached_property
    def log(self) -> BucketStats:
        """The prediction log in range, by bucket, version and arm (one DuckDB pass)."""
        root = project_log_root(self.project.config)
        return bucket_stats(root, self.model, self.grid, self.moves)

    @cached_property
    def runs(self) -> list[control.StoredRun]:
        """The stored monitor runs in range, oldest first."""
        return control.monitor_runs(self.store, self.model, self.window.since, self.window.until)

    @cached_property
    def events(self) -> list[Event]:
        """The audited events drawn as annotations, in range, oldest first."""
        return control.model_events(self.store, self.model, self.window.since, self.window.until)

    @cached_property
    def annotations(self) -> list[Annotation]:
        """:attr:`events` as chart annotations, each with its arm where known."""
        return annotations_of(self.events, self.arm_of)
