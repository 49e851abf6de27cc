"""Failed checks: one row per (column, check), built from pandera's failure cases.

pandera lists one failure case per offending value; a report wants one line per
failed check saying what was seen, what was expected, and a few offending values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from shipyard.data._pandera import pa

__all__ = ["MAX_SAMPLES", "CheckFailure", "failures_from_cases", "json_value"]

MAX_SAMPLES = 5
_MAX_LISTED_VALUES = 8

# pandera's column-presence checks: our check name, what was observed, what was expected.
_COLUMN_PRESENCE = {
    "column_in_schema": (
        "unknown_column",
        "present in the data",
        "not in the schema, which is strict",
    ),
    "column_in_dataframe": (
        "missing_column",
        "absent from the data",
        "a column the schema requires",
    ),
}


@dataclass(frozen=True)
class CheckFailure:
    """One failed check on one column (``column`` is ``None`` for table-level checks).

    ``observed`` and ``expected`` are short human-readable texts; ``samples`` holds up
    to five distinct offending values as JSON values.
    """

    column: str | None
    check: str
    observed: str
    expected: str
    samples: list[Any]


def json_value(value: Any) -> Any:
    """``value`` as something :func:`json.dumps` accepts: nulls become ``None``, ±inf text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def failures_from_cases(
    cases: pd.DataFrame, schema: pa.DataFrameSchema, rows: int
) -> list[CheckFailure]:
    """Collapse pandera's ``SchemaErrors.failure_cases`` into one failure per (column, check)."""
    failures: list[CheckFailure] = []
    for (context, column, check), group in cases.groupby(
        ["schema_context", "column", "check"], dropna=False, sort=False
    ):
        values = group["failure_case"]
        if check in _COLUMN_PRESENCE:
            name, observed, expected = _COLUMN_PRESENCE[check]
            failures.extend(
                CheckFailure(
                    column=str(missing),
                    check=name,
                    observed=observed,
                    expected=expected,
                    samples=[],
                )
                for missing in values
            )
        elif check == "not_nullable":
            observed = _share(len(group), rows, "null")
            failures.append(
                CheckFailure(
                    column=str(column),
                    check="not_nullable",
                    observed=observed,
                    expected="no nulls",
                    samples=[],
                )
            )
        else:
            table_level = context == "DataFrameSchema" or _is_null(column)
            owner = None if table_level else str(column)
            failures.append(_value_failure(owner, str(check), group, schema, rows))
    return failures


def _value_failure(
    column: str | None, check_text: str, group: pd.DataFrame, schema: pa.DataFrameSchema, rows: int
) -> CheckFailure:
    check = _find_check(schema, column, group["check_number"].iloc[0])
    name = check.name if check is not None and check.name else check_text.split("(")[0]
    expected = _describe(check) if check is not None else check_text
    values = group["failure_case"]
    if group["index"].isna().all() and len(group) == 1:
        # A check with one verdict for the whole column or table, not one per value:
        # pandera reports ``False`` when it failed, or the error text when it raised.
        verdict = values.iloc[0]
        if isinstance(verdict, bool | np.bool_):
            return CheckFailure(column, name, "failed", expected, [])
        return CheckFailure(column, name, f"check errored: {verdict}", expected, [])
    noun = "unseen value" if name == "isin" else "failing value"
    samples = pd.unique(values.to_numpy(dtype=object))[:MAX_SAMPLES]
    return CheckFailure(
        column, name, _share(len(group), rows, noun), expected, [json_value(v) for v in samples]
    )


def _find_check(schema: pa.DataFrameSchema, column: str | None, number: Any) -> pa.Check | None:
    if _is_null(number):
        return None
    checks = schema.checks if column is None else getattr(schema.columns.get(column), "checks", [])
    position = int(number)
    return checks[position] if 0 <= position < len(checks) else None


def _describe(check: pa.Check) -> str:
    """What a check expects, in words."""
    stats = dict(check.statistics or {})
    if check.name == "in_range":
        low = "[" if stats.get("include_min", True) else "("
        high = "]" if stats.get("include_max", True) else ")"
        return f"within {low}{stats['min_value']}, {stats['max_value']}{high}"
    if check.name == "isin":
        allowed = sorted(str(value) for value in stats["allowed_values"])
        listed = ", ".join(allowed[:_MAX_LISTED_VALUES])
        more = len(allowed) - _MAX_LISTED_VALUES
        return f"one of {listed}" + (f" (+{more} more)" if more > 0 else "")
    if stats:
        args = ", ".join(f"{key}={value}" for key, value in stats.items())
        return f"{check.name}({args})"
    return str(check.name or check)


def _share(count: int, rows: int, noun: str) -> str:
    plural = "" if count == 1 else "s"
    share = f" ({count / rows:.2%} of rows)" if rows else ""
    return f"{count} {noun}{plural}{share}"


def _is_null(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))
