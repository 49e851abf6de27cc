"""The ``labels`` section: what a second label for the same request does."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["LabelSettings", "OnConflict"]

OnConflict = Literal["reject", "keep_first", "keep_last"]


class LabelSettings(Section):
    """Ground truth sent after the predictions (``POST /v1/feedback``, ``shipyard labels``)."""

    on_conflict: OnConflict = Field(
        "reject",
        description="A label for a request that already has one: reject refuses the whole "
        "batch (409 naming the request ids); keep_first ignores the new label and reports "
        "it; keep_last accepts it, keeps the old one in the log, and readers take the latest.",
    )
