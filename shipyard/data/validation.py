"""Validating data against a schema, reporting every failed check in one pass.

:func:`validate` runs in three steps. Columns are first re-encoded losslessly toward
the schema's dtypes (so CSV and Parquet of one table pass alike) and their dtypes
compared here — a column with the wrong dtype gets one ``dtype`` failure and its value
checks are skipped, since they cannot be evaluated on values of the wrong type. pandera
then checks everything else with ``lazy=True``: unknown and missing columns,
nullability, ranges, allowed values and any checks added by hand. Last come the limits
pandera cannot express in YAML: row-count bounds and null fractions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from rich.table import Table

from shipyard.data._dtypes import conform, dtype_matches, unconvertible
from shipyard.data._pandera import errors as pandera_errors
from shipyard.data._pandera import pa
from shipyard.data.failures import MAX_SAMPLES, CheckFailure, failures_from_cases, json_value
from shipyard.data.schema import null_fraction_limits, row_bounds
from shipyard.errors import DataError, ValidationFailed

__all__ = ["ValidationReport", "validate"]


@dataclass(frozen=True)
class ValidationReport:
    """Every check that failed when validating ``rows`` rows; empty when the data passed."""

    failures: list[CheckFailure]
    rows: int

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "failures": [asdict(failure) for failure in self.failures],
        }

    def render(self) -> Table:
        """A table of the failures: column, check, observed, expected, sample offending values."""
        if self.ok:
            title = f"Validation passed: every check holds on {self.rows} rows"
        else:
            count = len(self.failures)
            title = (
                f"Validation failed: {count} check{'s' if count != 1 else ''} on {self.rows} rows"
            )
        table = Table(title=title, title_justify="left")
        for header in ("column", "check", "observed", "expected"):
            table.add_column(header, overflow="fold")
        table.add_column("sample offending values", overflow="fold")
        for failure in self.failures:
            table.add_row(
                failure.column if failure.column is not None else "(table)",
                failure.check,
                failure.observed,
                failure.expected,
                ", ".join(json.dumps(sample) for sample in failure.samples),
            )
        return table

    def raise_for_failures(self) -> None:
        """Raise :class:`~shipyard.errors.ValidationFailed` with this report if a check failed."""
        if self.ok:
            return
        count = len(self.failures)
        raise ValidationFailed(
            f"{count} data check{'s' if count != 1 else ''} failed on {self.rows} rows.",
            report=self,
            hint=(
                "Fix the data; or, if the change is intended, re-infer the schema with "
                "`shipyard data schema infer PATH -o schema.yaml` and commit it."
            ),
        )


def validate(df: pd.DataFrame, schema: pa.DataFrameSchema) -> ValidationReport:
    """Check ``df`` against ``schema`` and report all failures at once."""
    if df.columns.has_duplicates:
        duplicated = sorted({str(name) for name in df.columns[df.columns.duplicated()]})
        raise DataError(
            f"The data has duplicate columns {duplicated}; it cannot be validated.",
            hint="Rename the duplicated columns.",
        )
    frame = df.copy(deep=False)
    failures: list[CheckFailure] = []
    updates: dict[str, dict[str, Any]] = {}
    for name, column in schema.columns.items():
        if name not in frame.columns or column.dtype is None:
            continue
        expected = str(column.dtype)
        frame[name] = conform(frame[name], expected)
        if dtype_matches(frame[name], expected):
            updates[name] = {"dtype": None}
        else:
            updates[name] = {"dtype": None, "checks": []}
            failures.append(
                CheckFailure(
                    column=str(name),
                    check="dtype",
                    observed=str(frame[name].dtype),
                    expected=expected,
                    samples=[
                        json_value(v) for v in unconvertible(frame[name], expected, MAX_SAMPLES)
                    ],
                )
            )
    runnable = schema.update_columns(updates) if updates else schema
    try:
        runnable.validate(frame, lazy=True)
    except pandera_errors.SchemaErrors as exc:
        failures.extend(failures_from_cases(exc.failure_cases, runnable, len(frame)))
    failures.extend(_null_fraction_failures(frame, schema))
    failures.extend(_row_count_failures(len(frame), schema))
    return ValidationReport(failures=_ordered(failures, schema, frame), rows=len(frame))


def _null_fraction_failures(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[CheckFailure]:
    failures = []
    for name, limit in null_fraction_limits(schema).items():
        if name not in frame.columns or len(frame) == 0:
            continue
        nulls = int(frame[name].isna().sum())
        if nulls / len(frame) > limit:
            failures.append(
                CheckFailure(
                    column=name,
                    check="null_fraction",
                    observed=f"{nulls / len(frame):.4g} ({nulls} of {len(frame)} rows)",
                    expected=f"at most {limit:.4g}",
                    samples=[],
                )
            )
    return failures


def _row_count_failures(rows: int, schema: pa.DataFrameSchema) -> list[CheckFailure]:
    low, high = row_bounds(schema)
    if (low is None or rows >= low) and (high is None or rows <= high):
        return []
    if low is not None and high is not None:
        expected = f"between {low} and {high} rows"
    elif low is not None:
        expected = f"at least {low} rows"
    else:
        expected = f"at most {high} rows"
    return [CheckFailure(None, "row_count", f"{rows} rows", expected, [])]


def _ordered(
    failures: list[CheckFailure], schema: pa.DataFrameSchema, frame: pd.DataFrame
) -> list[CheckFailure]:
    """Table-level failures first, then by column: schema order, then unknown columns."""
    order = {str(name): i for i, name in enumerate(schema.columns)}
    for name in frame.columns:
        order.setdefault(str(name), len(order))
    return sorted(
        failures, key=lambda f: -1 if f.column is None else order.get(f.column, len(order))
    )
