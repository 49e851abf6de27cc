"""The model page's x axis: the range asked for, or the extent of what the charts hold.

Without an explicit range the page shows the default window (24h), and a project whose
data covers two minutes (``shipyard demo``) was squeezed against the right edge of every
chart. :func:`x_extent` fits the axis to the data and annotations inside the window, with a
small margin; a range the visitor asked for (``?range``, ``since`` or ``until``) stays exactly
as asked. Every chart of a page shares the one extent, so their times line up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from shipyard.moments import as_utc
from shipyard.ui.data.ranges import TimeRange
from shipyard.ui.views import Chart

__all__ = ["MARGIN", "MIN_MARGIN", "x_extent"]

MARGIN = 0.05
"""The margin on each side, as a share of the data's span."""
MIN_MARGIN = timedelta(seconds=30)
"""The least margin on each side (a single point still gets room around it)."""

_SYNTHETIC = {"traffic"}  # steps held to the window's edges; their changes are annotations
_ZERO_IS_EMPTY = {"throughput"}  # a bucket without requests reads 0, not "no data"


def _times(chart: Chart) -> Iterator[str]:
    """The times in ``chart`` that hold a value, and its annotations' times."""
    yield from (note.time for note in chart.annotations)
    if chart.panel.id in _SYNTHETIC:
        return
    empty = 0.0 if chart.panel.id in _ZERO_IS_EMPTY else None
    for series in chart.series:
        yield from (x for x, y in zip(series.x, series.y, strict=False) if y not in (None, empty))
    if chart.heatmap is not None:
        for j, x in enumerate(chart.heatmap.x):
            if any(j < len(row) and row[j] is not None for row in chart.heatmap.z):
                yield x


def _moment(text: str) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, AttributeError):
        return None


def x_extent(
    charts: Iterable[Chart],
    window: TimeRange,
    *,
    explicit: bool,
    step: timedelta = timedelta(0),
) -> tuple[datetime, datetime]:
    """The x axis every chart of the page shows.

    ``explicit``: the visitor named the range, which is then shown exactly. Otherwise the
    earliest to the latest time with data or an annotation inside ``window`` (``step``
    after the latest: a bucket's values are drawn at its start and cover ``step`` from
    it), widened by :data:`MARGIN` of the span (at least :data:`MIN_MARGIN`) on each side
    and kept inside the window; the whole window when nothing falls inside it.
    """
    since, until = window.since, window.until
    if explicit:
        return since, until
    found = [
        moment
        for chart in charts
        for text in _times(chart)
        if (moment := _moment(text)) is not None and since <= moment <= until
    ]
    if not found:
        return since, until
    first, last = min(found), max(found) + step
    margin = max((last - first) * MARGIN, MIN_MARGIN)
    return max(since, first - margin), min(until, last + margin)
