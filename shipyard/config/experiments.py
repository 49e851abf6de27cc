"""The ``experiments`` section: A/B tests that compare arms and declare a winner."""

from __future__ import annotations

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["ExperimentSettings"]


class ExperimentSettings(Section):
    """Defaults of ``shipyard experiment start``: error rates, power and what follows."""

    alpha: float = Field(
        0.05, gt=0, lt=0.5, description="False-positive rate: declaring a winner when arms tie."
    )
    power: float = Field(
        0.8,
        gt=0.5,
        lt=1,
        description="Chance of declaring the winner when the true effect is min_effect; "
        "below it, after enough samples, the experiment declares no difference.",
    )
    min_effect: float | None = Field(
        None,
        gt=0,
        description="Smallest difference worth acting on, in the metric's units; "
        "null: the experiment runs until a winner (no 'no difference' verdict).",
    )
    min_samples: int = Field(
        100,
        ge=2,
        description="Observations per arm before the test may decide anything (the normal "
        "approximation needs them).",
    )
    promote_winner: bool = Field(
        True,
        description="Send the winner through the normal gates to promotion; "
        "false: stop at the decision and let a person promote.",
    )
