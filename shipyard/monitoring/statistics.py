"""Drift statistics on histograms and samples, vectorised along the last axis.

Histogram statistics take *counts* (``(..., bins)`` arrays: one row per feature when
the rows have equal bin counts) and follow Evidently 0.7's formulas exactly, so that a
score here equals Evidently's on the same bins (``evidently/legacy/calculations/
stattests/``: ``psi.py``, ``kl_div.py``, ``jensenshannon.py``, ``chisquare_stattest.py``,
``z_stattest.py``, ``wasserstein_distance_norm.py``, ``ks_stattest.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

# SciPy is imported where it is first used: ``scipy.stats`` alone adds ~50 MiB and
# ~0.3 s to every import that reaches drift statistics, and only KS needs it here
# (the chi-square and normal tails are ``scipy.special``'s, as in ``scipy.stats``).

__all__ = [
    "chi_square",
    "fill_empty_bins",
    "jensen_shannon_distance",
    "kl_divergence",
    "ks_two_sample",
    "psi",
    "two_proportion_z",
    "wasserstein_distance",
    "wasserstein_distance_norm",
]

# Wasserstein integrates over the merged support this many points at a time.
_SLICE = 1 << 16


def _shares(counts: ArrayLike) -> np.ndarray:
    array = np.asarray(counts, dtype=np.float64)
    return array / array.sum(axis=-1, keepdims=True)


def fill_empty_bins(shares: ArrayLike) -> np.ndarray:
    """Replace empty bins by a small share, as Evidently's ``get_binned_data`` does.

    The filler is ``min(nonzero) / 1e6`` when the smallest non-empty share is at most
    1e-4, else 1e-4. Rows are not renormalised afterwards (nor are they in Evidently).
    """
    array = np.array(shares, dtype=np.float64)
    smallest = np.where(array > 0, array, np.inf).min(axis=-1, keepdims=True)
    filler = np.where(smallest <= 1e-4, smallest / 1e6, 1e-4)
    return np.where(array == 0, filler, array)


def psi(reference: ArrayLike, current: ArrayLike) -> np.ndarray:
    """Population stability index of two histograms: Σ (r − c) · ln(r / c), empty bins filled."""
    ref = fill_empty_bins(_shares(reference))
    cur = fill_empty_bins(_shares(current))
    return np.asarray(np.sum((ref - cur) * np.log(ref / cur), axis=-1))


def kl_divergence(reference: ArrayLike, current: ArrayLike) -> np.ndarray:
    """KL(reference ‖ current) in nats, empty bins filled (``scipy.stats.entropy`` semantics)."""
    from scipy import special

    ref = _shares(fill_empty_bins(_shares(reference)))
    cur = _shares(fill_empty_bins(_shares(current)))
    return np.asarray(np.sum(special.rel_entr(ref, cur), axis=-1))


def jensen_shannon_distance(reference: ArrayLike, current: ArrayLike) -> np.ndarray:
    """Jensen–Shannon *distance* (natural log), as ``scipy.spatial.distance.jensenshannon``.

    Empty bins are left empty, as in Evidently's ``jensenshannon`` stattest.
    """
    from scipy import special

    ref, cur = _shares(reference), _shares(current)
    middle = (ref + cur) / 2.0
    divergence = special.rel_entr(ref, middle) + special.rel_entr(cur, middle)
    return np.asarray(np.sqrt(np.maximum(np.sum(divergence, axis=-1) / 2.0, 0.0)))


def chi_square(reference: ArrayLike, current: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pearson chi-square of current counts against reference counts scaled to the current size.

    Returns ``(statistic, p_value)`` with ``bins − 1`` degrees of freedom. A category
    absent from the reference but present now has expected count 0: the statistic is
    infinite and the p-value 0, as with ``scipy.stats.chisquare``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    expected = ref * (cur.sum(axis=-1, keepdims=True) / ref.sum(axis=-1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(cur == expected, 0.0, (cur - expected) ** 2 / expected)
    statistic = terms.sum(axis=-1)
    # scipy.stats.chi2.sf is special.chdtrc underneath (NaN without a degree of freedom).
    from scipy import special

    freedom = ref.shape[-1] - 1
    if freedom < 1:
        return np.asarray(statistic), np.full(np.shape(statistic), np.nan)
    return np.asarray(statistic), np.asarray(special.chdtrc(freedom, statistic))


def two_proportion_z(
    reference_ones: ArrayLike,
    reference_n: ArrayLike,
    current_ones: ArrayLike,
    current_n: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled two-proportion Z-test, two-sided: ``(z, p_value)``.

    ``z = (p_ref − p_cur) / sqrt(P (1 − P) (1/n_ref + 1/n_cur))``. Evidently computes
    the p-value as ``2 (1 − Φ(|z|))``; this uses ``2 Φ(−|z|)``, equal up to rounding
    and exact for tiny p-values.
    """
    n1 = np.asarray(reference_n, dtype=np.float64)
    n2 = np.asarray(current_n, dtype=np.float64)
    p1 = np.asarray(reference_ones, dtype=np.float64) / n1
    p2 = np.asarray(current_ones, dtype=np.float64) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    from scipy import special  # scipy.stats.norm.sf(x) is special.ndtr(-x)

    return np.asarray(z), np.asarray(2.0 * special.ndtr(-np.abs(z)))


