"""Label-free performance: confidence-based performance estimation (CBPE), binary classifiers.

    cbpe = CBPE().fit(y_reference, reference_scores)     # labelled reference, once
    estimated = cbpe.estimate(window_scores)              # {"roc_auc": Estimate(...), ...}
    estimated["recall"].value, estimated["recall"].low, estimated["recall"].high
    compare(estimated, cbpe.realised(y_window, window_scores))   # once labels arrive

Scores are the positive-class probability (``classes[1]``, the larger label, as in
:class:`~shipyard.evaluation.predictions.Predictions`); a row is predicted positive when
its score exceeds ``threshold`` (at 0.5, what ``predict_proba``'s argmax decides).

**Calibration.** CBPE needs probabilities that come true: a score of 0.8 should be
right 80 % of the time. ``fit`` splits the reference into ``cv_folds`` stratified folds;
on each held-out fold it measures the positive-class expected calibration error of the
raw scores and of scores mapped by an isotonic regression fitted on the other folds, and
calibrates (with a map fitted on the whole reference) only when the calibrated scores'
mean error over the folds is the lower. Two biases are avoided, each of which made a
perfectly calibrated model "improve" in most trials: the error is averaged per fold,
not computed on the pooled out-of-fold scores (each fold's map has fitted the other
folds' label noise, which then cancels in pooled bins), and both errors use the same
bins, ``bins`` equal-mass bins of the raw score (binning each by its own values favours
isotonic's flat steps, which occupy fewer bins and so show less noise). The
positive-class error is used rather than the scorecard's top-label ``ece`` because CBPE
needs P(y = 1) right, not only the confidence of the predicted class. A reference with
fewer than 2 rows of a class is not calibrated.

**Estimates** (NannyML's CBPE). From the calibrated probabilities p the expected
confusion matrix is TP = Σ p over predicted positives, FP = Σ (1 − p) over them, FN and
TN likewise over predicted negatives; accuracy, precision, recall and F1 are computed
from it as the scorecard computes them from a realised matrix. ROC-AUC is the expected
share of correctly ordered (positive, negative) pairs: Σ p_j (1 − p_k) over pairs with
s_j > s_k (ties count ½) over Σ p_j (1 − p_k), j ≠ k, with s the raw scores, which the
realised ROC-AUC ranks. That is the area under NannyML's expected ROC curve (expected
TPR and FPR at every threshold) but for the O(1/n) terms pairing a row with itself.

**Band.** The band is the sampling error of the metric the window's labels will give:
labels are simulated from the calibrated probabilities (``n_simulations`` draws,
vectorised), each draw's metrics computed, and the band is the estimate ± ``band_sigmas``
(3) standard deviations of those, clipped to [0, 1]. Conditioning on the window's own
scores keeps the band right under covariate shift, where a band scaled from the
reference would not (NannyML scales a standard error bootstrapped on the reference by
sqrt(n_reference / n)). It does not include the error of the calibration map or of the
model's probabilities themselves, which is small when the reference is large against
the window.

**Support.** The estimate holds only where the calibration was measured: a score of
0.97 means "right 97 % of the time" only if the reference had rows scored near 0.97,
and only if the window's rows there are like the reference's. ``fit`` keeps the
reference's histogram of raw scores in bins of ``support_bin_width`` log-odds between
±8 (p from 0.0003 to 0.9997, and one open bin beyond each end): log-odds, because a
model extrapolating under covariate shift pushes scores from 0.99 to 0.9999, which is
one bin of [0, 1] but far outside what the reference measured. A window's bin is
*supported* when the reference holds at least ``min_bin_rows`` rows there and at least
1 / ``max_density_ratio`` of the window's share (the window is not concentrated where
the reference was thin). ``support`` is the share of the window's
rows in supported bins. Below ``min_support`` the estimate is marked
``reliable: False`` with a reason naming the bins, and the band widens by the
unsupported share on each side: for accuracy that is as far as those rows can move
it. No check on scores can see a change that leaves the scores where they were
(concept drift, or a misspecified model whose scores ignore the feature that moved):
only labels can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from shipyard.errors import DataError, EvaluationError
from shipyard.monitoring.frames import json_key
from shipyard.monitoring.performance import labelled_performance

__all__ = [
    "CBPE",
    "METRICS",
    "Comparison",
    "Estimate",
    "calibration_error",
    "compare",
    "expected_metrics",
    "expected_roc_auc",
    "simulate_metrics",
]

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")

# Support bins span these log-odds (p 0.0003 to 0.9997); beyond, one open bin each side.
_LOGIT_LIMIT = 8.0
# Simulated label matrices built at once stay below this many elements.
_CHUNK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class Estimate:
    """An estimated metric, its band ``[low, high]``, and whether the reference supports it."""

    value: float
    low: float
    high: float
    standard_error: float
    reliable: bool = True
    reason: str | None = None
    support: float | None = None  # share of the window in well-supported score bins

    def to_dict(self) -> dict[str, float | None]:
        """A JSON-ready mapping (``None`` for an undefined number)."""
        return {key: _json_number(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Comparison:
    """An estimate against the metric the labels gave: ``error = realised − estimated``."""

    metric: str
    estimated: float
    low: float
    high: float
    realised: float
    error: float
    within: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``None`` for an undefined number)."""
        return {key: _json_number(value) for key, value in asdict(self).items()}


