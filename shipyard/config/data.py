"""The ``data`` section: how dataset snapshots treat their sources."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["DataSettings"]


class DataSettings(Section):
    """How training data is read and recorded."""

    dvc: Literal["warn", "strict"] = Field(
        "warn",
        description="A DVC pointer whose md5 no longer matches its file: warn, and record "
        "the file's own digest; strict: refuse to train on it.",
    )
