"""Window summaries stored per chunk, so a long window is recomputed without its rows."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.chunk_plan import SummaryPlan, as_plan
from shipyard.monitoring.chunks import WindowSummary, empty_summary, merge_summaries, summarize
from shipyard.monitoring.frames import FrameLike

__all__ = ["SummaryStore", "summarize_stored"]


class SummaryStore:
    """Window summaries stored as JSON files under a directory, one per chunk key.

    A chunk that never changes (a rolled Parquet log file, a closed hour) is summarised
    once; a later window over it merges the stored summaries instead of rereading rows.
    Files are named by the plan's digest and the key, so a new reference or method
    never picks up a summary made for another.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, plan: SummaryPlan, key: str) -> Path:
        """Where the summary of chunk ``key`` under ``plan`` is stored."""
        safe = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.directory / plan.digest / f"{safe}.json"

    def get(self, plan: SummaryPlan, key: str) -> WindowSummary | None:
        """The stored summary of chunk ``key``, or ``None``."""
        path = self.path(plan, key)
        if not path.is_file():
            return None
        return WindowSummary.from_json(path.read_bytes())

    def put(self, plan: SummaryPlan, key: str, summary: WindowSummary) -> Path:
        """Store ``summary`` for chunk ``key`` (atomically: a reader never sees half a file)."""
        path = self.path(plan, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(summary.to_json())
        os.replace(temporary, path)
        return path


def summarize_stored(
    fitted: SummaryPlan | DriftDetector | Iterable[DriftDetector],
    chunks: Sequence[tuple[str, Callable[[], FrameLike]]],
    store: SummaryStore,
) -> WindowSummary:
    """Summary of a window made of keyed chunks: stored summaries where they exist.

    ``chunks`` pairs each chunk's key with a function that reads its rows; it is called
    only for chunks without a stored summary, whose summary is then stored.
    """
    plan = as_plan(fitted)
    total = empty_summary(plan)
    for key, read in chunks:
        summary = store.get(plan, key)
        if summary is None:
            summary = summarize(plan, read())
            store.put(plan, key, summary)
        total = merge_summaries(total, summary)
    return total