class CBPE:
    """Confidence-based performance estimation for a binary classifier with probabilities.

    Learned state: ``classes_`` (the two labels), ``calibrated_`` (whether the isotonic
    map is applied), ``ece_raw_`` and ``ece_calibrated_`` (held-out-fold calibration
    errors of the raw and calibrated scores), ``calibration_`` (the map's ``(x, y)``
    knots, or ``None``), ``support_counts_`` (reference rows per score bin).
    """

    def __init__(
        self,
        metrics: Sequence[str] = METRICS,
        threshold: float = 0.5,
        *,
        band_sigmas: float = 3.0,
        n_simulations: int = 500,
        bins: int = 10,
        cv_folds: int = 5,
        seed: int = 0,
        support_bin_width: float = 1.0,
        min_bin_rows: int = 5,
        max_density_ratio: float = 20.0,
        min_support: float = 0.9,
    ) -> None:
        unknown = [name for name in metrics if name not in METRICS]
        if unknown:
            raise EvaluationError(
                f"CBPE cannot estimate {', '.join(unknown)}.",
                hint=f"Estimate some of: {', '.join(METRICS)}.",
            )
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        if n_simulations < 2:
            raise ValueError(f"n_simulations must be at least 2, got {n_simulations}")
        if support_bin_width <= 0 or max_density_ratio <= 0 or not 0 <= min_support <= 1:
            raise ValueError(
                "support_bin_width and max_density_ratio must be > 0, min_support in [0, 1]"
            )
        self.metrics = tuple(metrics)
        self.threshold = float(threshold)
        self.band_sigmas = float(band_sigmas)
        self.n_simulations = int(n_simulations)
        self.bins = int(bins)
        self.cv_folds = int(cv_folds)
        self.seed = seed
        self.support_bin_width = float(support_bin_width)
        self.min_bin_rows = int(min_bin_rows)
        self.max_density_ratio = float(max_density_ratio)
        self.min_support = float(min_support)

    def fit(self, y_true: ArrayLike, y_score: ArrayLike) -> Self:
        """Learn the classes and decide on calibration from a labelled reference."""
        labels = np.asarray(y_true)
        scores = _probabilities(y_score)
        if len(labels) != len(scores):
            raise DataError(
                f"{len(labels)} reference labels but {len(scores)} scores.",
                hint="Pass the labels and scores of the same reference rows.",
            )
        classes = np.unique(labels)
        if len(classes) != 2:
            raise DataError(
                f"CBPE needs a binary reference; its labels hold {len(classes)} classes.",
                hint="Fit on labelled reference rows of both classes.",
            )
        positive = (labels == classes[1]).astype(np.float64)
        self.classes_ = classes
        self.support_counts_: np.ndarray | None = _score_histogram(scores, self.support_bin_width)
        self.ece_raw_ = calibration_error(positive, scores, self.bins)
        self.ece_calibrated_ = float("nan")
        self.calibration_: tuple[np.ndarray, np.ndarray] | None = None
        folds = min(self.cv_folds, int(np.bincount(positive.astype(np.int64)).min()))
        if folds >= 2:
            raw, calibrated = [], []
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
            for train, test in splitter.split(scores, positive):
                mapped = _isotonic(scores[train], positive[train]).predict(scores[test])
                truth, held_out = positive[test], scores[test]
                raw.append(calibration_error(truth, held_out, self.bins, by=held_out))
                calibrated.append(calibration_error(truth, mapped, self.bins, by=held_out))
            self.ece_raw_, self.ece_calibrated_ = float(np.mean(raw)), float(np.mean(calibrated))
            if self.ece_calibrated_ < self.ece_raw_:
                fitted = _isotonic(scores, positive)
                self.calibration_ = (
                    np.asarray(fitted.X_thresholds_, dtype=np.float64),
                    np.asarray(fitted.y_thresholds_, dtype=np.float64),
                )
        self.calibrated_ = self.calibration_ is not None
        return self

    def calibrate(self, y_score: ArrayLike) -> np.ndarray:
        """The probabilities estimates are made from: ``y_score``, calibrated if that helped."""
        self._check_fitted()
        scores = _probabilities(y_score)
        if self.calibration_ is None:
            return scores
        knots_x, knots_y = self.calibration_
        return np.interp(scores, knots_x, knots_y)

    def estimate(self, y_score: ArrayLike) -> dict[str, Estimate]:
        """Estimated metrics of an unlabelled window, each with its sampling-error band."""
        scores = _probabilities(y_score)
        if len(scores) == 0:
            raise DataError("Cannot estimate performance on an empty window.", hint="Pass rows.")
        probability = self.calibrate(scores)
        predicted = scores > self.threshold
        values = expected_metrics(probability, predicted, scores)
        simulated = simulate_metrics(
            probability,
            predicted,
            scores,
            self.metrics,
            n_simulations=self.n_simulations,
            rng=np.random.default_rng(self.seed),
        )
        support, reason = self.support(scores)
        widen = 0.0 if support is None else 1.0 - support
        reliable = support is None or support >= self.min_support
        estimates: dict[str, Estimate] = {}
        for name in self.metrics:
            draws = simulated[name]
            draws = draws[~np.isnan(draws)]
            error = float(np.std(draws, ddof=1)) if len(draws) > 1 else float("nan")
            value = values[name]
            half = self.band_sigmas * error + widen
            estimates[name] = Estimate(
                value=value,
                low=float(max(value - half, 0.0)),
                high=float(min(value + half, 1.0)),
                standard_error=error,
                reliable=reliable,
                reason=None if reliable else reason,
                support=support,
            )
        return estimates

    def support(self, y_score: ArrayLike) -> tuple[float | None, str]:
        """Share of the window's rows in score bins the reference supports, and why not all.

        ``None`` for a CBPE restored from a state saved before the histogram was kept.
        """
        self._check_fitted()
        reference = self.support_counts_
        if reference is None:
            return None, "no reference score histogram: refit on the reference"
        scores = _probabilities(y_score)
        current = _score_histogram(scores, self.support_bin_width)
        if len(current) != len(reference):
            return None, "the reference score histogram has other bins: refit on the reference"
        # A bin is supported when the reference measured calibration on enough rows
        # there, and on at least 1/max_density_ratio of the window's share.
        needed = np.maximum(
            self.min_bin_rows,
            reference.sum() * current / len(scores) / self.max_density_ratio,
        )
        thin = (reference < needed) & (current > 0)
        support = float(1.0 - current[thin].sum() / len(scores))
        if not thin.any():
            return support, "every score bin of the window is supported by the reference"
        edges = _bin_edges(self.support_bin_width)
        worst = np.argsort(-current * thin)[: min(3, int(thin.sum()))]
        bins = ", ".join(
            f"scores {_bin_label(edges, int(b))}: {int(current[b])} rows, "
            f"reference {int(reference[b])}"
            for b in sorted(worst)
        )
        reason = (
            f"{1 - support:.0%} of the window's scores fall where the reference has little "
            f"support ({bins}); calibration was not measured there, so the estimate may be "
            "far off: wait for labels"
        )
        return support, reason

    def realised(self, y_true: ArrayLike, y_score: ArrayLike) -> dict[str, float]:
        """The same metrics from labels, by the scorecard's metric functions."""
        self._check_fitted()
        scores = _probabilities(y_score)
        labels = self.classes_[(scores > self.threshold).astype(np.int64)]
        return labelled_performance(
            y_true, labels, scores, self.metrics, "classification", classes=self.classes_
        )

    def get_params(self) -> dict[str, Any]:
        """The settings, by ``__init__`` argument name."""
        return {
            "metrics": list(self.metrics),
            "threshold": self.threshold,
            "band_sigmas": self.band_sigmas,
            "n_simulations": self.n_simulations,
            "bins": self.bins,
            "cv_folds": self.cv_folds,
            "seed": self.seed,
            "support_bin_width": self.support_bin_width,
            "min_bin_rows": self.min_bin_rows,
            "max_density_ratio": self.max_density_ratio,
            "min_support": self.min_support,
        }

    def to_dict(self) -> dict[str, Any]:
        """Settings and fitted state as strict-JSON-ready data; :meth:`from_dict` loads it."""
        state: dict[str, Any] = {"method": "cbpe", "params": self.get_params()}
        if hasattr(self, "classes_"):
            calibration = self.calibration_
            state.update(
                classes=[json_key(value) for value in self.classes_],
                ece_raw=_json_number(self.ece_raw_),
                ece_calibrated=_json_number(self.ece_calibrated_),
                calibration=None
                if calibration is None
                else {"x": calibration[0].tolist(), "y": calibration[1].tolist()},
                support_counts=None
                if self.support_counts_ is None
                else self.support_counts_.tolist(),
            )
        return state

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a CBPE from :meth:`to_dict` output without the reference."""
        cbpe = cls(**data["params"])
        if "classes" in data:
            cbpe.classes_ = np.asarray(data["classes"])
            cbpe.ece_raw_ = _from_json_number(data["ece_raw"])
            cbpe.ece_calibrated_ = _from_json_number(data["ece_calibrated"])
            calibration = data.get("calibration")
            cbpe.calibration_ = (
                None
                if calibration is None
                else (np.asarray(calibration["x"], float), np.asarray(calibration["y"], float))
            )
            cbpe.calibrated_ = cbpe.calibration_ is not None
            counts = data.get("support_counts")
            cbpe.support_counts_ = None if counts is None else np.asarray(counts, np.int64)
        return cbpe

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise RuntimeError("CBPE is not fitted: call fit(y_reference, scores) first.")

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"CBPE({params})"


def compare(
    estimated: Mapping[str, Estimate], realised: Mapping[str, float]
) -> dict[str, Comparison]:
    """Each metric both estimated and realised: the error, and whether it is within the band."""
    comparisons: dict[str, Comparison] = {}
    for name, estimate in estimated.items():
        if name not in realised:
            continue
        actual = float(realised[name])
        comparisons[name] = Comparison(
            metric=name,
            estimated=estimate.value,
            low=estimate.low,
            high=estimate.high,
            realised=actual,
            error=actual - estimate.value,
            within=bool(estimate.low <= actual <= estimate.high),
        )
    return comparisons


def calibration_error(
    positive: ArrayLike, probability: ArrayLike, bins: int = 10, *, by: ArrayLike | None = None
) -> float:
    """Positive-class expected calibration error: Σ_b (n_b / N) |mean y_b − mean p_b|.

    Rows fall in ``bins`` equal-mass bins of ``by`` (default: the probabilities), rows
    with one value of ``by`` in one bin.
    """
    y = np.asarray(positive, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    if len(p) == 0:
        return float("nan")
    key = p if by is None else np.asarray(by, dtype=np.float64)
    edges = np.unique(np.quantile(key, np.arange(1, bins) / bins))
    index = np.searchsorted(edges, key, side="right")
    gap = np.abs(
        np.bincount(index, weights=y, minlength=bins) - np.bincount(index, p, minlength=bins)
    )
    # Σ_b (n_b / N) · |Σ y − Σ p| / n_b: the bin counts cancel.
    return float(gap.sum() / len(p))


def expected_metrics(
    probability: np.ndarray, predicted: np.ndarray, scores: np.ndarray
) -> dict[str, float]:
    """The metrics of the expected confusion matrix, and the expected ROC-AUC."""
    n = len(probability)
    tp = float(probability[predicted].sum())
    fp = float(predicted.sum()) - tp
    fn = float(probability[~predicted].sum())
    tn = float(n - predicted.sum()) - fn
    return {
        "accuracy": (tp + tn) / n,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": expected_roc_auc(probability, scores),
    }


def expected_roc_auc(probability: np.ndarray, scores: np.ndarray) -> float:
    """Σ_{j≠k} p_j (1 − p_k) [s_j > s_k, ½ if equal] / Σ_{j≠k} p_j (1 − p_k)."""
    p = np.asarray(probability, dtype=np.float64)
    q = 1.0 - p
    distinct, group = np.unique(scores, return_inverse=True)
    negatives_in = np.bincount(group, weights=q, minlength=len(distinct))
    negatives_below = np.concatenate(([0.0], np.cumsum(negatives_in)[:-1]))
    # For row j: negatives strictly below its score, and tied with it (itself excluded).
    ordered = p * (negatives_below[group] + 0.5 * (negatives_in[group] - q))
    pairs = p.sum() * q.sum() - float(np.dot(p, q))
    return _ratio(float(ordered.sum()), pairs)


def simulate_metrics(
    probability: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray,
    metrics: Sequence[str],
    *,
    n_simulations: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Each metric on ``n_simulations`` label draws y ~ Bernoulli(probability).

    Confusion counts come from two dot products per draw; ROC-AUC from the Mann–Whitney
    rank sum of the raw scores (average ranks for ties, as ``roc_auc_score``).
    """
    n = len(probability)
    predicted_weight = predicted.astype(np.float64)
    predicted_positive = float(predicted.sum())
    ranks = sps.rankdata(scores) if "roc_auc" in metrics else None
    results: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_simulations, per_chunk):
        size = min(per_chunk, n_simulations - start)
        labels = (rng.random((size, n)) < probability).astype(np.float64)
        positives = labels.sum(axis=1)
        tp = labels @ predicted_weight
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {
                "accuracy": (n - predicted_positive - positives + 2 * tp) / n,
                "precision": tp / predicted_positive if predicted_positive else np.nan * tp,
                "recall": tp / positives,
                "f1": 2 * tp / (predicted_positive + positives),
            }
            if ranks is not None:
                negatives = n - positives
                rank_sum = labels @ ranks
                values["roc_auc"] = (rank_sum - positives * (positives + 1) / 2) / (
                    positives * negatives
                )
        for name in metrics:
            draw = values[name]
            results[name].append(np.where(np.isfinite(draw), draw, np.nan))
    return {name: np.concatenate(parts) for name, parts in results.items()}


