"""What a user's ``train(ctx)`` function receives."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from shipyard.features.training_set import TrainingSet

__all__ = ["TrainContext", "seed_everything"]


@dataclass
class TrainContext:
    """Validated data, parameters and seed for one training run.

    ``train`` is the validated training frame (target included; empty when
    ``train.data`` is not set and the function builds its data with
    :meth:`training_set`); ``validation`` the optional validation frame.
    ``features(frame)`` splits a frame into inputs and target.
    """

    train: pd.DataFrame
    params: dict[str, Any]
    seed: int
    target: str | None = None
    validation: pd.DataFrame | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    _sink: Callable[[str, float, int | None], None] | None = field(default=None, repr=False)
    _training_set: Callable[..., TrainingSet] | None = field(default=None, repr=False)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record a metric on the run (the last value per name goes on the model card)."""
        number = float(value)
        self.metrics[name] = number
        if self._sink is not None:
            self._sink(name, number, step)

    def training_set(
        self,
        entities: pd.DataFrame | str | Path,
        features: str | list[str],
        *,
        mode: str = "event_time",
        timestamp_column: str = "event_timestamp",
        full_names: bool = False,
    ) -> TrainingSet:
        """A point-in-time training set of the project's features for ``entities``.

        The run records it: its snapshot is the run's data (when ``train.data`` is not
        set) and the model version's ``shipyard.features`` tag names the features,
        view versions, entity keys, request inputs and the entity set's digest, so
        serving looks the same features up. Train on ``result.inputs(target)``: the
        model's inputs are the feature columns, then the request inputs.
        """
        if self._training_set is None:
            raise ConfigError(
                "ctx.training_set is only available in a run started by `shipyard train`."
            )
        return self._training_set(
            entities,
            features,
            mode=mode,
            timestamp_column=timestamp_column,
            full_names=full_names,
        )

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
