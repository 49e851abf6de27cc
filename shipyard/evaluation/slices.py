"""Slices and groups: the rows a criterion applies to, and metric gaps across groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.config import FairnessCriterion, SliceSpec
from shipyard.errors import EvaluationError
from shipyard.evaluation.metrics import Task, compute_metric

if TYPE_CHECKING:
    from shipyard.evaluation.predictions import Predictions

__all__ = ["FairnessMeasurement", "SliceMeasurement", "fairness_groups", "slice_mask"]


@dataclass(frozen=True)
class SliceMeasurement:
    """Metrics on the rows of one slice."""

    label: str
    rows: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class FairnessMeasurement:
    """A metric per group of a protected column; groups too small or undefined are ignored."""

    metric: str
    column: str
    groups: dict[str, float]
    rows: dict[str, int]
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """How the criterion is shown, e.g. ``recall gap across region``."""
        return f"{self.metric} gap across {self.column}"

    @property
    def gap(self) -> float | None:
        """max − min of the group metrics; ``None`` with fewer than two groups."""
        if len(self.groups) < 2:
            return None
        values = list(self.groups.values())
        return max(values) - min(values)


def _columns_hint(frame: pd.DataFrame) -> str:
    return ", ".join(str(column) for column in frame.columns)


def slice_mask(frame: pd.DataFrame, spec: SliceSpec) -> np.ndarray:
    """Boolean mask of the rows in the slice; :class:`EvaluationError` if it is empty."""
    if spec.query is not None:
        try:
            # DataFrame.query is .loc[eval(expr)]: eval gives the mask without a copy.
            selected: Any = frame.eval(spec.query)
        except Exception as exc:
            raise EvaluationError(
                f"The slice query {spec.query!r} failed: {type(exc).__name__}: {exc}",
                hint="Write a pandas query over the golden set's columns "
                f'({_columns_hint(frame)}); quote strings, e.g. segment == "smb".',
            ) from None
        if not isinstance(selected, pd.Series) or selected.dtype != bool:
            raise EvaluationError(
                f"The slice query {spec.query!r} is not a condition on rows.",
                hint='Write a comparison, e.g. tenure_months < 12 or region == "west".',
            )
        mask = selected.to_numpy(dtype=bool)
    else:
        column = str(spec.column)
        if column not in frame.columns:
            raise EvaluationError(
                f"The slice {spec.label} names the column {column!r}, which the golden set "
                "does not have.",
                hint=f"Use one of its columns: {_columns_hint(frame)}.",
            )
        mask = (frame[column] == spec.value).to_numpy(dtype=bool, na_value=False)
    if not mask.any():
        raise EvaluationError(
            f"The slice {spec.label} selects no rows.", hint=_empty_hint(frame, spec)
        )
    return mask


def _empty_hint(frame: pd.DataFrame, spec: SliceSpec) -> str:
    if spec.column is not None:
        values = frame[spec.column].dropna().unique()[:10]
        shown = ", ".join(repr(_plain(v)) for v in values)
        return f"Values of {spec.column} in the golden set include: {shown}."
    return "Check the query against the golden set's values, or change the slice."


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def fairness_groups(
    frame: pd.DataFrame,
    criterion: FairnessCriterion,
    y_true: np.ndarray,
    predictions: Predictions,
    task: Task,
) -> FairnessMeasurement:
    """The criterion's metric on each group of ``criterion.column`` with enough rows."""
    if criterion.column not in frame.columns:
        raise EvaluationError(
            f"The fairness criterion names the column {criterion.column!r}, which the golden "
            "set does not have.",
            hint=f"Use one of its columns: {_columns_hint(frame)}.",
        )
    codes, uniques = frame[criterion.column].factorize()  # missing values get code -1
    sizes = np.bincount(codes[codes >= 0], minlength=len(uniques))
    groups: dict[str, float] = {}
    rows: dict[str, int] = {}
    ignored: dict[str, str] = {}
    for code, value in enumerate(uniques):
        key = str(_plain(value))
        size = int(sizes[code])
        if size < criterion.min_rows:
            ignored[key] = f"{size} rows < {criterion.min_rows}"
            continue
        mask = codes == code
        result = compute_metric(criterion.metric, y_true[mask], predictions.subset(mask), task=task)
        if np.isnan(result):
            ignored[key] = f"{criterion.metric} undefined"
            continue
        groups[key], rows[key] = result, size
    return FairnessMeasurement(
        metric=criterion.metric,
        column=criterion.column,
        groups=dict(sorted(groups.items())),
        rows=dict(sorted(rows.items())),
        ignored=dict(sorted(ignored.items())),
    )
