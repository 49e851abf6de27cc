"""The ``promotion`` and ``signing`` sections: who may move aliases, and the keys that sign."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["PromotionSettings", "SigningSettings"]


class PromotionSettings(Section):
    """Rules for moving the champion and challenger aliases."""

    approval: Literal["none", "required"] = Field(
        "none", description="required: promotion to champion needs `shipyard approve` first."
    )
    allow_self_approval: bool = Field(
        False,
        description="Whether whoever trained or registered a version may approve it "
        "(refused on a shared database, where separation of duties is enforced).",
    )
    separate_promoter: bool = Field(
        False, description="true: whoever approved a version may not promote it."
    )


class SigningSettings(Section):
    """Ed25519 keys that sign model cards on promotion."""

    private_key: Path | None = Field(
        None,
        description="Private key file, kept outside the repository; default "
        "~/.shipyard/keys/<project>.pem.",
    )
    public_key: Path = Field(
        Path("shipyard.pub"), description="Public key file, committed with the project."
    )
