"""The base every settings section derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A group of settings: immutable, unknown keys rejected, fields settable by alias."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
