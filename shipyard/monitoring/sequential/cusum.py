"""Two-sided tabular CUSUM (Page, 1954) on a standardised stream.

The input is expected in units of its no-change standard deviation, centred on its
no-change mean (the stream bank standardises by the reference). With reference value
``k`` (half the shift to detect, in standard deviations) the two sides are

    high_t = max(0, high_{t-1} + x_t - k)      low_t = max(0, low_{t-1} - x_t - k)

and an alarm fires when either exceeds ``threshold`` (``h``) once ``min_samples`` values
have been seen since the last restart. The recursion is evaluated a block at a time with
NumPy: ``high_t = C_t - min(-high_0, min_{j<=t} C_j)`` where ``C`` is the cumulative sum
of ``x - k`` over the block (Lindley's form), which gives the same numbers as the loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from shipyard.errors import ConfigError
from shipyard.monitoring.sequential.base import SequentialDetector

__all__ = ["CUSUM", "Mode"]

Mode = Literal["up", "down", "both"]

# Work in blocks so a restart after an early alarm re-reads little, and cumulative sums
# stay short enough that rounding does not build up.
BLOCK = 2048


class CUSUM(SequentialDetector):
    """Page's CUSUM for a shift in the mean of a standardised stream, up, down or both."""

    kind = "cusum"

    def __init__(
        self, threshold: float = 5.0, k: float = 0.1, min_samples: int = 100, mode: Mode = "both"
    ) -> None:
        if threshold <= 0 or k < 0:
            raise ConfigError(f"CUSUM needs threshold > 0 and k ≥ 0, got {threshold}, {k}")
        if mode not in ("up", "down", "both"):
            raise ConfigError(f"CUSUM mode must be up, down or both, got {mode!r}")
        self.threshold = float(threshold)
        self.k = float(k)
        self.min_samples = int(min_samples)
        self.mode: Mode = mode
        super().__init__()
        self.threshold_value = self.threshold

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {
            "threshold": self.threshold,
            "k": self.k,
            "min_samples": self.min_samples,
            "mode": self.mode,
        }

    def _restart(self) -> None:
        self._seen = 0
        self._high = 0.0
        self._low = 0.0

    def _state(self) -> dict[str, Any]:
        return {"seen": self._seen, "high": self._high, "low": self._low}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._seen = int(state["seen"])
        self._high = float(state["high"])
        self._low = float(state["low"])

    def _scan(self, values: np.ndarray) -> tuple[int, bool]:
        consumed = 0
        while consumed < values.size:
            block = values[consumed : consumed + BLOCK]
            high = _lindley(block - self.k, self._high)
            low = _lindley(-block - self.k, self._low)
            statistic = _sided(high, low, self.mode)
            seen = self._seen + np.arange(1, block.size + 1)
            fired = np.flatnonzero((statistic > self.threshold) & (seen >= self.min_samples))
            end = int(fired[0]) + 1 if fired.size else block.size
            self._seen += end
            self._high, self._low = float(high[end - 1]), float(low[end - 1])
            self.statistic = float(statistic[end - 1])
            consumed += end
            if fired.size:
                return consumed, True
        return consumed, False


def _lindley(steps: np.ndarray, start: float) -> np.ndarray:
    """``s_t = max(0, s_{t-1} + steps_t)`` from ``s_0 = start``, for a whole block."""
    walk = np.cumsum(steps)
    floor = np.minimum(np.minimum.accumulate(walk), -start)
    return walk - floor


def _sided(high: np.ndarray, low: np.ndarray, mode: Mode) -> np.ndarray:
    """The statistic the mode watches."""
    if mode == "up":
        return high
    if mode == "down":
        return low
    return np.maximum(high, low)
