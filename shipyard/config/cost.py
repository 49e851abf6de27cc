"""The ``cost`` section: what compute costs, so the dashboard can price predictions and training."""

from __future__ import annotations

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["CostSettings"]


class CostSettings(Section):
    """Prices for compute: serving cost per prediction and training cost per version."""

    currency: str = Field(
        "USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code the prices are in."
    )
    cpu_hour: float = Field(
        0.04,
        ge=0,
        description="Price of one CPU-hour (a vCPU busy for an hour). The default is about "
        "an on-demand cloud vCPU; set your own. Serving cost is the server's CPU-seconds × "
        "this price; training cost the training process's.",
    )
    gpu_hour: float = Field(
        0.0, ge=0, description="Price of one GPU-hour; 0 leaves GPUs out of the cost."
    )
    gpus_per_server: int = Field(
        0, ge=0, description="GPUs each server holds (priced by wall-clock time)."
    )
    gpus_per_training: int = Field(
        0, ge=0, description="GPUs a training run holds (priced by its wall-clock time)."
    )
    flush_seconds: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="How often each serving worker writes its usage (requests, CPU and GPU "
        "seconds, cost per model, version and role) to the store for the dashboard.",
    )
