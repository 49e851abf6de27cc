"""No-drift windows for one feature, scored exactly as the histogram detectors score them.

Calibration needs the distribution of a feature's drift score when nothing has changed:
the window and the reference are two samples of one population. That population is
unknown; the reference is our estimate of it, with one flaw that matters for rich
categoricals: it holds only the levels it happened to draw. A 200-level Zipf feature
sampled 3,000 times misses dozens of rare levels, and live windows keep meeting them. A
bootstrap on the reference's levels alone never does, so its null scores are too small
and the detector alarms several times as often as promised.

:func:`smoothed_shares` therefore adds the unseen part (Chao 1984; Good 1953): the
probability that the next value is a level never seen is about ``f1 / n`` (``f1`` levels
seen once, ``n`` values), carried by about ``f1² / (2 f2)`` unseen levels (``f2`` seen
twice). The seen levels' shares shrink by ``1 − f1 / n`` and the unseen mass is spread
evenly over the pseudo-levels: rare levels have similar, small probabilities.
Binned (continuous) features need none of this: their outer bins are open.

Even so, a plug-in bootstrap of PSI on rare levels is biased low: the score's mean
depends on how many levels sit near one occurrence per window, which the reference's
shares misstate. :func:`null_scores` corrects it the usual bootstrap way (Hall 1992):
it runs the same bootstrap one level down, on populations estimated from resampled
references, and scales the null scores by the ratio of the two mean scores.

:func:`null_scores` draws ``n_boot`` (reference, window) pairs from those shares and
scores each as the detector would: a level counts as a bin when either side holds it
(the detector's bins are the reference's levels plus the window's new ones), empty bins
get Evidently's filler, and the statistic is the detector's own formula.
"""

from __future__ import annotations

import numpy as np

from shipyard.monitoring.binning import quantile_edges, reference_histogram
from shipyard.monitoring.reference import ColumnReference

# Rows of the bias-correcting bootstrap: its mean's error stays below 0.5 %.
_DEEPER_ROWS = 500

__all__ = ["masked_statistic", "null_scores", "smoothed_shares", "unseen_levels"]


def unseen_levels(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of counts: the probability of a level never drawn, and how many such levels.

    Good–Turing's ``f1 / n`` for the mass and the bias-corrected Chao1 term
    ``f1 (f1 − 1) / (2 (f2 + 1))`` for the number (at least one when ``f1 > 0``).
    """
    counts = np.atleast_2d(counts)
    n = counts.sum(axis=-1).astype(np.float64)
    singletons = np.count_nonzero(counts == 1, axis=-1)
    doubletons = np.count_nonzero(counts == 2, axis=-1)
    mass = np.where(n > 0, singletons / np.maximum(n, 1.0), 0.0)
    chao = np.ceil(singletons * (singletons - 1) / (2.0 * (doubletons + 1)))
    levels = np.where(singletons > 0, np.maximum(chao, 1), 0).astype(np.int64)
    return mass, levels


def smoothed_shares(counts: np.ndarray) -> np.ndarray:
    """Each row's level shares shrunk by its unseen mass, then that mass on pseudo-levels.

    Rows get the same width (the most pseudo-levels any row needs); unused ones are 0.
    """
    counts = np.atleast_2d(counts).astype(np.float64)
    mass, levels = unseen_levels(counts)
    width = max(int(levels.max(initial=0)), 1)
    each = np.where(levels > 0, mass / np.maximum(levels, 1), 0.0)
    pseudo = np.where(np.arange(width) < levels[:, None], each[:, None], 0.0)
    seen = (1.0 - mass)[:, None] * counts / counts.sum(axis=-1, keepdims=True)
    return np.concatenate((seen, pseudo), axis=-1)


def null_scores(
    column: ColumnReference,
    window_size: int,
    method: str,
    *,
    n_boot: int,
    bins: int = 10,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Scores of ``n_boot`` no-drift (reference, window) pairs for one feature.

    Discrete features' scores are bias-corrected (module doc): scaled by how much the
    bootstrap's mean score exceeds the same bootstrap run one level down.
    """
    rng = rng if rng is not None else np.random.default_rng()
    if not column.discrete:
        edges = quantile_edges(column.values, column.counts, bins)
        counts = reference_histogram(column.values, column.cumulative, edges)
        shares = counts / counts.sum()
        reference = rng.multinomial(column.n, shares, size=n_boot)
        window = rng.multinomial(window_size, shares, size=n_boot)
        # Every bin holds reference values, so the detector always keeps all of them.
        return masked_statistic(method, reference, window, np.ones_like(window, bool))
    shares = smoothed_shares(column.counts)[0]
    reference = rng.multinomial(column.n, shares, size=n_boot)
    window = rng.multinomial(window_size, shares, size=n_boot)
    null = masked_statistic(method, reference, window, (reference > 0) | (window > 0))
    # One level down: populations estimated from references drawn from ``shares``. Only
    # its mean is needed, and a row per population is slow to draw: fewer rows.
    deeper = smoothed_shares(reference[: min(n_boot, _DEEPER_ROWS)])
    below = float(_pair_scores(method, column.n, window_size, deeper, rng).mean())
    scale = float(null.mean()) / below if below > 0 else 1.0
    return null * max(scale, 1.0)


def _pair_scores(
    method: str, n: int, window_size: int, shares: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Score one (reference, window) pair drawn from each row of level ``shares``."""
    reference = rng.multinomial(n, shares)
    window = rng.multinomial(window_size, shares)
    # A level neither side drew is no bin of the detector's at all.
    return masked_statistic(method, reference, window, (reference > 0) | (window > 0))


def masked_statistic(
    method: str, reference: np.ndarray, current: np.ndarray, present: np.ndarray
) -> np.ndarray:
    """PSI or KL of each row pair over its ``present`` bins only, as ``statistics`` scores.

    Equal to ``statistics.psi`` / ``statistics.kl_divergence`` on the rows with the
    absent bins dropped (filler from the smallest non-empty share, KL renormalised).
    """
    ref = _filled(reference, present)
    cur = _filled(current, present)
    if method == "kl":
        from scipy import special  # as in statistics: only where it is used

        ref = ref / ref.sum(axis=-1, keepdims=True)
        cur = cur / cur.sum(axis=-1, keepdims=True)
        return np.asarray(special.rel_entr(ref, cur).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(present, (ref - cur) * np.log(ref / cur), 0.0)
    return np.asarray(terms.sum(axis=-1))


def _filled(counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Shares with empty present bins filled as ``statistics.fill_empty_bins`` does."""
    shares = counts / counts.sum(axis=-1, keepdims=True)
    smallest = np.where(shares > 0, shares, np.inf).min(axis=-1, keepdims=True)
    filler = np.where(smallest <= 1e-4, smallest / 1e6, 1e-4)
    return np.where(present & (shares == 0), filler, shares)
