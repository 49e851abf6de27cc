"""The ``delivery`` section: roll-out step defaults and guardrail thresholds."""

from __future__ import annotations

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["DeliverySettings"]


class DeliverySettings(Section):
    """Roll-outs: step defaults and the guardrails the agent checks at every poll."""

    poll_seconds: float = Field(
        1.0, gt=0, description="How often the agent checks roll-outs, triggers and schedules."
    )
    step_seconds: float = Field(
        600.0, ge=0, description="Shortest time per roll-out step (rollout start --step-duration)."
    )
    min_requests: int = Field(
        500, ge=0, description="Fewest candidate requests before a step may pass."
    )
    min_samples: int = Field(
        100, ge=1, description="Fewest requests (or labels) per side before a guardrail can pass."
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="False-alarm rate of each always-valid guardrail test."
    )
    error_margin: float = Field(
        0.01, ge=0, description="Extra error share the candidate may have over the champion."
    )
    latency_margin: float = Field(
        0.25, ge=0, description="Extra mean latency allowed, as a share of the champion's."
    )
    p99_margin: float = Field(
        0.5, ge=0, description="Extra p99 latency allowed, as a share of the champion's p99."
    )
    max_prediction_drift: float = Field(
        0.2,
        ge=0,
        description="Largest prediction drift of candidate vs champion in a step "
        "(PSI of the predicted values).",
    )
    max_disagreement: float = Field(
        0.2, ge=0, le=1, description="Largest share of shadow predictions that differ from live."
    )
    quality_margin: float = Field(
        0.03,
        ge=0,
        description="Extra share of wrong labelled predictions the candidate may have "
        "(classifiers; once labels arrive).",
    )
