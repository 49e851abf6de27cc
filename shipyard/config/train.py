"""The ``train`` section: where ``shipyard train`` finds its function and data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["TrainSettings"]


class TrainSettings(Section):
    """How ``shipyard train`` finds the training function and its data."""

    entrypoint: str | None = Field(
        None,
        description='Training function as "module:function", called as train(ctx) -> model.',
    )
    data: Path | None = Field(
        None, description="Training data: a CSV or Parquet file, or a folder of them."
    )
    validation_data: Path | None = Field(
        None, description="Optional validation data, passed to train(ctx) as ctx.validation."
    )
    target: str | None = Field(
        None, description="Label column; the model's inputs are every other column."
    )
    data_schema: Path | None = Field(
        None,
        alias="schema",
        description="Pandera schema (YAML) the data must satisfy before training.",
    )
    seed: int = Field(42, description="Random seed handed to train(ctx) as ctx.seed.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Hyper-parameters handed to train(ctx) as ctx.params (-p key=value overrides).",
    )
    experiment: str | None = Field(
        None, description="MLflow experiment name; defaults to the project name."
    )
