"""The Page-Hinkley test, with river's ``PageHinkley`` semantics, a block at a time.

Each value's deviation from the running mean of the values since the last restart is
accumulated, less a tolerance ``delta``, with forgetting factor ``alpha``:

    up_t   = alpha up_{t-1}   + (x_t - mean_t) - delta     test_up   = up_t - min_{j<=t} up_j
    down_t = alpha down_{t-1} + (x_t - mean_t) + delta     test_down = max_{j<=t} down_j - down_t

and an alarm fires when a watched side's test exceeds ``threshold`` (lambda) once
``min_samples`` values have been seen. river starts the running maximum of ``down`` at
-1, not at -inf; so does this, for parity. The recursions run on NumPy (``cumsum`` when
``alpha`` is 1, else SciPy's first-order ``lfilter``), so values agree with river's loop
to rounding; the tests compare alarm positions over many seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.signal import lfilter

from shipyard.errors import ConfigError
from shipyard.monitoring.sequential.base import SequentialDetector
from shipyard.monitoring.sequential.cusum import BLOCK, Mode

__all__ = ["PageHinkley"]


class PageHinkley(SequentialDetector):
    """Page-Hinkley: a CUSUM around the running mean, so it needs no reference mean."""

    kind = "page_hinkley"

    def __init__(
        self,
        threshold: float = 50.0,
        delta: float = 0.005,
        alpha: float = 1 - 0.0001,
        min_samples: int = 30,
        mode: Mode = "both",
    ) -> None:
        if threshold <= 0 or delta < 0 or not 0 < alpha <= 1:
            raise ConfigError(
                "Page-Hinkley needs threshold > 0, delta ≥ 0 and alpha in (0, 1], "
                f"got {threshold}, {delta}, {alpha}"
            )
        if mode not in ("up", "down", "both"):
            raise ConfigError(f"Page-Hinkley mode must be up, down or both, got {mode!r}")
        self.threshold = float(threshold)
        self.delta = float(delta)
        self.alpha = float(alpha)
        self.min_samples = int(min_samples)
        self.mode: Mode = mode
        super().__init__()
        self.threshold_value = self.threshold

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {
            "threshold": self.threshold,
            "delta": self.delta,
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "mode": self.mode,
        }

    def _restart(self) -> None:
        self._seen = 0
        self._sum = 0.0  # of the values since the restart, for the running mean
        self._up = 0.0
        self._down = 0.0
        self._min_up = math.inf
        self._max_down = -1.0

    def _state(self) -> dict[str, Any]:
        return {
            "seen": self._seen,
            "sum": self._sum,
            "up": self._up,
            "down": self._down,
            # JSON has no infinity: None stands for "no value yet".
            "min_up": None if math.isinf(self._min_up) else self._min_up,
            "max_down": self._max_down,
        }

    def _load(self, state: Mapping[str, Any]) -> None:
        self._seen = int(state["seen"])
        self._sum = float(state["sum"])
        self._up = float(state["up"])
        self._down = float(state["down"])
        self._min_up = math.inf if state["min_up"] is None else float(state["min_up"])
        self._max_down = float(state["max_down"])

    def _scan(self, values: np.ndarray) -> tuple[int, bool]:
        consumed = 0
        while consumed < values.size:
            block = values[consumed : consumed + BLOCK]
            seen = self._seen + np.arange(1, block.size + 1)
            sums = self._sum + np.cumsum(block)
            deviation = block - sums / seen
            up = self._fade(deviation - self.delta, self._up)
            down = self._fade(deviation + self.delta, self._down)
            test_up = up - np.minimum(np.minimum.accumulate(up), self._min_up)
            test_down = np.maximum(np.maximum.accumulate(down), self._max_down) - down
            statistic = _watched(test_up, test_down, self.mode)
            fired = np.flatnonzero((statistic > self.threshold) & (seen >= self.min_samples))
            end = int(fired[0]) + 1 if fired.size else block.size
            last = end - 1
            self._seen += end
            self._sum = float(sums[last])
            self._min_up = min(self._min_up, float(up[:end].min()))
            self._max_down = max(self._max_down, float(down[:end].max()))
            self._up, self._down = float(up[last]), float(down[last])
            self.statistic = float(statistic[last])
            consumed += end
            if fired.size:
                return consumed, True
        return consumed, False

    def _fade(self, steps: np.ndarray, start: float) -> np.ndarray:
        """``s_t = alpha s_{t-1} + steps_t`` from ``s_0 = start``."""
        if self.alpha == 1.0:
            return start + np.cumsum(steps)
        faded: np.ndarray = lfilter([1.0], [1.0, -self.alpha], steps, zi=[self.alpha * start])[0]
        return faded


def _watched(test_up: np.ndarray, test_down: np.ndarray, mode: Mode) -> np.ndarray:
    """The statistic the mode watches."""
    if mode == "up":
        return test_up
    if mode == "down":
        return test_down
    return np.maximum(test_up, test_down)
