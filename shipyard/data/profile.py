"""Profiles: per-column statistics of a dataset, the reference drift monitoring compares to.

A profile is plain frozen dataclasses that serialise to strict JSON (no NaN, no
infinity) and load back equal. :func:`profile_frame` computes one; it lives in
:mod:`shipyard.data.profiling`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from shipyard.errors import DataError

__all__ = [
    "QUANTILES",
    "CategoryCount",
    "ColumnKind",
    "ColumnProfile",
    "Histogram",
    "Profile",
    "Quantiles",
]

ColumnKind = Literal["numeric", "categorical", "boolean", "datetime"]

QUANTILES: dict[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Quantiles:
    """Quantiles of a numeric column's finite values (linear interpolation)."""

    p01: float
    p05: float
    p25: float
    p50: float
    p75: float
    p95: float
    p99: float


@dataclass(frozen=True)
class CategoryCount:
    """One frequent value of a column: how often it occurs and its share of non-null values."""

    value: str
    count: int
    share: float


@dataclass(frozen=True)
class Histogram:
    """Counts on fixed bins.

    Numeric columns: ``edges`` are ``len(counts) + 1`` bin edges over ``[min, max]`` of
    the finite values (bins are half-open, the last one closed; a constant column has a
    single bin). Categorical and boolean columns: ``labels`` name the top categories
    and ``other`` counts the non-null values outside them.
    """

    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    other: int = 0


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column.

    ``count`` is the number of non-null values (infinities included); ``min``, ``max``,
    ``mean``, ``std`` and ``quantiles`` cover finite values only, and ``inf_count``
    counts the infinite ones. Datetime ``min``/``max`` are ISO-8601 strings in UTC.
    """

    name: str
    kind: ColumnKind
    dtype: str
    count: int
    null_count: int
    null_fraction: float
    distinct: int
    inf_count: int = 0
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: Quantiles | None = None
    top: tuple[CategoryCount, ...] = ()
    other_share: float = 0.0
    histogram: Histogram | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """Rebuild a column profile from :func:`dataclasses.asdict` output (or its JSON)."""
        values = dict(data)
        if values.get("quantiles") is not None:
            values["quantiles"] = Quantiles(**values["quantiles"])
        values["top"] = tuple(CategoryCount(**item) for item in values.get("top", ()))
        if values.get("histogram") is not None:
            histogram = values["histogram"]
            values["histogram"] = Histogram(
                counts=tuple(histogram["counts"]),
                edges=tuple(histogram.get("edges", ())),
                labels=tuple(histogram.get("labels", ())),
                other=histogram.get("other", 0),
            )
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass(frozen=True)
class Profile:
    """A dataset's profile: its row count and one :class:`ColumnProfile` per column."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    @property
    def column_count(self) -> int:
        """Number of columns profiled."""
        return len(self.columns)

    def column(self, name: str) -> ColumnProfile:
        """The profile of the column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r} in this profile")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (finite numbers only)."""
        return {
            "format_version": _FORMAT_VERSION,
            "rows": self.rows,
            "column_count": self.column_count,
            "columns": [asdict(column) for column in self.columns],
        }

    def to_json(self) -> str:
        """Strict JSON text; :meth:`from_json` loads it back equal."""
        return json.dumps(self.to_dict(), allow_nan=False, indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Rebuild a profile from :meth:`to_dict` output."""
        return cls(
            rows=int(data["rows"]),
            columns=tuple(ColumnProfile.from_dict(column) for column in data["columns"]),
        )

    @classmethod
    def from_json(cls, text: str) -> Profile:
        """Parse :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def save(self, path: Path) -> None:
        """Write the profile as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Profile:
        """Read a profile written by :meth:`save`."""
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DataError(
                f"No profile at {path}.",
                hint="Profiles are written by `shipyard data snapshot PATH`.",
            ) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{path} is not a valid Shipyard profile: {exc}",
                hint="Re-create it with `shipyard data snapshot PATH`.",
            ) from exc
