"""The detectors the agent runs on one model: labelled errors, predictions, each feature.

    bank = StreamBank(config.monitoring.sequential).fit(reference, reference_errors=errors)
    alarms = bank.update(inputs=frame, predictions=scores, errors=new_errors)

Streams are ``error`` (0/1 errors for classification, |residual| for regression, in the
order labels arrive), ``prediction`` (score or value) and ``feature:NAME`` for each
numeric reference column. Detectors see standardised values: features by the reference
mean and standard deviation, errors and predictions by the reference rows' when given,
else by the stream's own first ``min_samples`` values (held back until then, so no alarm
comes before). Each value is first clipped to the 2 % tails of what it is standardised
by, so that one outlier cannot raise an alarm alone. ADWIN sees 0/1 errors as they are.

The stated false-alarm rate is for the whole bank: each of the ``m`` streams gets
``rate / m`` (Bonferroni), so the bank's false alarms per sample of a no-change stream
stay at or below the rate whatever the dependence between streams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from shipyard.config.sequential import SequentialSettings
from shipyard.errors import DataError
from shipyard.jsonable import Record
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.sequential.base import Firing, SequentialDetector
from shipyard.monitoring.sequential.calibration import DetectorKind, make_detector
from shipyard.monitoring.sequential.registry import detector_from_dict

__all__ = ["Alarm", "StreamBank", "Task"]

Task = Literal["classification", "regression"]
ERROR = "error"
CLIP = 0.02  # share of each tail clipped before standardising (see _clipped_scale)
PREDICTION = "prediction"
FEATURE = "feature:"


@dataclass(frozen=True)
class Alarm(Record):
    """A detector's alarm on one stream."""

    stream: str  # "error", "prediction" or "feature:NAME"
    detector: str  # "adwin", "page_hinkley" or "cusum"
    index: int  # in the batch given to update() for this stream
    position: int  # 0-based, in the stream since the bank was fitted
    statistic: float
    threshold: float


@dataclass(frozen=True)
class _Scale:
    """What standardises a stream, and how many values it was estimated from."""

    center: float | None  # None: learned from the stream's first min_samples values
    spread: float | None
    rows: int
    low: float | None = None  # values are clipped to [low, high] before standardising
    high: float | None = None


