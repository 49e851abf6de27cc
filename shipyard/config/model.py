"""The ``model`` section: what the model is and who owns it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.config._section import Section
from shipyard.errors import ConfigError

__all__ = ["ClassicalTask", "ModelSettings"]

ClassicalTask = Literal["classification", "regression"]


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

    @property
    def classical_task(self) -> ClassicalTask | None:
        """The learning task of a classical model; ``None`` for an LLM."""
        return None if self.task == "llm" else self.task

    def require_classical(self) -> ClassicalTask:
        """The classical learning task; a :class:`ConfigError` for an LLM model."""
        if self.task == "llm":
            raise ConfigError(
                f"{self.name} is an LLM model (model.task: llm): labelled metrics, "
                "scorecards on a golden set and prediction-log guardrails do not apply.",
                hint="Judge it with `shipyard llm evaluate`; see docs/llm.md.",
            )
        return self.task
