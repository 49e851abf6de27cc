"""The ``evaluation`` section: the golden set, the scorecard and its criteria."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from shipyard.config._section import Section

__all__ = [
    "CalibrationCriterion",
    "EvaluationSettings",
    "FairnessCriterion",
    "LatencyCriterion",
    "MetricCriterion",
    "Scorecard",
    "SliceSpec",
]


class SliceSpec(Section):
    """Rows a criterion applies to: ``column == value``, or a pandas query expression."""

    column: str | None = Field(None, description="Column to select on.")
    value: Any = Field(None, description="Value the column must equal.")
    query: str | None = Field(None, description='pandas query, e.g. segment == "smb".')

    @model_validator(mode="after")
    def _one_form(self) -> SliceSpec:
        if (self.query is None) == (self.column is None):
            raise ValueError("a slice needs either query or column (with value), not both")
        return self

    @property
    def label(self) -> str:
        """How the slice is shown in tables."""
        return self.query if self.query is not None else f"{self.column} == {self.value!r}"


class MetricCriterion(Section):
    """A metric, optionally on a slice, with bounds and a required margin over the champion."""

    metric: str = Field(description="Metric name, e.g. roc_auc, recall, rmse.")
    slice: SliceSpec | None = Field(None, description="Evaluate on these rows only.")
    min: float | None = Field(None, description="Floor: the candidate's value must be ≥ this.")
    max: float | None = Field(None, description="Ceiling: the candidate's value must be ≤ this.")
    min_margin: float | None = Field(
        None,
        description="Required improvement over the champion (in the metric's better "
        "direction); skipped when there is no champion.",
    )


class CalibrationCriterion(Section):
    """Expected calibration error ceiling (classifiers with probabilities)."""

    max_ece: float = Field(description="The candidate's ECE must be ≤ this.")
    bins: int = Field(10, ge=2, description="Equal-width probability bins.")


class FairnessCriterion(Section):
    """Largest allowed gap of a metric across the values of a protected column."""

    metric: str = Field(description="Metric compared across groups, e.g. recall.")
    column: str = Field(description="Protected column whose values form the groups.")
    max_gap: float = Field(description="max(group metric) − min(group metric) must be ≤ this.")
    min_rows: int = Field(20, ge=1, description="Groups with fewer rows are ignored.")


class LatencyCriterion(Section):
    """In-process predict latency on golden rows, and model load time."""

    batch_size: int = Field(64, ge=1, description="The larger batch size measured.")
    repeats: int = Field(200, ge=10, description="Timed predict calls per batch size.")
    max_p50_ms: float | None = Field(None, description="Ceiling on p50 at batch size 1.")
    max_p95_ms: float | None = Field(None, description="Ceiling on p95 at batch size 1.")
    max_p99_ms: float | None = Field(None, description="Ceiling on p99 at batch size 1.")
    max_batch_p99_ms: float | None = Field(None, description="Ceiling on p99 at batch_size rows.")
    max_load_seconds: float | None = Field(None, description="Ceiling on model load time.")


class Scorecard(Section):
    """Every criterion a version must pass before promotion."""

    primary: MetricCriterion | None = Field(
        None, description="The primary metric: floor and margin over the champion."
    )
    metrics: list[MetricCriterion] = Field(
        default_factory=list, description="Secondary metrics, each optionally on a slice."
    )
    calibration: CalibrationCriterion | None = Field(None, description="ECE ceiling.")
    fairness: list[FairnessCriterion] = Field(
        default_factory=list, description="Metric gaps across protected groups."
    )
    latency: LatencyCriterion | None = Field(None, description="Predict latency and load time.")
    max_size_mb: float | None = Field(
        None, description="Model size on disk ceiling (MB, 1 MB = 1,000,000 bytes)."
    )


class EvaluationSettings(Section):
    """How ``shipyard evaluate`` scores a version before promotion."""

    golden: Path | None = Field(
        None, description="Golden set: frozen CSV/Parquet data every version is scored on."
    )
    scorecard: Scorecard | Path | None = Field(
        None, description="The scorecard, inline or as the path of a YAML file holding it."
    )
    reports: Path = Field(
        Path(".shipyard/reports"), description="Where HTML evaluation reports are written."
    )
