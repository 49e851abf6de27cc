"""The ``model`` section: what the model is and who owns it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["ModelSettings"]


class ModelSettings(Section):
    """What the model is and who owns it; shown on every model card."""

    name: str = Field("model", description="Registered model name in the registry.")
    purpose: str = Field(
        "", description="What the model is for, in one or two sentences (model card)."
    )
    owner: str = Field("", description="Team or person who answers for the model.")
    team: str = Field("", description="Team that runs the model (an alert label next to owner).")
    task: Literal["classification", "regression", "llm"] = Field(
        "classification",
        description="Learning task: classification or regression (model card, evaluation), "
        "or llm: versions are a provider, model, prompt version and parameters, served by "
        "the OpenAI-compatible gateway (the llm section).",
    )