def ks_two_sample(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov–Smirnov ``(statistic, p_value)`` by ``ks_2samp``.

    SciPy computes the exact p-value when both samples have at most 10,000 values and
    falls back to the asymptotic one when that fails, as it does inside Evidently.
    """
    from scipy import stats as sps

    with warnings.catch_warnings():
        # The fallback is documented above; a warning on every window would be noise.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        result = sps.ks_2samp(np.asarray(reference), np.asarray(current))
    return float(result.statistic), float(result.pvalue)


def wasserstein_distance(
    reference_values: ArrayLike,
    current_sorted: ArrayLike,
    reference_counts: ArrayLike | None = None,
) -> float:
    """First Wasserstein distance ∫|F_ref − F_cur| between two 1-D samples.

    ``reference_values`` must be sorted (with ``reference_counts`` as weights, or
    repeated), ``current_sorted`` sorted. Same integral as
    ``scipy.stats.wasserstein_distance`` without re-sorting either side.
    """
    u = np.asarray(reference_values, dtype=np.float64)
    v = np.asarray(current_sorted, dtype=np.float64)
    weights = np.ones(len(u), np.int64) if reference_counts is None else reference_counts
    # u_share[k]: the reference's CDF after its first k points (u_share[0] = 0), so the
    # CDF at a merged point is one gather, with no branch for "no point seen yet".
    u_mass = np.zeros(len(u) + 1, np.int64)
    np.cumsum(weights, dtype=np.int64, out=u_mass[1:])
    u_share = u_mass / u_mass[-1]
    del u_mass
    # Both sides are sorted, so a stable sort of the two runs is a linear merge. Along
    # the merged support, integer running counts give both CDFs exactly; at tied values
    # the step to the next point is 0, so the order within a tie does not matter.
    both = np.concatenate((u, v))
    order = np.argsort(both, kind="stable")
    total = 0.0
    seen_before = 0  # reference points before the slice
    # The integrand a slice at a time: a few arrays of the slice's size, not of the
    # samples', and each still in cache when the next step reads it.
    for start in range(0, len(both) - 1, _SLICE):
        stop = min(start + _SLICE, len(both) - 1)
        merged = order[start : stop + 1]
        seen = np.cumsum(merged[:-1] < len(u), dtype=np.int64)  # reference points so far
        seen += seen_before
        seen_before = int(seen[-1])
        v_cdf = np.arange(start + 1, stop + 1) - seen
        gap = u_share[seen]
        gap -= v_cdf / len(v)
        np.abs(gap, out=gap)
        gap *= np.diff(both[merged])
        total += float(np.sum(gap))
    return total


def wasserstein_distance_norm(
    reference_values: ArrayLike,
    current_sorted: ArrayLike,
    reference_std: float,
    reference_counts: ArrayLike | None = None,
) -> float:
    """Wasserstein distance divided by ``max(std(reference), 0.001)``, as Evidently does."""
    distance = wasserstein_distance(reference_values, current_sorted, reference_counts)
    return distance / max(float(reference_std), 0.001)
