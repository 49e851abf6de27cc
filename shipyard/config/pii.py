"""The ``pii`` section: which input columns are personal data, and how the logs keep them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeInt

from shipyard.config._section import Section

__all__ = ["PII_TAGS", "Masking", "PiiSettings", "PiiTag"]

PiiTag = Literal["pii", "quasi_identifier", "sensitive"]
Masking = Literal["hash", "drop"]

PII_TAGS: tuple[str, ...] = ("pii", "quasi_identifier", "sensitive")
"""The tags a column may carry: direct identifiers, quasi-identifiers, sensitive attributes."""


class PiiSettings(Section):
    """Tagged input columns are masked in the prediction log; raw values only on request."""

    columns: dict[str, PiiTag] = Field(
        default_factory=dict,
        description="Input columns that hold personal data, with their tag: pii (identifies "
        "a person: email, name), quasi_identifier (identifies in combination: zip, birth "
        "date) or sensitive (health, religion...). E.g. {email: pii, zip: quasi_identifier}.",
    )
    policy: Masking = Field(
        "hash",
        description="How the prediction log keeps tagged columns: hash (HMAC-SHA256 with the "
        "project's secret, so equal values still join and category drift still works) or "
        "drop (the column is not written).",
    )
    tag_policy: dict[PiiTag, Masking] = Field(
        default_factory=dict,
        description="Per-tag exceptions to policy, e.g. {sensitive: drop}.",
    )
    retain_raw: bool = Field(
        False,
        description="Also keep the raw values of tagged columns, in raw_store only (readable "
        "with the pii:read scope).",
    )
    raw_store: Path = Field(
        Path(".shipyard/pii"),
        description="Folder (mode 0700) of the raw values kept when retain_raw is true; "
        "keep it outside serving.logs.",
    )
    secret: Path = Field(
        Path(".shipyard/secrets/pii.key"),
        description="The hashing secret (mode 0600), created on first use. Whoever holds it "
        "can test guesses against the hashes: never share it with the logs.",
    )
    retention_days: dict[PiiTag, NonNegativeInt] = Field(
        default_factory=dict,
        description="Days each tag's values are kept, raw and hashed, e.g. {pii: 30, "
        "quasi_identifier: 180}; enforced by `shipyard logs prune` and the agent. A tag "
        "left out is kept as long as the log.",
    )
