"""The report's figures, candidate against champion, each as a base64-encoded PNG.

Figures are drawn on matplotlib's Agg canvas directly, without pyplot: no global
figure state, no GUI backend, safe to call from a server thread. matplotlib is imported
only when a figure is drawn.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.evaluation.calibration import reliability_curve

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from shipyard.evaluation.measure import Measurements

__all__ = [
    "latency_histogram",
    "new_figure",
    "pr_curves",
    "predicted_vs_actual",
    "reliability_diagram",
    "residual_histogram",
    "roc_curves",
    "slice_bars",
    "to_png",
]

CANDIDATE = {"color": "#2563eb", "label": "candidate"}
CHAMPION = {"color": "#9a3412", "label": "champion", "linestyle": "--"}
MAX_POINTS = 5000


def new_figure(width: float = 5.6, height: float = 4.2) -> tuple[Figure, Axes]:
    """A figure on matplotlib's Agg canvas (no pyplot state), and its one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=96, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def to_png(figure: Figure) -> str:
    """``figure`` as a base64-encoded PNG, for a data: URL."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _models(
    candidate: Measurements, champion: Measurements | None
) -> Iterator[tuple[Measurements, dict[str, Any]]]:
    yield candidate, CANDIDATE
    if champion is not None:
        yield champion, CHAMPION


def _one_vs_rest(measured: Measurements) -> tuple[np.ndarray, np.ndarray] | None:
    """Truth and scores as one binary problem: the positive class, or micro-averaged."""
    predictions = measured.predictions
    proba, classes = predictions.probabilities, predictions.classes
    if proba is None or classes is None:
        return None
    if proba.shape[1] == 2:
        truth, scores = measured.y_true == classes[1], proba[:, 1]
    else:
        truth = (measured.y_true[:, None] == classes[None, :]).ravel()
        scores = proba.ravel()
    if truth.all() or not truth.any():
        return None
    return truth, scores


def _curves(candidate: Measurements, champion: Measurements | None, kind: str) -> str:
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    figure, axes = new_figure()
    multiclass = False
    for measured, style in _models(candidate, champion):
        view = _one_vs_rest(measured)
        if view is None:
            continue
        truth, scores = view
        multiclass |= (
            measured.predictions.scores is not None and measured.predictions.scores.ndim == 2
        )
        if kind == "roc":
            x, y, _ = roc_curve(truth, scores)
            area = auc(x, y)
        else:
            y, x, _ = precision_recall_curve(truth, scores)
            area = auc(x, y)
        axes.plot(
            x,
            y,
            color=style["color"],
            linestyle=style.get("linestyle", "-"),
            label=f"{style['label']} (area {area:.3f})",
        )
    if kind == "roc":
        axes.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle=":")
        axes.set(xlabel="false positive rate", ylabel="true positive rate")
    else:
        axes.set(xlabel="recall", ylabel="precision")
    scope = " (one-vs-rest, micro-averaged)" if multiclass else ""
    axes.set_title(("ROC curve" if kind == "roc" else "Precision–recall curve") + scope)
    axes.set(xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower right" if kind == "roc" else "lower left")
    return to_png(figure)


def roc_curves(candidate: Measurements, champion: Measurements | None) -> str:
    """ROC curves of the candidate and the champion."""
    return _curves(candidate, champion, "roc")


def pr_curves(candidate: Measurements, champion: Measurements | None) -> str:
    """Precision–recall curves of the candidate and the champion."""
    return _curves(candidate, champion, "pr")


def reliability_diagram(candidate: Measurements, champion: Measurements | None) -> str:
    """Accuracy against confidence per bin (top-label), with the diagonal of perfection."""
    figure, axes = new_figure()
    axes.plot(
        [0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle=":", label="perfectly calibrated"
    )
    for measured, style in _models(candidate, champion):
        p = measured.predictions
        if p.scores is None:
            continue
        curve = reliability_curve(measured.y_true, p.scores, p.classes, bins=measured.ece_bins)
        axes.plot(
            curve.confidence,
            curve.accuracy,
            marker="o",
            color=style["color"],
            linestyle=style.get("linestyle", "-"),
            label=f"{style['label']} (ECE {curve.ece:.3f})",
        )
    axes.set(
        xlabel="confidence (predicted probability of the predicted class)",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="Reliability diagram",
    )
    axes.legend(loc="upper left")
    return to_png(figure)


def slice_bars(items: list[tuple[str, float | None, float | None]]) -> str:
    """Horizontal bars per (label, candidate value, champion value)."""
    figure, axes = new_figure(6.4, 1.6 + 0.5 * len(items))
    positions = np.arange(len(items))
    mine = np.array([np.nan if v is None else v for _, v, _ in items], dtype=float)
    theirs = np.array([np.nan if v is None else v for _, _, v in items], dtype=float)
    has_champion = not np.isnan(theirs).all()
    height = 0.4 if has_champion else 0.6
    axes.barh(
        positions - (height / 2 if has_champion else 0),
        mine,
        height=height,
        color=CANDIDATE["color"],
        label="candidate",
    )
    if has_champion:
        axes.barh(
            positions + height / 2, theirs, height=height, color=CHAMPION["color"], label="champion"
        )
    axes.set_yticks(positions, [label for label, _, _ in items])
    axes.invert_yaxis()
    axes.set(xlabel="metric value", title="Metrics per slice and group")
    figure.legend(loc="outside lower center", ncols=2, frameon=False)
    return to_png(figure)


def latency_histogram(candidate: Measurements, champion: Measurements | None) -> str:
    """Distribution of 1-row predict times (the slowest 0.5 % beyond the axis)."""
    figure, axes = new_figure()
    samples = [(m.latency.single_ms, s) for m, s in _models(candidate, champion) if m.latency]
    everything = np.concatenate([values for values, _ in samples])
    edges = np.linspace(everything.min(), np.percentile(everything, 99.5), 41)
    for values, style in samples:
        axes.hist(values, bins=list(edges), color=style["color"], alpha=0.55, label=style["label"])
    axes.set(xlabel="predict time at 1 row (ms)", ylabel="calls", title="Latency, 1 row")
    axes.legend(loc="upper right")
    return to_png(figure)


def _sample(count: int) -> np.ndarray:
    if count <= MAX_POINTS:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, MAX_POINTS, replace=False))


def predicted_vs_actual(candidate: Measurements, champion: Measurements | None) -> str:
    """Scatter of predictions against true values, with the diagonal."""
    figure, axes = new_figure()
    rows = _sample(candidate.rows)
    for measured, style in _models(candidate, champion):
        axes.scatter(
            measured.y_true[rows],
            measured.predictions.labels[rows],
            s=6,
            alpha=0.45,
            color=style["color"],
            label=style["label"],
        )
    low, high = float(candidate.y_true.min()), float(candidate.y_true.max())
    axes.plot([low, high], [low, high], color="#999999", linewidth=0.8, linestyle=":")
    axes.set(xlabel="actual", ylabel="predicted", title="Predicted against actual")
    axes.legend(loc="upper left")
    return to_png(figure)


def residual_histogram(candidate: Measurements, champion: Measurements | None) -> str:
    """Distribution of residuals (actual − predicted)."""
    figure, axes = new_figure()
    residuals = [
        (m.y_true - m.predictions.labels.astype(float), s) for m, s in _models(candidate, champion)
    ]
    edges = np.histogram_bin_edges(np.concatenate([r for r, _ in residuals]), bins=40)
    for values, style in residuals:
        axes.hist(values, bins=list(edges), color=style["color"], alpha=0.55, label=style["label"])
    axes.set(xlabel="actual − predicted", ylabel="rows", title="Residuals")
    axes.legend(loc="upper right")
    return to_png(figure)
