"""Monitoring: drift of the current window against the training reference.

    reference = Reference.from_frame(train)            # once, at training time
    store(reference.to_json())
    detector = AutoDriftDetector().fit(reference)      # Evidently 0.7's default tests
    drift = detector.score(window)                     # DatasetDrift
    drift.drifted, drift.share, drift["age"].p_value

    psi = PSIDetector().fit(reference).score(window)   # bands: inspect / retrain / pause
    psi["plan"].band

Detectors follow scikit-learn's shape: settings in ``__init__``, ``fit(reference)``
returns the detector, learned state ends in ``_``, ``score(current)`` returns plain
frozen dataclasses. ``detector("auto")`` builds one by method name;
``load_detector(d.to_dict())`` restores a fitted one.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.base import DriftDetector, ThresholdDetector
from shipyard.monitoring.detectors import (
    ChiSquareDetector,
    KSDetector,
    WassersteinDetector,
    ZTestDetector,
)
from shipyard.monitoring.evidently_auto import AutoDriftDetector, choose_test
from shipyard.monitoring.frames import EvidentlyKind, FrameLike, evidently_kind
from shipyard.monitoring.histogram_detectors import (
    Binning,
    HistogramDetector,
    JensenShannonDetector,
    KLDetector,
    PSIDetector,
)
from shipyard.monitoring.methods import DETECTORS, Method, detector, load_detector
from shipyard.monitoring.prediction_drift import PredictionDriftBand, PredictionDriftResult
from shipyard.monitoring.reference import ColumnReference, Reference
from shipyard.monitoring.results import (
    KL_BANDS,
    PSI_BANDS,
    Band,
    Bands,
    DatasetDrift,
    DriftResult,
    Kind,
)
from shipyard.monitoring.statistics import (
    chi_square,
    fill_empty_bins,
    jensen_shannon_distance,
    kl_divergence,
    ks_two_sample,
    psi,
    two_proportion_z,
    wasserstein_distance,
    wasserstein_distance_norm,
)

if TYPE_CHECKING:
    from shipyard.monitoring.calibrate import calibrate_bands
    from shipyard.monitoring.calibrated_bands import calibrated_bands, window_bands
    from shipyard.monitoring.chunk_plan import SummaryPlan
    from shipyard.monitoring.chunk_scores import score_summary
    from shipyard.monitoring.chunk_store import SummaryStore
    from shipyard.monitoring.chunks import WindowSummary, merge_summaries, summarize_batches
    from shipyard.monitoring.cost import (
        CostSummary,
        ServingCost,
        TrainingCosts,
        cost_summary,
        serving_cost,
        training_cost,
    )
    from shipyard.monitoring.dataset_drift import DatasetVerdict, dataset_verdict
    from shipyard.monitoring.estimation import CBPE, Estimate
    from shipyard.monitoring.kpis import Correlation, KpiPoint, KpiResult, evaluate_kpis
    from shipyard.monitoring.label_window import LabelWindow, LabelWindowSpec, load_label_window
    from shipyard.monitoring.performance import (
        Breach,
        LabelArrival,
        LabelsExpected,
        concept_drift,
        label_arrival,
        label_coverage,
        label_lag,
        label_summary,
        labelled_performance,
        labels_expected,
    )
    from shipyard.monitoring.sequential import (
        ADWIN,
        CUSUM,
        PageHinkley,
        StreamBank,
        make_detector,
    )

# Performance estimation, labelled performance and band calibration bring scikit-learn,
# scipy.stats and the configuration (~75 MiB, ~1 s): loaded on first use, so that
# drift detection (and a process that only scores drift) does not pay for them.
_LAZY = {
    "calibrated_bands": "calibrated_bands",
    "window_bands": "calibrated_bands",
    "DatasetVerdict": "dataset_drift",
    "dataset_verdict": "dataset_drift",
    "LabelWindow": "label_window",
    "LabelWindowSpec": "label_window",
    "load_label_window": "label_window",
    "LabelArrival": "performance",
    "LabelsExpected": "performance",
    "label_arrival": "performance",
    "labels_expected": "performance",
    "label_summary": "performance",
    "ADWIN": "sequential",
    "CUSUM": "sequential",
    "PageHinkley": "sequential",
    "StreamBank": "sequential",
    "make_detector": "sequential",
    "SummaryPlan": "chunk_plan",
    "score_summary": "chunk_scores",
    "SummaryStore": "chunk_store",
    "WindowSummary": "chunks",
    "merge_summaries": "chunks",
    "summarize_batches": "chunks",
    "calibrate_bands": "calibrate",
    "CostSummary": "cost",
    "ServingCost": "cost",
    "TrainingCosts": "cost",
    "cost_summary": "cost",
    "serving_cost": "cost",
    "training_cost": "cost",
    "CBPE": "estimation",
    "Estimate": "estimation",
    "Correlation": "kpis",
    "KpiPoint": "kpis",
    "KpiResult": "kpis",
    "evaluate_kpis": "kpis",
    "Breach": "performance",
    "concept_drift": "performance",
    "label_coverage": "performance",
    "label_lag": "performance",
    "labelled_performance": "performance",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ADWIN",
    "CBPE",
    "CUSUM",
    "DETECTORS",
    "KL_BANDS",
    "PSI_BANDS",
    "AutoDriftDetector",
    "Band",
    "Bands",
    "Binning",
    "Breach",
    "ChiSquareDetector",
    "ColumnReference",
    "Correlation",
    "CostSummary",
    "DatasetDrift",
    "DatasetVerdict",
    "DriftDetector",
    "DriftResult",
    "Estimate",
    "EvidentlyKind",
    "FrameLike",
    "HistogramDetector",
    "JensenShannonDetector",
    "KLDetector",
    "KSDetector",
    "Kind",
    "KpiPoint",
    "KpiResult",
    "LabelArrival",
    "LabelWindow",
    "LabelWindowSpec",
    "LabelsExpected",
    "Method",
    "PSIDetector",
    "PageHinkley",
    "PredictionDriftBand",
    "PredictionDriftResult",
    "Reference",
    "ServingCost",
    "StreamBank",
    "SummaryPlan",
    "SummaryStore",
    "ThresholdDetector",
    "TrainingCosts",
    "WassersteinDetector",
    "WindowSummary",
    "ZTestDetector",
    "calibrate_bands",
    "calibrated_bands",
    "chi_square",
    "choose_test",
    "concept_drift",
    "cost_summary",
    "dataset_verdict",
    "detector",
    "evaluate_kpis",
    "evidently_kind",
    "fill_empty_bins",
    "jensen_shannon_distance",
    "kl_divergence",
    "ks_two_sample",
    "label_arrival",
    "label_coverage",
    "label_lag",
    "label_summary",
    "labelled_performance",
    "labels_expected",
    "load_detector",
    "load_label_window",
    "make_detector",
    "merge_summaries",
    "psi",
    "score_summary",
    "serving_cost",
    "summarize_batches",
    "training_cost",
    "two_proportion_z",
    "wasserstein_distance",
    "wasserstein_distance_norm",
    "window_bands",
]
