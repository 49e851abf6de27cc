"""The detector contract, scikit-learn's shape: settings, ``fit(reference)``, ``score(current)``.

    detector = PSIDetector().fit(train_frame)       # reference processed once
    drift = detector.score(window_frame)            # DatasetDrift, one DriftResult per column
    drift["plan"].band                              # "ok" | "inspect" | "retrain" | "pause"
    state = detector.to_dict()                      # JSON; load_detector(state) scores again

``fit`` accepts a DataFrame, a dict of NumPy columns or a prepared :class:`Reference`
(so several detectors share one pass over the training data). NaN and ±inf are dropped
before testing, as Evidently does, and counted in every result.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from shipyard.errors import DataError
from shipyard.levels import Level
from shipyard.monitoring.frames import FrameLike, as_frame
from shipyard.monitoring.reference import ColumnReference, Reference
from shipyard.monitoring.results import Bands, DatasetDrift, DriftResult, Kind
from shipyard.monitoring.window import CurrentColumn, read_window

__all__ = ["DriftDetector", "ThresholdDetector", "result", "unscored"]


class DriftDetector(ABC):
    """Base of every detector: ``fit`` learns from the reference, ``score`` tests a window.

    Learned state ends in ``_``: ``reference_`` (a :class:`Reference`) and ``columns_``
    (the columns tested). With ``columns=None`` a detector takes every reference column
    it :meth:`applies_to`. Settings are the ``__init__`` arguments: :meth:`get_params`
    returns them and :meth:`to_dict` stores them with the fitted state.
    """

    method: ClassVar[str]

    def __init__(self, *, columns: Sequence[str] | None = None, drift_share: float = 0.5) -> None:
        self.columns = None if columns is None else tuple(columns)
        self.drift_share = drift_share

    def applies_to(self, column: ColumnReference) -> bool:
        """Whether this detector can test ``column``."""
        return True

    def fit(self, reference: FrameLike | Reference) -> Self:
        """Process the reference once and keep what scoring needs; returns ``self``."""
        if not isinstance(reference, Reference):
            reference = Reference.from_frame(reference, self.columns)
        names = list(reference.columns) if self.columns is None else list(self.columns)
        for name in names:
            if name not in reference.columns:
                raise DataError(f"Column {name!r} is not in the reference.")
            if self.columns is not None and not self.applies_to(reference[name]):
                column = reference[name]
                raise DataError(
                    f"{type(self).__name__} cannot test column {name!r} "
                    f"({column.representation}, {column.distinct} distinct values).",
                    hint="Leave it out of `columns`, or use PSIDetector or AutoDriftDetector.",
                )
        names = [name for name in names if self.applies_to(reference[name])]
        self.reference_ = Reference(reference.rows, {name: reference[name] for name in names})
        self.columns_ = tuple(names)
        self._fit_columns()
        return self

    def _fit_columns(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Hook: precompute per-column state from ``reference_``."""

    def score(self, current: FrameLike) -> DatasetDrift:
        """Test every fitted column of the current window against the reference."""
        if not hasattr(self, "reference_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(reference) first.")
        frame = as_frame(current)
        window = read_window(frame, self.reference_, self.columns_)
        results, skipped = self._score(frame, window)
        return DatasetDrift(self.method, tuple(results), self.drift_share, skipped)

    def _score(
        self, frame: pd.DataFrame, window: Iterator[CurrentColumn]
    ) -> tuple[list[DriftResult], dict[str, str]]:
        """Score a window; the default tests column by column, holding one column at a time."""
        results = []
        for current in window:
            reference = self.reference_[current.name]
            note = missing_values(reference, current)
            if note:
                results.append(unscored(self.method, reference, current, self.threshold, note))
            else:
                results.append(self._score_column(reference, current))
        return results, {}

    @abstractmethod
    def _score_column(self, reference: ColumnReference, current: CurrentColumn) -> DriftResult:
        """Test one column whose reference and current sides both have values."""

    @property
    @abstractmethod
    def threshold(self) -> float:
        """The score (or p-value) at which a column counts as drifted."""

    def get_params(self) -> dict[str, Any]:
        """The settings, by ``__init__`` argument name."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def to_dict(self) -> dict[str, Any]:
        """Settings and fitted state as a JSON-ready mapping (see :func:`load_detector`)."""
        params = {
            key: asdict(value) if isinstance(value, Bands) else value
            for key, value in self.get_params().items()
        }
        if params.get("columns") is not None:
            params["columns"] = list(params["columns"])
        state: dict[str, Any] = {"method": self.method, "params": params}
        if hasattr(self, "reference_"):
            state["reference"] = self.reference_.to_dict()
        return state

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a detector (fitted, if the mapping holds a reference) from :meth:`to_dict`."""
        params: dict[str, Any] = {
            key: Bands(**value) if key == "bands" else value
            for key, value in data["params"].items()
        }
        detector = cls(**params)
        if "reference" in data:
            detector.fit(Reference.from_dict(data["reference"]))
        return detector

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"


class ThresholdDetector(DriftDetector):
    """A detector with one ``threshold`` setting, defaulting to ``default_threshold``."""

    default_threshold: ClassVar[float]

    def __init__(
        self,
        *,
        threshold: float | None = None,
        columns: Sequence[str] | None = None,
        drift_share: float = 0.5,
    ) -> None:
        super().__init__(columns=columns, drift_share=drift_share)
        self._threshold = self.default_threshold if threshold is None else float(threshold)

    @property
    def threshold(self) -> float:
        """The score (or p-value) at which a column counts as drifted."""
        return self._threshold


def result(
    method: str,
    reference: ColumnReference,
    current: CurrentColumn,
    *,
    score: float | None,
    threshold: float,
    drifted: bool,
    p_value: float | None = None,
    band: Level | None = None,
    kind: Kind | None = None,
    unseen: tuple[int, int] = (0, 0),
    out_of_range: int = 0,
    note: str | None = None,
) -> DriftResult:
    """A :class:`DriftResult` carrying both sides' counts."""
    return DriftResult(
        feature=reference.name,
        method=method,
        kind=kind or reference.representation,
        score=score,
        p_value=p_value,
        threshold=threshold,
        drifted=bool(drifted),
        n_reference=reference.n,
        n_current=current.n,
        band=band,
        reference_nan=reference.nan_count,
        reference_inf=reference.inf_count,
        current_nan=current.nan_count,
        current_inf=current.inf_count,
        unseen_categories=unseen[0],
        unseen_rows=unseen[1],
        out_of_range=out_of_range,
        approximate=reference.sketched,
        note=note,
    )


def missing_values(reference: ColumnReference, current: CurrentColumn) -> str | None:
    """Why a column cannot be scored (a side without finite values), or ``None``."""
    sides = [
        side
        for side, column in (("reference", reference), ("current window", current))
        if column.n == 0
    ]
    return f"no finite values in the {' or the '.join(sides)}" if sides else None


def unscored(
    method: str, reference: ColumnReference, current: CurrentColumn, threshold: float, note: str
) -> DriftResult:
    """A result without a score, saying why."""
    return result(
        method, reference, current, score=None, threshold=threshold, drifted=False, note=note
    )


def out_of_range(reference: ColumnReference, current: CurrentColumn) -> int:
    """Number of current finite values outside the reference's [min, max]."""
    low, high = reference.values[0], reference.values[-1]
    return int(np.count_nonzero((current.values < low) | (current.values > high)))
