"""The ``security`` section: tokens, credentials and the audit log's checkpoints."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Literal

from pydantic import Field, field_validator

from shipyard.config._section import Section

__all__ = ["SecuritySettings"]


class SecuritySettings(Section):
    """Who may act, and where the audit log's signed checkpoints are kept."""

    require_token: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: commands need a token when the database is shared (anything but "
        "a local SQLite file); on a laptop the OS user acts as admin. always / never: "
        "regardless of the database.",
    )
    token_days: int = Field(
        90, ge=1, le=3650, description="Lifetime of a new token unless --expires says otherwise."
    )
    credentials: Path | None = Field(
        None,
        description="The credentials file `shipyard login` writes (mode 0600); default "
        "~/.config/shipyard/credentials.json.",
    )
    checkpoints: str = Field(
        ".shipyard/audit",
        description="Folder or bucket URL the signed audit checkpoints are written to, "
        "outside the database; unset while artifact_root is a bucket: <artifact_root>/audit. "
        "Keep a copy where the database's writers cannot reach (another host, a write-once "
        "bucket).",
    )
    checkpoint_minutes: float = Field(
        60.0, gt=0, description="How often the agent writes a signed audit checkpoint."
    )

    @field_validator("checkpoints", mode="before")
    @classmethod
    def _checkpoints_path_as_text(cls, value: object) -> object:
        """A ``Path`` given in code is kept as its text."""
        return str(value) if isinstance(value, PurePath) else value
