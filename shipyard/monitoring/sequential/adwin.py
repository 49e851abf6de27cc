"""ADWIN (Bifet & Gavaldà, 2007) with exponential histograms, as river implements it.

The window is kept as rows of buckets: row ``i`` holds up to ``max_buckets`` summaries
of ``2**i`` values each (their total and variance), so the window costs O(log n) memory
and each value O(1) amortised time. Every ``clock`` values, every cut between buckets is
tested: the older and newer parts differ when ``|mean0 - mean1| > epsilon`` with

    epsilon = sqrt(2 m var ln(2 ln(W) / delta)) + 2/3 m ln(2 ln(W) / delta),
    m = 1/(n0 - L + 1) + 1/(n1 - L + 1), L = min_window_length.

The arithmetic follows river's ``AdaptiveWindowing`` step for step (river 0.26, a Rust
port of its former Cython code), so alarm positions match river's ADWIN on the same
stream; the tests check that over many seeds. Only the first cut that fires matters
here: the detector restarts after an alarm, as river's ADWIN resets on its next value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from shipyard.errors import ConfigError
from shipyard.monitoring.sequential.base import SequentialDetector

__all__ = ["ADWIN"]


class ADWIN(SequentialDetector):
    """Adaptive windowing: alarms when two sub-windows' means differ beyond a bound.

    ``delta`` bounds the chance that one check of a stream with no change fires;
    checks happen every ``clock`` values once the window holds more than
    ``grace_period`` values, so the false alarms per value stay below
    ``delta / clock`` (the bound is loose: the measured rate is far lower).
    """

    kind = "adwin"

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        if not 0 < delta < 1:
            raise ConfigError(f"ADWIN delta must be in (0, 1), got {delta}")
        if clock < 1 or max_buckets < 2 or grace_period < 1:
            raise ConfigError("ADWIN clock and grace_period must be ≥ 1 and max_buckets ≥ 2")
        self.delta = float(delta)
        self.clock = int(clock)
        self.max_buckets = int(max_buckets)
        self.min_window_length = int(min_window_length)
        self.grace_period = int(grace_period)
        super().__init__()

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {
            "delta": self.delta,
            "clock": self.clock,
            "max_buckets": self.max_buckets,
            "min_window_length": self.min_window_length,
            "grace_period": self.grace_period,
        }

    @property
    def width(self) -> int:
        """Values in the current window."""
        return int(self._width)

    @property
    def estimation(self) -> float:
        """Mean of the current window."""
        return self._total / self._width if self._width else 0.0

    def _restart(self) -> None:
        self._totals: list[list[float]] = [[]]
        self._variances: list[list[float]] = [[]]
        self._total = 0.0
        self._variance = 0.0
        self._width = 0.0
        self._tick = 0

    def _state(self) -> dict[str, Any]:
        return {
            "totals": self._totals,
            "variances": self._variances,
            "total": self._total,
            "variance": self._variance,
            "width": self._width,
            "tick": self._tick,
        }

    def _load(self, state: Mapping[str, Any]) -> None:
        self._totals = [[float(v) for v in row] for row in state["totals"]]
        self._variances = [[float(v) for v in row] for row in state["variances"]]
        self._total = float(state["total"])
        self._variance = float(state["variance"])
        self._width = float(state["width"])
        self._tick = int(state["tick"])

    def _scan(self, values: np.ndarray) -> tuple[int, bool]:
        # The per-value path keeps its numbers in locals (this loop is ADWIN's cost) and
        # writes them back before a check and at the end.
        clock, grace, full = self.clock, self.grace_period, self.max_buckets + 1
        newest_totals, newest_variances = self._totals[0], self._variances[0]
        width, total, variance, tick = self._width, self._total, self._variance, self._tick
        position = 0
        for position, value in enumerate(values.tolist(), start=1):
            newest_totals.append(value)
            newest_variances.append(0.0)
            # Streaming variance update, in river's order of operations (bit-for-bit).
            width += 1.0
            if width > 1.0:
                deviation = value - total / (width - 1.0)
                variance += (width - 1.0) * deviation * deviation / width
            total += value
            if len(newest_totals) == full:
                self._merge()
            tick += 1
            if tick % clock == 0 and width > grace:
                self._width, self._total, self._variance, self._tick = width, total, variance, tick
                if self._check():
                    return position, True
        self._width, self._total, self._variance, self._tick = width, total, variance, tick
        return position, False

    def _merge(self) -> None:
        """Merge the two oldest buckets of each full row into the next row, upwards."""
        totals, variances = self._totals, self._variances
        row = 0
        while len(totals[row]) == self.max_buckets + 1:
            size = float(1 << row)
            t0, t1 = totals[row][0], totals[row][1]
            mu1, mu2 = t0 / size, t1 / size
            spread = size * 0.5 * (mu1 - mu2) * (mu1 - mu2)
            merged_variance = variances[row][0] + variances[row][1] + spread
            if row + 1 == len(totals):
                totals.append([])
                variances.append([])
            totals[row + 1].append(t0 + t1)
            variances[row + 1].append(merged_variance)
            del totals[row][:2]
            del variances[row][:2]
            if len(totals[row + 1]) <= self.max_buckets:
                break
            row += 1

    def _check(self) -> bool:
        """Test every cut, oldest first; whether one shows a change."""
        width, total = self._width, self._total
        least = float(self.min_window_length)
        delta_prime = math.log(2.0 * math.log(width) / self.delta)
        variance_mean = self._variance / width
        n0 = 0.0
        n1 = width
        u0 = 0.0
        u1 = total
        best_margin = -math.inf
        for row in range(len(self._totals) - 1, -1, -1):
            size = float(1 << row)
            row_totals = self._totals[row]
            last = len(row_totals) - 1
            for k, bucket_total in enumerate(row_totals):
                n0 += size
                n1 -= size
                u0 += bucket_total
                u1 -= bucket_total
                if row == 0 and k == last:
                    break  # the newest bucket alone is never a sub-window
                if n1 < least or n0 < least:
                    continue
                difference = abs((u0 / n0) - (u1 / n1))
                m_recip = 1.0 / (n0 - least + 1.0) + 1.0 / (n1 - least + 1.0)
                epsilon = math.sqrt(2.0 * m_recip * variance_mean * delta_prime) + (
                    2.0 / 3.0 * delta_prime * m_recip
                )
                if difference - epsilon > best_margin:
                    best_margin = difference - epsilon
                    self.statistic, self.threshold_value = difference, epsilon
                if difference > epsilon:
                    return True
        return False