def _bin_edges(width: float) -> np.ndarray:
    """Log-odds edges of the support bins: ``width`` apart from −8 to +8."""
    count = max(1, int(np.ceil(2 * _LOGIT_LIMIT / width)))
    return np.linspace(-_LOGIT_LIMIT, _LOGIT_LIMIT, count + 1)


def _score_histogram(scores: np.ndarray, width: float) -> np.ndarray:
    """Rows per log-odds bin, with an open bin below the first edge and above the last."""
    edges = _bin_edges(width)
    with np.errstate(divide="ignore"):  # scores of exactly 0 or 1 fall in the open bins
        log_odds = np.log(scores) - np.log1p(-scores)
    index = np.searchsorted(edges, log_odds, side="right")
    return np.bincount(index, minlength=len(edges) + 1)


def _bin_label(edges: np.ndarray, index: int) -> str:
    """A support bin as a range of probabilities."""
    low = "0" if index == 0 else f"{1 / (1 + np.exp(-edges[index - 1])):.4g}"
    high = "1" if index == len(edges) else f"{1 / (1 + np.exp(-edges[index])):.4g}"
    return f"{low}–{high}"


def _isotonic(scores: np.ndarray, positive: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, positive)


def _probabilities(y_score: ArrayLike) -> np.ndarray:
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 2:
        scores = scores[:, 1]
    if scores.ndim != 1:
        raise DataError(
            f"CBPE takes one positive-class probability per row, not shape {scores.shape}.",
            hint="Pass predict_proba(X)[:, 1] of a binary classifier.",
        )
    if len(scores) and not (np.isfinite(scores).all() and 0 <= scores.min() <= scores.max() <= 1):
        raise DataError(
            "CBPE scores must be probabilities in [0, 1], without NaN.",
            hint="Pass predict_proba output, not decision-function scores.",
        )
    return scores


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _from_json_number(value: Any) -> float:
    return float("nan") if value is None else float(value)
