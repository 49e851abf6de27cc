"""What each CT gate records: typed evidence whose ``to_dict`` is the JSON stored with the cycle.

The gates before traffic record :class:`ValidationEvidence` (or :class:`DataUnreadable`),
:class:`RetrainEvidence` (or :class:`TrainingFailure`) and :class:`ScorecardEvidence`;
the roll-out's gates record :class:`StepOutcome` (shadow, canary) and
:class:`PromotionOutcome`. Each reads as its JSON form too (``evidence["rows"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.pipelines.gate_registry import GateEvidence

__all__ = [
    "DataUnreadable",
    "GoldenSetVerdict",
    "ProductionComparison",
    "PromotionOutcome",
    "RetrainEvidence",
    "ScorecardEvidence",
    "StepOutcome",
    "TrainingFailure",
    "ValidationEvidence",
]


@dataclass(frozen=True)
class DataUnreadable(GateEvidence):
    """The new data could not be read: as much a failed validation as a bad value."""

    error: str
    hint: str | None


@dataclass(frozen=True)
class ValidationEvidence(GateEvidence):
    """The training window checked against ``train.schema``: every failure (up to 50).

    Without a schema, ``note`` says so and there are no failures.
    """

    source_digest: str
    source_rows: int
    window_rows: int
    note: str | None = None
    failures: tuple[dict[str, Any], ...] | None = None
    failure_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The window's digest and sizes, then the note or the failures."""
        data: dict[str, Any] = {
            "source_digest": self.source_digest,
            "source_rows": self.source_rows,
            "window_rows": self.window_rows,
        }
        if self.note is not None:
            data["note"] = self.note
        if self.failures is not None:
            data["failures"] = list(self.failures)
            data["failure_count"] = self.failure_count
        return data


@dataclass(frozen=True)
class TrainingFailure(GateEvidence):
    """The project's train function raised: nothing was registered."""

    error: str
    hint: str | None
    rows: int


@dataclass(frozen=True)
class RetrainEvidence(GateEvidence):
    """The version the retrain registered, on how many rows, with its metrics."""

    version: str
    run_id: str
    rows: int
    data_digest: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class GoldenSetVerdict(GateEvidence):
    """The candidate's stored scorecard verdict on the golden set."""

    passed: bool
    failing: tuple[str, ...]
    digest: str
    champion: str | None
    report: str | None


@dataclass(frozen=True)
class ProductionComparison(GateEvidence):
    """Candidate against champion on the newest labelled live rows, or why not compared.

    Compared: ``rows``, ``metric``, both values, ``worse_by`` (positive: the candidate
    is worse), ``max_regression`` and ``passed``. Not compared: ``note`` says why (with
    ``rows`` when too few were found).
    """

    rows: int | None = None
    metric: str | None = None
    candidate: float | None = None
    champion: float | None = None
    worse_by: float | None = None
    max_regression: float | None = None
    passed: bool | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, in order."""
        return {key: value for key, value in super().to_dict().items() if value is not None}

    @property
    def blocks(self) -> bool:
        """Whether the comparison fails the candidate (one not compared never does)."""
        return self.passed is False


@dataclass(frozen=True)
class ScorecardEvidence(GateEvidence):
    """The golden-set verdict, then the comparison on production rows."""

    golden: GoldenSetVerdict
    production: ProductionComparison

    def to_dict(self) -> dict[str, Any]:
        """Each part as its own JSON."""
        return {"golden": self.golden.to_dict(), "production": self.production.to_dict()}


@dataclass(frozen=True)
class StepOutcome(GateEvidence):
    """A roll-out step as the shadow or canary gate saw it: the history entry's evidence."""

    rollout: int
    step: int
    state: str
    reason: str | None
    evidence: dict[str, Any] | None


@dataclass(frozen=True)
class PromotionOutcome(GateEvidence):
    """The candidate became champion, or the roll-out ended without it (and why)."""

    champion: str | None = None
    rollout: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"champion": …}`` once promoted, else the roll-out's state and reason."""
        if self.champion is not None:
            return {"champion": self.champion}
        return {"rollout": self.rollout, "reason": self.reason}