@dataclass
class _Stream:
    """One stream's detector and how its raw values are put on the detector's scale."""

    detector: SequentialDetector
    center: float | None = None  # None until known (from the reference or a warm-up)
    spread: float | None = None
    low: float | None = None
    high: float | None = None
    raw: bool = False  # fed as is (0/1 errors to ADWIN)
    position: int = 0  # values received, warm-up included
    pending: list[float] = field(default_factory=list)  # warm-up values held back

    def feed(self, values: np.ndarray, min_samples: int) -> list[Firing]:
        """Feed raw values; (index in ``values``, statistic, threshold) of each alarm."""
        self.position += values.size
        if self.raw:
            return self.detector.scan(values)
        if self.center is None:
            return self._warm_up(values, min_samples)
        return self.detector.scan(self._scaled(values))

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        assert self.center is not None and self.spread is not None
        return (np.clip(values, self.low, self.high) - self.center) / self.spread

    def _warm_up(self, values: np.ndarray, min_samples: int) -> list[Firing]:
        held = len(self.pending)
        self.pending.extend(values.tolist())
        pending = np.asarray(self.pending)
        scale = _clipped_scale(pending, np.ones(pending.size), pending.size)
        if len(self.pending) < min_samples or not scale.spread:
            # Not enough values yet, or all equal: nothing to scale by. Equal values carry
            # nothing more than their count: keep a bounded few.
            del self.pending[:-min_samples]
            return []
        self.center, self.spread, self.low, self.high = (
            scale.center,
            scale.spread,
            scale.low,
            scale.high,
        )
        scaled = self._scaled(pending)
        self.pending = []
        # Indices in the joined array minus what was held before this batch.
        return [
            # An alarm on a value held from an earlier batch is reported at this one's first.
            Firing(max(firing.index - held, 0), firing.statistic, firing.threshold)
            for firing in self.detector.scan(scaled)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector.to_dict(),
            "center": self.center,
            "spread": self.spread,
            "low": self.low,
            "high": self.high,
            "raw": self.raw,
            "position": self.position,
            "pending": self.pending,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Stream:
        return cls(
            detector=detector_from_dict(data["detector"]),
            center=data["center"],
            spread=data["spread"],
            low=data["low"],
            high=data["high"],
            raw=bool(data["raw"]),
            position=int(data["position"]),
            pending=[float(value) for value in data["pending"]],
        )


class StreamBank:
    """Sequential detectors on a model's error, prediction and feature streams."""

    def __init__(self, settings: SequentialSettings | None = None) -> None:
        self.settings = settings or SequentialSettings.model_validate({})

    def fit(
        self,
        reference: Reference,
        *,
        features: Sequence[str] | None = None,
        reference_predictions: ArrayLike | None = None,
        reference_errors: ArrayLike | None = None,
        task: Task = "classification",
    ) -> StreamBank:
        """One detector per stream, each at its Bonferroni share of the false-alarm rate."""
        settings = self.settings
        warm_up = _Scale(None, None, settings.min_samples)
        scales: dict[str, _Scale] = {}
        if settings.error != "off":
            scales[ERROR] = _sample_scale(reference_errors) or warm_up
        if settings.prediction != "off":
            scales[PREDICTION] = _sample_scale(reference_predictions) or warm_up
        if settings.features != "off":
            for name in _numeric_features(reference, features):
                scales[FEATURE + name] = _column_scale(reference, name)
        share = settings.false_alarm_rate / max(len(scales), 1)
        self.task_ = task
        self.streams_: dict[str, _Stream] = {}
        for name, scale in scales.items():
            kind = _kind(settings, name)
            raw = kind == "adwin" and name == ERROR and task == "classification"
            detector = make_detector(
                kind,
                false_alarm_rate=share,
                min_samples=settings.min_samples,
                reference_rows=None if raw else scale.rows,
            )
            self.streams_[name] = _Stream(
                detector, scale.center, scale.spread, scale.low, scale.high, raw=raw
            )
        return self

    def update(
        self,
        inputs: pd.DataFrame | None = None,
        predictions: ArrayLike | None = None,
        errors: ArrayLike | None = None,
    ) -> list[Alarm]:
        """Feed what arrived (any part may be None); the alarms it raised, stream by stream.

        Missing or non-finite values are skipped; ``index`` counts them all the same.
        """
        batches: dict[str, np.ndarray] = {}
        if errors is not None:
            batches[ERROR] = _floats(errors, ERROR)
        if predictions is not None:
            batches[PREDICTION] = _floats(predictions, PREDICTION)
        if inputs is not None:
            for name in self.streams_:
                column = name.removeprefix(FEATURE)
                if name.startswith(FEATURE) and column in inputs.columns:
                    numbers = pd.to_numeric(inputs[column], errors="coerce")
                    batches[name] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        alarms: list[Alarm] = []
        for name, values in batches.items():
            stream = self.streams_.get(name)
            if stream is None or values.size == 0:
                continue
            kept = np.flatnonzero(np.isfinite(values))
            start = stream.position
            for firing in stream.feed(values[kept], self.settings.min_samples):
                alarms.append(
                    Alarm(
                        stream=name,
                        detector=stream.detector.kind,
                        index=int(kept[firing.index]),
                        position=start + firing.index,
                        statistic=firing.statistic,
                        threshold=firing.threshold,
                    )
                )
        return alarms

    def to_dict(self) -> dict[str, Any]:
        """Settings and every stream's state, as JSON values."""
        return {
            "settings": self.settings.model_dump(mode="json"),
            "task": self.task_,
            "streams": {name: stream.to_dict() for name, stream in self.streams_.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamBank:
        """The bank :meth:`to_dict` described, ready to continue every stream."""
        bank = cls(SequentialSettings.model_validate(data["settings"]))
        bank.task_ = data["task"]
        bank.streams_ = {
            name: _Stream.from_dict(stream) for name, stream in data["streams"].items()
        }
        return bank


def _kind(settings: SequentialSettings, stream: str) -> DetectorKind:
    """The detector the settings name for a stream (never "off": those have no stream)."""
    if stream == ERROR:
        chosen = settings.error
    elif stream == PREDICTION:
        chosen = settings.prediction
    else:
        chosen = settings.features
    assert chosen != "off"
    return chosen


def _numeric_features(reference: Reference, names: Sequence[str] | None) -> list[str]:
    """The reference's numeric columns that vary (a constant has no scale to detect on)."""
    chosen = list(reference.columns) if names is None else list(names)
    missing = [name for name in chosen if name not in reference.columns]
    if missing:
        raise DataError(
            f"features {missing} are not in the reference",
            hint=f"Reference columns: {', '.join(reference.columns)}.",
        )
    return [
        name
        for name in chosen
        if reference[name].representation == "numeric" and _column_scale(reference, name).spread
    ]


def _column_scale(reference: Reference, name: str) -> _Scale:
    """The clipped mean and standard deviation of a numeric reference column."""
    column = reference[name]
    if column.n == 0:
        return _Scale(0.0, 0.0, 0)
    values = column.values.astype(np.float64)
    return _clipped_scale(values, column.counts.astype(np.float64), column.n)


def _sample_scale(values: ArrayLike | None) -> _Scale | None:
    """The clipped mean and standard deviation of reference values; None to learn them."""
    if values is None:
        return None
    finite = _floats(values, "reference")
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return None
    scale = _clipped_scale(finite, np.ones(finite.size), finite.size)
    # No spread (a model with no reference errors, say): learn the scale online.
    return scale if scale.spread else None


def _clipped_scale(values: np.ndarray, weights: np.ndarray, rows: int) -> _Scale:
    """Mean and sd of the values clipped to their CLIP and 1 - CLIP weighted quantiles.

    Clipping bounds how far one value moves a CUSUM: with heavy tails (lognormal,
    Student t) single outliers otherwise cross the threshold on their own, and the false
    alarms at a stated 4e-6 were measured at 4-5x the rate. Standardising by the
    clipped values' own mean and sd keeps the clipped stream at mean 0 and sd 1.
    """
    order = np.argsort(values, kind="stable")
    ordered, mass = values[order], weights[order]
    cumulative = np.cumsum(mass) / mass.sum()
    last = ordered.size - 1
    low = float(ordered[min(int(np.searchsorted(cumulative, CLIP)), last)])
    high = float(ordered[min(int(np.searchsorted(cumulative, 1.0 - CLIP)), last)])
    if high <= low:  # the tails hold all the spread (a zero-inflated column): keep them
        low, high = float(ordered[0]), float(ordered[-1])
    clipped = np.clip(ordered, low, high)
    mean = float(np.average(clipped, weights=mass))
    spread = float(np.sqrt(np.average((clipped - mean) ** 2, weights=mass)))
    return _Scale(mean, spread, rows, low, high)


def _floats(values: ArrayLike, stream: str) -> np.ndarray:
    """A 1-D float array of a stream's values."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DataError(
            f"the {stream} stream takes one value per row, got shape {array.shape}",
            hint="Pass the positive-class score or the predicted value, one per row.",
        )
    return array
