"""What a user's ``train(ctx)`` function receives."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrainContext", "seed_everything"]


@dataclass
class TrainContext:
    """Validated data, parameters and seed for one training run.

    ``train`` is the validated training frame (target included); ``validation`` the
    optional validation frame. ``features(frame)`` splits a frame into inputs and target.
    """

    train: pd.DataFrame
    params: dict[str, Any]
    seed: int
    target: str | None = None
    validation: pd.DataFrame | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    _sink: Callable[[str, float, int | None], None] | None = field(default=None, repr=False)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record a metric on the run (the last value per name goes on the model card)."""
        number = float(value)
        self.metrics[name] = number
        if self._sink is not None:
            self._sink(name, number, step)

    def features(self, frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.Series | None]:
        """Split ``frame`` (default: the training frame) into inputs ``X`` and target ``y``."""
        frame = self.train if frame is None else frame
        if self.target is None or self.target not in frame.columns:
            return frame, None
        return frame.drop(columns=[self.target]), frame[self.target]


def seed_everything(seed: int) -> None:
    """Seed Python's and NumPy's global generators so unseeded code is repeatable too."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
