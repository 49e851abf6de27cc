"""Time buckets for a chart: about 100–200 of a round width over the chosen range.

Buckets start at the range's ``since``: bucket ``i`` is ``[since + i·step, since + (i+1)·step)``,
so every bucket is whole except perhaps the last, which ends at ``until``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from shipyard.ui.data.ranges import TimeRange

__all__ = ["MAX_BUCKETS", "Grid", "grid_for"]

MAX_BUCKETS = 200
_ROUND = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_DAY = 86400


@dataclass(frozen=True)
class Grid:
    """The buckets of one range: ``count`` buckets of ``step`` seconds from ``since``."""

    since: datetime
    until: datetime
    step: int
    count: int

    def start(self, index: int) -> datetime:
        """When bucket ``index`` begins."""
        return self.since + timedelta(seconds=index * self.step)

    def seconds(self, index: int) -> float:
        """How long bucket ``index`` is: ``step``, except a shorter last bucket."""
        end = min(self.start(index + 1), self.until)
        return (end - self.start(index)).total_seconds()

    def labels(self) -> list[str]:
        """Every bucket's start as ISO 8601 UTC, the charts' x values."""
        return [self.start(i).isoformat() for i in range(self.count)]


def grid_for(window: TimeRange) -> Grid:
    """The smallest round step that cuts ``window`` into at most :data:`MAX_BUCKETS` buckets."""
    seconds = window.seconds
    steps = [*_ROUND, *(days * _DAY for days in (1, 2, 7, 14, 30))]
    step = next((s for s in steps if seconds / s <= MAX_BUCKETS), steps[-1])
    return Grid(window.since, window.until, step, max(1, math.ceil(seconds / step)))
