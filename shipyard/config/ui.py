"""The ``ui`` section: where ``shipyard ui`` listens and what its charts show by default."""

from __future__ import annotations

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["UiSettings"]


class UiSettings(Section):
    """The web dashboard (``shipyard ui``, ``shipyard serve --ui``)."""

    host: str = Field("127.0.0.1", description="Address the dashboard listens on.")
    port: int = Field(8600, ge=0, le=65535, description="Port of ``shipyard ui`` (0: any).")
    default_range: str = Field(
        "24h",
        pattern=r"^\d+[mhd]$",
        description="Time range the charts show when the URL names none (e.g. 6h, 7d).",
    )
