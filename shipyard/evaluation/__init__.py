"""Evaluation: metrics, slices, calibration, fairness, latency and size, against a scorecard.

    loaded = load_for_evaluation("models:/churn/3")
    candidate = measure(loaded, golden, target="churned", scorecard=card, task="classification")
    result = compare(card, candidate, champion)        # champion: Measurements | None
    console.print(result.render())                     # criterion / candidate / champion …
    write_report(Path("report.html"), title="churn/3", result=result,
                 candidate=candidate, champion=champion)

The scorecard itself is declared in :mod:`shipyard.config` (:class:`~shipyard.config.Scorecard`).
See ``docs/evaluation.md``.
"""

from shipyard.evaluation.calibration import (
    ReliabilityCurve,
    expected_calibration_error,
    reliability_curve,
)
from shipyard.evaluation.latency import LatencyMeasurement
from shipyard.evaluation.measure import Measurements, measure
from shipyard.evaluation.metrics import (
    LOWER_IS_BETTER,
    METRICS,
    Metric,
    Task,
    compute_metric,
    metric_names,
)
from shipyard.evaluation.predictions import Predictions, predict
from shipyard.evaluation.report import write_report
from shipyard.evaluation.scorecard import CriterionResult, ScorecardResult, compare
from shipyard.evaluation.slices import FairnessMeasurement, SliceMeasurement
from shipyard.models.loading import LoadedModel, load_for_evaluation

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "CriterionResult",
    "FairnessMeasurement",
    "LatencyMeasurement",
    "LoadedModel",
    "Measurements",
    "Metric",
    "Predictions",
    "ReliabilityCurve",
    "ScorecardResult",
    "SliceMeasurement",
    "Task",
    "compare",
    "compute_metric",
    "expected_calibration_error",
    "load_for_evaluation",
    "measure",
    "metric_names",
    "predict",
    "reliability_curve",
    "write_report",
]
