"""The reference side of drift detection, processed once and stored as JSON.

A :class:`Reference` holds, for every column of the training data, what any detector
needs: the distinct finite values with their counts (sorted ``float64`` for numeric
columns, JSON scalars for categorical ones), the NaN and ±inf counts, and the
population standard deviation. Histograms, quantile edges, sorted samples and
category frequencies are all derived from it, so one reference serves every detector
and is never re-read.

    reference = Reference.from_frame(train_frame)        # one pass per column
    Path("reference.json").write_text(reference.to_json())
    detector = AutoDriftDetector().fit(Reference.from_json(text))

Numeric arrays are stored as base64 little-endian bytes inside the JSON: exact, and
about 11 characters per value. A continuous column keeps one entry per distinct value;
pass ``max_points`` to keep at most that many equal-mass points instead (a quantile
sketch: Wasserstein and KS then become approximate, and the result says so).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shipyard.errors import DataError
from shipyard.monitoring.frames import FrameLike, as_frame, json_key, numeric_values

__all__ = ["ColumnReference", "Reference", "Representation", "sorted_counts"]

Representation = Literal["numeric", "categorical"]

# Evidently bins a numeric column value by value when the reference has at most this
# many distinct values (legacy/calculations/stattests/utils.py, get_binned_data).
DISCRETE_MAX_DISTINCT = 20

_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class ColumnReference:
    """One reference column: distinct finite values, their counts, and what was dropped.

    ``values`` are sorted ``float64`` for numeric columns and JSON scalars (``str``,
    ``int``, ``float``, ``bool``) for categorical ones; ``counts`` align with them.
    ``n`` is the number of values tests use (finite, non-null). ``sketched`` means
    ``values`` are equal-mass quantile points rather than the exact distinct values.
    """

    name: str
    representation: Representation
    dtype: str
    values: np.ndarray
    counts: np.ndarray
    nan_count: int = 0
    posinf_count: int = 0
    neginf_count: int = 0
    std: float | None = None
    sketched: bool = False

    @property
    def n(self) -> int:
        """Number of finite, non-null reference values."""
        return int(self.counts.sum())

    @property
    def inf_count(self) -> int:
        """Number of ±inf values dropped from the reference."""
        return self.posinf_count + self.neginf_count

    @property
    def distinct(self) -> int:
        """Number of distinct finite values (of the sketch, if sketched)."""
        return len(self.values)

    @property
    def discrete(self) -> bool:
        """Whether tests compare this column value by value rather than on bins."""
        return self.representation == "categorical" or self.distinct <= DISCRETE_MAX_DISTINCT

    @cached_property
    def sample(self) -> np.ndarray:
        """The sorted reference sample, rebuilt from values and counts (numeric only)."""
        return np.repeat(self.values, self.counts)

    @cached_property
    def cumulative(self) -> np.ndarray:
        """``cumulative[i]`` = number of reference values ≤ ``values[i]``."""
        return np.cumsum(self.counts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (finite numbers only)."""
        values: Any = (
            _encode(self.values) if self.representation == "numeric" else list(self.values)
        )
        return {
            "name": self.name,
            "representation": self.representation,
            "dtype": self.dtype,
            "values": values,
            # Counts are mostly small (all 1 for a continuous column): store the narrowest type.
            "counts": _encode(self.counts.astype(np.min_scalar_type(self.counts.max(initial=0)))),
            "nan_count": self.nan_count,
            "posinf_count": self.posinf_count,
            "neginf_count": self.neginf_count,
            "std": self.std,
            "sketched": self.sketched,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnReference:
        """Rebuild a column reference from :meth:`to_dict` output."""
        representation = data["representation"]
        if representation == "numeric":
            values = _decode(data["values"]).astype(np.float64)
        else:
            values = np.array([*data["values"], None], dtype=object)[:-1]
        return cls(
            name=str(data["name"]),
            representation=representation,
            dtype=str(data["dtype"]),
            values=values,
            counts=narrow_counts(_decode(data["counts"])),
            nan_count=int(data.get("nan_count", 0)),
            posinf_count=int(data.get("posinf_count", 0)),
            neginf_count=int(data.get("neginf_count", 0)),
            std=None if data.get("std") is None else float(data["std"]),
            sketched=bool(data.get("sketched", False)),
        )


@dataclass(frozen=True)
class Reference:
    """The processed reference dataset: its row count and one :class:`ColumnReference` each."""

    rows: int
    columns: Mapping[str, ColumnReference] = field(default_factory=dict)

    @classmethod
    def from_frame(
        cls,
        data: FrameLike,
        columns: Iterable[str] | None = None,
        *,
        max_points: int | None = None,
    ) -> Reference:
        """Process a reference frame (or dict of arrays) once, column by column.

        Datetime columns are left out unless named in ``columns`` (then they are an
        error). ``max_points`` caps the stored points of each numeric column (≥ 100).
        """
        if max_points is not None and max_points < 100:
            raise DataError(
                f"max_points={max_points} is too small to summarise a reference column.",
                hint="Use at least 100 points, or None to keep every distinct value.",
            )
        frame = as_frame(data)
        names = list(frame.columns) if columns is None else list(columns)
        explicit = columns is not None
        summaries: dict[str, ColumnReference] = {}
        for name in names:
            if name not in frame.columns:
                raise DataError(
                    f"Column {name!r} is not in the reference data.",
                    hint=f"Reference columns: {', '.join(map(str, frame.columns))}.",
                )
            series = frame[name]
            if ptypes.is_datetime64_any_dtype(series.dtype):
                if explicit:
                    raise DataError(
                        f"Column {name!r} holds datetimes; drift statistics need values.",
                        hint="Leave it out of `columns`, or derive a numeric feature from it.",
                    )
                continue
            summaries[str(name)] = _summarise(str(name), series, max_points)
        return cls(rows=len(frame), columns=summaries)

    def __getitem__(self, name: str) -> ColumnReference:
        return self.columns[name]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "format_version": _FORMAT_VERSION,
            "rows": self.rows,
            "columns": [column.to_dict() for column in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        """Rebuild a reference from :meth:`to_dict` output."""
        version = data.get("format_version", _FORMAT_VERSION)
        if version != _FORMAT_VERSION:
            raise DataError(
                f"Reference format {version} is not supported (expected {_FORMAT_VERSION}).",
                hint="Fit the detector again on the reference data.",
            )
        columns = [ColumnReference.from_dict(item) for item in data["columns"]]
        return cls(rows=int(data["rows"]), columns={column.name: column for column in columns})

    def to_json(self) -> str:
        """Strict JSON text (no NaN, no infinity); :meth:`from_json` loads it back."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Reference:
        """Parse :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write the reference to one uncompressed ``.npz`` file; :meth:`load` reads it back.

        Numeric values and all counts are stored as the arrays they are (8 bytes a
        float instead of JSON's ~11 base64 characters), so a large reference is written
        and read without building its whole text in memory; the rest (names, dtypes,
        NaN/inf counts, category values) is JSON inside the same file.
        """
        target = Path(path)
        meta: list[dict[str, Any]] = []
        arrays: dict[str, Any] = {}  # (savez types its keyword arguments as flags)
        for index, column in enumerate(self.columns.values()):
            entry = column.to_dict()
            del entry["counts"]
            arrays[f"counts_{index}"] = column.counts
            if column.representation == "numeric":
                del entry["values"]
                arrays[f"values_{index}"] = column.values
            meta.append(entry)
        header = {"format_version": _FORMAT_VERSION, "rows": self.rows, "columns": meta}
        encoded = np.frombuffer(json.dumps(header, allow_nan=False).encode(), dtype=np.uint8)
        with target.open("wb") as handle:
            np.savez(handle, meta=encoded, **arrays)
        return target

    @classmethod
    def load(cls, path: str | Path) -> Reference:
        """Read a reference written by :meth:`save` (no pickled objects are ever loaded)."""
        source = Path(path)
        try:
            with np.load(source, allow_pickle=False) as stored:
                header = json.loads(bytes(stored["meta"]).decode())
                version = header.get("format_version")
                if version != _FORMAT_VERSION:
                    raise DataError(
                        f"{source}: reference format {version} is not supported "
                        f"(expected {_FORMAT_VERSION}).",
                        hint="Fit the detector again on the reference data and save it.",
                    )
                columns = []
                for index, entry in enumerate(header["columns"]):
                    counts = stored[f"counts_{index}"]
                    if entry["representation"] == "numeric":
                        values = stored[f"values_{index}"].astype(np.float64, copy=False)
                    else:
                        values = np.array([*entry["values"], None], dtype=object)[:-1]
                    columns.append(
                        ColumnReference(
                            name=str(entry["name"]),
                            representation=entry["representation"],
                            dtype=str(entry["dtype"]),
                            values=values,
                            counts=narrow_counts(counts),
                            nan_count=int(entry["nan_count"]),
                            posinf_count=int(entry["posinf_count"]),
                            neginf_count=int(entry["neginf_count"]),
                            std=None if entry["std"] is None else float(entry["std"]),
                            sketched=bool(entry["sketched"]),
                        )
                    )
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(
                f"{source} is not a reference saved by Reference.save: {exc}.",
                hint="Save it again with Reference.save, or load a JSON one with from_json.",
            ) from exc
        return cls(rows=int(header["rows"]), columns={column.name: column for column in columns})


def is_numeric_column(series: pd.Series) -> bool:
    """Whether a column's values are numbers (booleans count as 0/1; categories never)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    if ptypes.is_bool_dtype(dtype) or ptypes.is_numeric_dtype(dtype):
        return True
    if ptypes.is_object_dtype(dtype):
        inferred = ptypes.infer_dtype(series, skipna=True)
        return inferred in {"integer", "floating", "mixed-integer-float", "boolean", "decimal"}
    return False


def _summarise(name: str, series: pd.Series, max_points: int | None) -> ColumnReference:
    if is_numeric_column(series):
        raw = numeric_values(series, name)
        is_finite = np.isfinite(raw)
        if is_finite.all():  # the common case: no NaN, no ±inf, nothing to count or drop
            finite, nan_count, posinf = raw, 0, 0
        else:
            finite = raw[is_finite]
            nan_count = int(np.count_nonzero(np.isnan(raw)))
            posinf = int(np.count_nonzero(raw == np.inf))
        del is_finite
        # In the data's order, as Evidently's np.std sums it.
        std = float(np.std(finite)) if len(finite) else None
        ordered = np.sort(finite)
        values, counts = sorted_counts(ordered)
        sketched = max_points is not None and len(values) > max_points
        if sketched:
            assert max_points is not None
            values, counts = _sketch(ordered, max_points)
        return ColumnReference(
            name=name,
            representation="numeric",
            dtype=str(series.dtype),
            values=values.astype(np.float64, copy=False),
            counts=narrow_counts(counts),
            nan_count=nan_count,
            posinf_count=posinf,
            neginf_count=len(raw) - len(finite) - nan_count - posinf,
            std=std,
            sketched=sketched,
        )
    keys, counts = category_counts(series)
    return ColumnReference(
        name=name,
        representation="categorical",
        dtype=str(series.dtype),
        values=keys,
        counts=counts,
        nan_count=int(series.isna().sum()),
    )


def sorted_counts(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and their counts (``np.unique`` without its sort).

    When every value is distinct, as in most continuous columns, the values are the
    array itself and the counts are ones (``int8``): no gather, no second array of
    ``int64`` positions.
    """
    if len(ordered) == 0:
        return ordered, np.zeros(0, dtype=np.int8)
    starts = np.empty(len(ordered), dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    if starts.all():
        return ordered, np.ones(len(ordered), dtype=np.int8)
    positions = np.flatnonzero(starts)
    del starts
    counts = np.empty(len(positions), dtype=np.int64)
    np.subtract(positions[1:], positions[:-1], out=counts[:-1])
    counts[-1] = len(ordered) - positions[-1]
    return ordered[positions], counts


def category_counts(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-null values of a column (as JSON scalars) and their counts."""
    counted = series.value_counts(dropna=True, sort=False)
    keys = [json_key(value) for value in counted.index]
    counts = counted.to_numpy(dtype=np.int64)
    if len(set(keys)) != len(keys):  # two values with one JSON form: merge them
        merged = pd.Series(counts).groupby(pd.Series(keys, dtype=object), sort=False).sum()
        keys, counts = list(merged.index), merged.to_numpy(dtype=np.int64)
    return np.array([*keys, None], dtype=object)[:-1], counts


def narrow_counts(counts: np.ndarray) -> np.ndarray:
    """Counts in the narrowest signed integer type that holds them.

    A continuous column has one count per distinct value, nearly all 1: ``int8`` keeps
    its reference at 9 bytes a value instead of 16. Signed, so arithmetic with other
    counts promotes to ``int64`` rather than to ``float64``; sums and cumulative sums
    are taken in ``int64`` by NumPy.
    """
    largest = int(counts.max(initial=0))
    for dtype in (np.int8, np.int16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return counts.astype(dtype)
    return counts.astype(np.int64)


def _sketch(ordered: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-mass groups of a sorted sample, each represented by its mean."""
    bounds = np.linspace(0, len(ordered), points + 1).astype(np.int64)
    starts = np.unique(bounds[:-1])
    sizes = np.diff(np.append(starts, len(ordered)))
    means = np.add.reduceat(ordered, starts) / sizes
    # Means of sorted groups are sorted; clipping guards against rounding past a neighbour.
    return np.maximum.accumulate(means), sizes


def _encode(array: np.ndarray) -> dict[str, str]:
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": little.dtype.str, "base64": base64.b64encode(little.tobytes()).decode()}


def _decode(data: Mapping[str, str]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data["base64"]), dtype=np.dtype(data["dtype"])).copy()
