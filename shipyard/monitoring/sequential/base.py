"""What every sequential change detector shares: batches in, alarm indices out, JSON state.

A detector sees one stream of floats, a batch at a time. ``update(values)`` returns the
indices in the batch where an alarm fired; after an alarm the detector restarts from
scratch on the next value, as river's detectors do, so a lasting change raises one
alarm per restart rather than one per sample. ``to_dict`` holds the settings and the
whole state, so a detector restored from it continues exactly where it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from shipyard.errors import DataError

__all__ = ["Firing", "SequentialDetector"]


@dataclass(frozen=True)
class Firing:
    """One alarm in a batch: where, and the statistic against its threshold then."""

    index: int
    statistic: float
    threshold: float


class SequentialDetector(ABC):
    """A change detector on one stream; subclasses scan a segment until its first alarm."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        self.samples = 0  # values seen since construction, across restarts
        self.alarms = 0  # alarms raised since construction
        self.statistic = 0.0  # the current test statistic, for people
        self.threshold_value = 0.0  # what the statistic is compared with
        self._restart()

    def update(self, values: ArrayLike) -> list[int]:
        """Feed a batch; the indices in it where an alarm fired (restarting after each)."""
        return [firing.index for firing in self.scan(values)]

    def scan(self, values: ArrayLike) -> list[Firing]:
        """Feed a batch; each alarm with its statistic and threshold."""
        batch = np.asarray(values, dtype=np.float64).ravel()
        if batch.size and not np.isfinite(batch).all():
            raise DataError(
                f"{self.kind} got a NaN or infinite value",
                hint="Drop missing values before feeding a detector.",
            )
        fired: list[Firing] = []
        start = 0
        while start < batch.size:
            consumed, alarm = self._scan(batch[start:])
            self.samples += consumed
            if alarm:
                fired.append(Firing(start + consumed - 1, self.statistic, self.threshold_value))
                self.alarms += 1
                self._restart()
            start += consumed
        return fired

    @abstractmethod
    def _restart(self) -> None:
        """Forget the stream: the state of a detector that has seen nothing."""

    @abstractmethod
    def _scan(self, values: np.ndarray) -> tuple[int, bool]:
        """Consume values up to and including the first alarm: (how many, whether it fired)."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The constructor's arguments."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """The learned state, as JSON values."""

    @abstractmethod
    def _load(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_state` wrote."""

    def to_dict(self) -> dict[str, Any]:
        """Settings, counters and state as JSON values."""
        return {
            "kind": self.kind,
            "settings": self.settings(),
            "samples": self.samples,
            "alarms": self.alarms,
            "statistic": self.statistic,
            "threshold": self.threshold_value,
            "state": self._state(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The detector :meth:`to_dict` described, ready to continue the stream."""
        if data.get("kind") != cls.kind:
            raise DataError(
                f"stored detector state is {data.get('kind')!r}, not {cls.kind!r}",
                hint="Reset the detectors with `shipyard monitor detectors NAME --reset`.",
            )
        detector = cls(**data["settings"])
        detector.samples = int(data["samples"])
        detector.alarms = int(data["alarms"])
        detector.statistic = float(data["statistic"])
        detector.threshold_value = float(data["threshold"])
        detector._load(data["state"])
        return detector

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.settings().items())
        return f"{type(self).__name__}({arguments})"
