"""Inferring a pandera schema from training data, and keeping it as YAML in git.

An inferred schema pins, per column: the dtype, nullability, the numeric range seen
(optionally widened), and the allowed values of low-cardinality string columns. It is
strict: a column the schema does not name is a failure.

Two limits have no built-in pandera check that survives ``to_yaml``/``from_yaml``: the
tolerated null fraction per column and the row-count bounds. They live in the schema's
``metadata`` under ``shipyard`` (which pandera reads from YAML but does not write, so
:func:`write_schema` adds it) and :func:`shipyard.data.validate` enforces them::

    metadata:
      shipyard:
        min_rows: 100
        max_rows: null
        max_null_fraction: {age: 0.05}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from shipyard.data._dtypes import column_kind, schema_dtype
from shipyard.data._pandera import errors as pandera_errors
from shipyard.data._pandera import pa
from shipyard.errors import DataError

__all__ = [
    "MIN_ROWS_FRACTION",
    "infer_schema",
    "load_schema",
    "null_fraction_limits",
    "row_bounds",
    "write_schema",
]

# The inferred lower bound on rows: a tenth of the rows seen (and at least one).
MIN_ROWS_FRACTION = 0.1

# Column keys pandera's YAML reader understands besides check names.
_COLUMN_KEYS = frozenset(
    {
        "title", "description", "dtype", "nullable", "checks", "name", "unique", "coerce",
        "required", "regex", "default", "report_duplicates", "drop_invalid_rows",
    }
)  # fmt: skip

_HEADER = """\
# Shipyard data schema (pandera YAML), inferred by `shipyard data schema infer`.
# Commit it; edit it when the data is meant to change. Row-count bounds and the
# tolerated null fraction per column live under metadata.shipyard.
"""


def infer_schema(
    df: pd.DataFrame,
    *,
    null_tolerance: float = 0.0,
    range_margin: float = 0.0,
    max_categories: int = 50,
) -> pa.DataFrameSchema:
    """A strict schema that ``df`` passes, for checking future data against it.

    ``null_tolerance`` is added to each column's observed null fraction (a column
    becomes nullable when nulls were seen or tolerance is above zero).
    ``range_margin`` widens each numeric range on both sides by that fraction of its
    width (of the value itself for a constant column). String columns with at most
    ``max_categories`` distinct values get an allowed-values check.
    """
    if not 0.0 <= null_tolerance <= 1.0:
        raise ValueError(f"null_tolerance must be within [0, 1], not {null_tolerance}")
    if range_margin < 0:
        raise ValueError(f"range_margin must be at least 0, not {range_margin}")
    names = [str(name) for name in df.columns]
    if len(set(names)) != len(names):
        raise DataError(
            "The data has duplicate column names; a schema needs each name once.",
            hint="Rename the duplicated columns.",
        )
    columns: dict[str, pa.Column] = {}
    null_limits: dict[str, float] = {}
    for position, name in enumerate(names):
        series = df.iloc[:, position]
        observed = float(series.isna().mean()) if len(series) else 0.0
        allowed = min(1.0, round(_round_up(observed) + null_tolerance, 6))
        if 0.0 < allowed < 1.0:
            null_limits[name] = allowed
        columns[name] = pa.Column(
            schema_dtype(series),
            checks=_value_checks(series, range_margin, max_categories),
            nullable=allowed > 0.0,
        )
    metadata = {
        "shipyard": {
            "min_rows": max(1, math.floor(len(df) * MIN_ROWS_FRACTION)),
            "max_rows": None,
            "max_null_fraction": null_limits,
        }
    }
    return pa.DataFrameSchema(
        columns,
        strict=True,
        description=f"Inferred by Shipyard from {len(df)} rows.",
        metadata=metadata,
    )


def write_schema(schema: pa.DataFrameSchema, path: Path) -> None:
    """Write ``schema`` as pandera YAML (plus its ``metadata``) to ``path``, for git."""
    document = yaml.safe_load(schema.to_yaml() or "")
    if schema.metadata:
        document["metadata"] = schema.metadata
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_HEADER + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def load_schema(path: Path) -> pa.DataFrameSchema:
    """Read a schema written by :func:`write_schema` (or any pandera YAML schema)."""
    path = Path(path)
    hint = f"Infer one with `shipyard data schema infer DATA -o {path}`."
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(f"No schema at {path}.", hint=hint) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read the schema {path}: {exc}", hint=hint) from exc
    try:
        _reject_unknown_column_keys(yaml.safe_load(text))
        schema = pa.DataFrameSchema.from_yaml(text)
        row_bounds(schema)
        null_fraction_limits(schema)
    except (
        yaml.YAMLError,
        pandera_errors.SchemaDefinitionError,
        pandera_errors.SchemaInitError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise DataError(
            f"{path} is not a valid pandera schema: {exc}",
            hint=f"Fix the YAML by hand, or re-infer it: {hint[0].lower()}{hint[1:]}",
        ) from exc
    return schema


def row_bounds(schema: pa.DataFrameSchema) -> tuple[int | None, int | None]:
    """The ``(min_rows, max_rows)`` a schema allows; ``None`` means unbounded."""
    settings = _shipyard_metadata(schema)
    bounds = settings.get("min_rows"), settings.get("max_rows")
    for bound in bounds:
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise ValueError(f"min_rows and max_rows must be whole numbers or null, not {bound!r}")
    return bounds


def null_fraction_limits(schema: pa.DataFrameSchema) -> dict[str, float]:
    """The largest null fraction tolerated per column, for the columns that have one."""
    limits = _shipyard_metadata(schema).get("max_null_fraction") or {}
    if not isinstance(limits, dict):
        raise ValueError("max_null_fraction must map column names to fractions")
    for name, limit in limits.items():
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1:
            raise ValueError(f"max_null_fraction of {name!r} must be within [0, 1], not {limit!r}")
    return {str(name): float(limit) for name, limit in limits.items()}


def _reject_unknown_column_keys(document: Any) -> None:
    """pandera silently drops column keys it does not know; a misspelt check must not vanish."""
    columns = document.get("columns") if isinstance(document, dict) else None
    if not isinstance(columns, dict):
        return
    for name, column in columns.items():
        for key in column if isinstance(column, dict) else ():
            if key not in _COLUMN_KEYS and not callable(getattr(pa.Check, str(key), None)):
                raise ValueError(f"column {name!r} has unknown key {key!r} (a misspelt check?)")


def _shipyard_metadata(schema: pa.DataFrameSchema) -> dict[str, Any]:
    settings = (schema.metadata or {}).get("shipyard") or {}
    if not isinstance(settings, dict):
        raise ValueError("metadata.shipyard must be a mapping")
    return settings


def _value_checks(series: pd.Series, margin: float, max_categories: int) -> list[pa.Check]:
    kind = column_kind(series)
    present = series.dropna()
    if present.empty:
        return []
    if kind in ("integer", "float"):
        return [_range_check(present, kind == "integer", margin)]
    if kind == "string":
        values = sorted({str(value) for value in pd.unique(present.to_numpy(dtype=object))})
        if len(values) <= max_categories:
            return [pa.Check.isin(values)]
    return []


def _range_check(present: pd.Series, integer: bool, margin: float) -> pa.Check:
    if integer:
        low: float = int(present.min())
        high: float = int(present.max())
    else:
        values = present.to_numpy(dtype="float64")
        low, high = float(values.min()), float(values.max())
    width = high - low if high > low else max(abs(low), abs(high))
    if margin > 0 and np.isfinite(width):
        low, high = low - margin * width, high + margin * width
        if integer:
            low, high = math.floor(low), math.ceil(high)
    return pa.Check.in_range(low, high)


def _round_up(fraction: float, digits: int = 6) -> float:
    """``fraction`` rounded up to ``digits`` decimals, so the data it came from still passes."""
    rounded = round(fraction, digits)
    return rounded if rounded >= fraction else round(rounded + 10.0**-digits, digits)
