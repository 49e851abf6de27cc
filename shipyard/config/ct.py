"""The ``ct`` section: continuous training triggers, guards against noise, and gates."""

from __future__ import annotations

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["ContinuousTrainingSettings"]


class ContinuousTrainingSettings(Section):
    """Continuous training: what triggers a retrain, the guards against noise, the gates."""

    enabled: bool = Field(False, description="Let the agent retrain on triggers by itself.")
    on_drift: bool = Field(True, description="Retrain when monitoring raises retrain_requested.")
    schedule: str | None = Field(
        None, description='Cron schedule (UTC) for retraining, e.g. "0 3 * * 1".'
    )
    on_new_data: bool = Field(
        False, description="Retrain when train.data has a new snapshot digest."
    )
    data_check_seconds: float = Field(
        60.0, gt=0, description="How often the agent looks for new data at train.data."
    )
    cooldown_seconds: float = Field(
        3600.0, ge=0, description="Least time between the starts of two retrains."
    )
    min_new_rows: int = Field(
        0, ge=0, description="Fewest rows train.data must have gained since the champion trained."
    )
    rows_after_trigger: int = Field(
        0,
        ge=0,
        description="After a drift trigger, wait until train.data gained this many rows, so "
        "the retrain learns from data after the change (pair with window_rows).",
    )
    min_performance_loss: float | None = Field(
        0.02,
        ge=0,
        description="Skip a retrain when the champion's measured (or estimated) primary "
        "metric fell by less than this; null never skips.",
    )
    cost_per_error: float | None = Field(
        None,
        ge=0,
        description="Money (in cost.currency) one unit of the primary metric's loss costs per "
        "prediction: for accuracy, the cost of one wrong prediction. Set (or cost_kpi) to "
        "retrain only when the expected loss (performance drop × predictions since the "
        "champion took over × this) reaches the retraining cost.",
    )
    cost_kpi: str | None = Field(
        None,
        min_length=1,
        description="Name of a KPI in kpis whose value is money per prediction: its fall "
        "while the champion served replaces performance drop × cost_per_error.",
    )
    retrain_fixed_cost: float = Field(
        0.0,
        ge=0,
        description="Money (in cost.currency) a retrain costs besides compute: people's "
        "review time, approvals. Added to the last retrain's compute × cost.cpu_hour.",
    )
    window_rows: int | None = Field(
        None, ge=1, description="Retrain on the newest N rows of train.data; null: all of it."
    )
    validation_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="With window_rows, the newest share of the window held out for validation.",
    )
    recent_labelled: int = Field(
        1000,
        ge=0,
        description="Labelled production rows (newest) the candidate and champion are "
        "scored on; 0 skips that comparison.",
    )
    max_regression: float = Field(
        0.0,
        ge=0,
        description="How much worse than the champion the candidate's primary metric may "
        "be on recent labelled production data.",
    )
    step_seconds: float | None = Field(
        None,
        ge=0,
        description="Shortest time per roll-out step (shadow and canary); "
        "null: delivery.step_seconds.",
    )
    min_requests: int | None = Field(
        None, ge=0, description="Fewest candidate requests per step; null: delivery.min_requests."
    )
    canary_steps: list[float] = Field(
        default_factory=lambda: [10.0, 50.0, 100.0],
        description="Canary traffic percentages after the shadow step.",
    )

    @property
    def cost_guard(self) -> bool:
        """Whether retraining is weighed against the cost of errors (cost_per_error or cost_kpi)."""
        return self.cost_per_error is not None or self.cost_kpi is not None
