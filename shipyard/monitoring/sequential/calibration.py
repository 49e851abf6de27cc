"""Detector settings from a stated false-alarm rate: per sample, on a stream with no change.

How each rate is achieved (the tests check each by simulation over many seeds):

- **CUSUM** (two-sided, reference value ``k = shift / 2`` on standardised input): the
  threshold ``h`` solves Siegmund's approximation of the in-control average run length
  of one side, ``ARL(h) = (exp(2 k b) - 2 k b - 1) / (2 k^2)`` with ``b = h + 1.166``,
  for ``ARL = 2 / rate`` (two sides, each half the budget). After an alarm the detector
  restarts, so alarms form a renewal process with rate ``1 / ARL``. When the mean and
  standard deviation that standardise the stream were estimated from ``n`` reference
  rows, ``h`` is raised until the rate averaged over their estimation error is the
  stated one (:func:`expected_rate`).
- **Page-Hinkley** (two-sided, ``alpha = 1``, ``delta = shift / 2``): the same threshold.
  Page-Hinkley is a CUSUM around the running mean instead of a known one; estimating the
  mean from the stream itself only makes it more conservative once ``min_samples``
  values are in.
- **ADWIN**: ``delta = rate * clock``. ``delta`` bounds the chance that one check of a
  stream with no change fires and ADWIN checks once every ``clock`` values, so the false
  alarms per value stay below ``rate`` (a loose bound: the measured rate is far lower).

``shift`` is the smallest mean shift, in standard deviations, the detector is tuned for
(0.2 by default: the issue's smallest); larger shifts are caught sooner.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import numpy as np

from shipyard.errors import ConfigError
from shipyard.monitoring.sequential.adwin import ADWIN
from shipyard.monitoring.sequential.base import SequentialDetector
from shipyard.monitoring.sequential.cusum import CUSUM
from shipyard.monitoring.sequential.page_hinkley import PageHinkley

__all__ = ["DetectorKind", "cusum_threshold", "expected_rate", "make_detector", "siegmund_arl"]

DetectorKind = Literal["adwin", "page_hinkley", "cusum"]

ADWIN_CLOCK = 32
_SIEGMUND_CORRECTION = 1.166  # 2 * 0.583: the overshoot of a Gaussian random walk
_NODES = 24  # Gauss-Hermite nodes per estimated quantity
_HERMITE = np.polynomial.hermite_e.hermegauss(_NODES)
_NODES_AND_WEIGHTS = (_HERMITE[0], _HERMITE[1] / _HERMITE[1].sum())  # standard normal


def siegmund_arl(threshold: float, k: float) -> float:
    """In-control average run length of a one-sided CUSUM on N(0, 1) values."""
    return float(_run_length(np.float64(threshold), np.float64(-k)))


def _run_length(threshold: np.ndarray | np.float64, drift: np.ndarray | np.float64) -> Any:
    """Siegmund's average run length of a one-sided CUSUM whose steps have this mean.

    ``drift`` is the mean of ``x - k`` for unit-variance ``x``: negative before a change.
    """
    b = threshold + _SIEGMUND_CORRECTION
    safe = np.where(np.abs(drift) < 1e-9, 1e-9, drift)
    with np.errstate(over="ignore", divide="ignore"):  # an infinite run length is right
        run = (np.exp(-2.0 * safe * b) + 2.0 * safe * b - 1.0) / (2.0 * safe * safe)
    return np.where(np.abs(drift) < 1e-9, b * b, run)


def expected_rate(
    threshold: float, k: float, reference_rows: float | None = None, *, centred: bool = True
) -> float:
    """False alarms per sample of a two-sided CUSUM, averaged over the scale's own error.

    A stream standardised by a mean and standard deviation estimated from
    ``reference_rows`` values is off by about ``1 / sqrt(n)`` in the mean and
    ``1 / sqrt(2 n)`` relative in the scale; with a small ``k`` that matters (a mean off
    by 0.02 sd doubles the false alarms at ``k = 0.1``). This integrates the rate over
    those errors (Gauss-Hermite). ``centred=False`` is for Page-Hinkley, which does not
    use the reference mean, only its scale.
    """
    if reference_rows is None:
        two_sided = 2.0 / _run_length(np.float64(threshold), np.float64(-k))
        return float(two_sided)
    nodes, weights = _NODES_AND_WEIGHTS
    offset = nodes[:, None] / math.sqrt(reference_rows) if centred else np.zeros((1, 1))
    offset_weights = weights[:, None] if centred else np.ones((1, 1))
    scale = 1.0 + nodes[None, :] / math.sqrt(2.0 * reference_rows)
    scale = np.maximum(scale, 0.05)  # far tail of the scale error: keep it positive
    # In units of the stream's true sd: values have mean -offset, k and h scale by s.
    up = 1.0 / _run_length(threshold * scale, -offset - k * scale)
    down = 1.0 / _run_length(threshold * scale, offset - k * scale)
    return float(((up + down) * offset_weights * weights[None, :]).sum())


@functools.lru_cache(maxsize=256)  # a bank asks once per stream, mostly the same question
def cusum_threshold(
    false_alarm_rate: float,
    k: float,
    reference_rows: float | None = None,
    *,
    centred: bool = True,
) -> float:
    """The two-sided CUSUM threshold ``h`` whose false alarms per sample are the rate."""
    low, high = 0.0, 1.0
    while expected_rate(high, k, reference_rows, centred=centred) > false_alarm_rate:
        high *= 2.0
        if high > 1e6:
            raise ConfigError(
                f"no CUSUM threshold reaches a false-alarm rate of {false_alarm_rate} "
                f"with a scale estimated from {reference_rows} values",
                hint="Use a larger reference or min_samples, or a larger shift.",
            )
    for _ in range(60):  # bisection: the rate falls as h grows
        middle = (low + high) / 2.0
        if expected_rate(middle, k, reference_rows, centred=centred) > false_alarm_rate:
            low = middle
        else:
            high = middle
    return high


def make_detector(
    kind: DetectorKind,
    *,
    false_alarm_rate: float = 1e-4,
    min_samples: int = 100,
    shift: float = 0.2,
    reference_rows: float | None = None,
) -> SequentialDetector:
    """A detector whose false alarms per sample of a no-change stream are at most the rate.

    PH and CUSUM expect standardised input (no-change mean 0, standard deviation 1);
    ADWIN takes values on a unit scale, such as 0/1 errors. ``reference_rows`` is how
    many values the standardisation was estimated from (None: known exactly); PH and
    CUSUM thresholds then allow for its error.
    """
    if not 0 < false_alarm_rate < 1:
        raise ConfigError(
            f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}",
            hint="State false alarms per sample, e.g. 1e-4.",
        )
    if shift <= 0:
        raise ConfigError(f"shift must be > 0 standard deviations, got {shift}")
    if kind == "adwin":
        return ADWIN(
            delta=min(false_alarm_rate * ADWIN_CLOCK, 0.5),
            clock=ADWIN_CLOCK,
            grace_period=max(min_samples, 1),
        )
    k = shift / 2.0
    if kind == "cusum":
        threshold = cusum_threshold(false_alarm_rate, k, reference_rows)
        return CUSUM(threshold=threshold, k=k, min_samples=min_samples)
    if kind == "page_hinkley":
        threshold = cusum_threshold(false_alarm_rate, k, reference_rows, centred=False)
        return PageHinkley(threshold=threshold, delta=k, alpha=1.0, min_samples=min_samples)
    raise ConfigError(f"unknown detector {kind!r}", hint="Choose adwin, page_hinkley or cusum.")
