"""A model's input contract, and decoding JSON-like rows into a NumPy matrix against it.

Every protocol ends here: rows (objects or arrays) or columns of plain Python values
become one 2-D array in the signature's column order. The hot path uses no pandas.
Rows are counted from 0 in error messages, as in the JSON array the client sent.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from shipyard.errors import RequestError
from shipyard.jsonable import dump_json as dump_json  # the protocols' encoder

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

# MLflow's DataType names first: MLflow "float" is 32-bit, unlike NumPy's "float".
_TYPE_NAMES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
    "str": "object",
}
_EXACT = 2.0**53  # floats beyond this are not exact integers: refuse them for int columns
_NUMBERS = frozenset((int, float))  # bool is a type of its own: never a number here
# Values in error messages: a few levels and items, so a value nested 1,000 deep or a
# list of a million items is shown in 40 characters, never recursed into.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 3, 4, 4
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 40
_EXPECTED = {"f": "a number", "i": "an integer", "u": "an integer", "b": "true or false"}


@dataclass(frozen=True)
class InputSpec:
    """The columns a model takes, in order, with each column's dtype and NaN policy."""

    columns: tuple[str, ...]
    dtypes: tuple[np.dtype[Any], ...]
    allow_nan: tuple[bool, ...]
    max_abs: float | None = None  # the model's finite range for float columns, if narrower

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("an input spec needs at least one column")
        if not len(self.columns) == len(self.dtypes) == len(self.allow_nan):
            raise ValueError("columns, dtypes and allow_nan must have the same length")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"column names repeat: {', '.join(self.columns)}")
        for name, dtype in zip(self.columns, self.dtypes, strict=True):
            if dtype.kind not in "fiubO":
                raise ValueError(f"column '{name}' has unsupported dtype {dtype}")

    @classmethod
    def from_columns(cls, columns: Iterable[tuple[str, str]]) -> InputSpec:
        """Build from ``(name, type)`` pairs; types are MLflow names or NumPy dtype names."""
        names: list[str] = []
        dtypes: list[np.dtype[Any]] = []
        for name, type_name in columns:
            dtype = np.dtype(_TYPE_NAMES.get(type_name, type_name))
            names.append(name)
            dtypes.append(np.dtype(object) if dtype.kind in "OUS" else dtype)
        return cls(tuple(names), tuple(dtypes), tuple(d.kind == "f" for d in dtypes))

    @classmethod
    def from_signature(cls, signature: ModelSignature) -> InputSpec:
        """Build from a column-based MLflow signature; tensor signatures are not supported."""
        schema = signature.inputs
        if schema is None:
            raise ValueError("the model signature has no inputs")
        if schema.is_tensor_spec():
            raise NotImplementedError(
                "tensor-based signatures are not supported yet: log the model with a "
                "column-based signature (infer_signature on a DataFrame)"
            )
        pairs: list[tuple[str, str]] = []
        for col in schema.inputs:
            type_name = getattr(col.type, "name", None)
            if col.name is None or type_name not in _TYPE_NAMES:
                raise NotImplementedError(
                    f"column {col.name!r} of type {col.type} is not supported: Shipyard serves "
                    "named columns of type double, float, long, integer, boolean or string"
                )
            pairs.append((col.name, type_name))
        return cls.from_columns(pairs)

    @cached_property
    def matrix_dtype(self) -> np.dtype[Any]:
        """float64 when every column is numeric or boolean; object when any is a string."""
        if any(d.kind == "O" for d in self.dtypes):
            return np.dtype(object)
        return np.dtype(np.float64)

    @cached_property
    def column_set(self) -> frozenset[str]:
        """The column names, for fast membership checks."""
        return frozenset(self.columns)

    @cached_property
    def numeric_plan(self) -> NumericPlan | None:
        """How to check a whole numeric matrix at once; None when a column is bool or text."""
        return NumericPlan.of(self)


@dataclass(frozen=True)
class NumericPlan:
    """The vectorised checks that make a float64 table a valid input matrix for a spec.

    For specs whose columns are all numbers (floats and integers, no bool, no text):
    the common case, decoded with one ``np.array`` and a few whole-matrix passes instead
    of one conversion per column. Integer columns take integral values within their
    dtype and within ±2**53 (beyond it float64 is not exact: the per-column path
    decides); narrower float columns are rounded to their dtype as the per-column path
    rounds them.
    """

    integers: np.ndarray  # indices of the integer columns
    low: np.ndarray  # their smallest and largest allowed values, as float64
    high: np.ndarray
    narrow: tuple[tuple[int, np.dtype[Any]], ...]  # float columns narrower than float64
    rows_of: Any  # record → tuple of its values in column order

    @classmethod
    def of(cls, spec: InputSpec) -> NumericPlan | None:
        """The plan for ``spec``, or None when a column is not a number."""
        if any(dtype.kind not in "fiu" for dtype in spec.dtypes):
            return None
        integers = [i for i, dtype in enumerate(spec.dtypes) if dtype.kind in "iu"]
        limits = [np.iinfo(spec.dtypes[i]) for i in integers]
        exact = _EXACT - 1
        names = spec.columns
        getter = itemgetter(*names)
        return cls(
            np.array(integers, dtype=np.intp),
            np.array([max(float(info.min), -exact) for info in limits], dtype=np.float64),
            np.array([min(float(info.max), exact) for info in limits], dtype=np.float64),
            tuple(
                (i, dtype)
                for i, dtype in enumerate(spec.dtypes)
                if dtype.kind == "f" and dtype != np.float64
            ),
            getter if len(names) > 1 else lambda record: (record[names[0]],),
        )

    def matrix(self, table: np.ndarray, spec: InputSpec) -> np.ndarray | None:
        """``table`` (float64, n × columns) checked, or None for the per-column path.

        None whenever any value is not plainly valid (NaN, infinity, a fraction or an
        out-of-range value in an integer column, a float beyond a narrower dtype): the
        per-column path then finds it and names it. Values beyond ``spec.max_abs`` are
        refused here, with the per-column path's message.
        """
        if not np.isfinite(table).all():
            return None
        if len(self.integers):
            block = table[:, self.integers]
            if not (
                (block == np.trunc(block)).all()
                and (block >= self.low).all()
                and (block <= self.high).all()
            ):
                return None
            table[:, self.integers] = block + 0.0  # -0.0 is the integer 0
        for index, dtype in self.narrow:
            with np.errstate(over="ignore"):
                table[:, index] = table[:, index].astype(dtype)
            if not np.isfinite(table[:, index]).all():
                return None
        check_range(table, spec)
        return table


def load_json(body: bytes | memoryview | str) -> Any:
    """Parse a JSON body, or raise a 400 saying why it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"body is not valid JSON: {exc}") from None


def show_value(value: Any) -> str:
    """A client's value for an error message: at most 40 characters, however deep or long."""
    text = _SHORT.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong(name: str, row: int, expected: str, value: Any) -> RequestError:
    return RequestError(f"column '{name}', row {row}: expected {expected}, got {show_value(value)}")


def empty_batch() -> RequestError:
    """The error for a request without rows."""
    return RequestError("the batch is empty: send at least one row")


def check_finite(values: np.ndarray, name: str, allow_nan: bool) -> None:
    """Refuse infinities always, and NaN where the column does not allow it."""
    if values.dtype.kind != "f":
        return
    bad = ~np.isfinite(values)
    if allow_nan:
        bad &= ~np.isnan(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "NaN/null" if math.isnan(values[row]) else "infinity"
        raise RequestError(f"column '{name}', row {row}: {what} is not allowed in this column")


def check_range(matrix: np.ndarray, spec: InputSpec) -> None:
    """Refuse values beyond ``spec.max_abs`` (a model's range narrower than float64).

    One vectorised pass over a numeric matrix; the float columns of a mixed one.
    """
    if spec.max_abs is None:
        return
    if matrix.dtype.kind == "f":
        block = matrix
        columns = list(range(matrix.shape[1]))
    else:
        columns = [i for i, dtype in enumerate(spec.dtypes) if dtype.kind == "f"]
        block = matrix[:, columns].astype(np.float64)
    with np.errstate(invalid="ignore"):
        beyond = np.abs(block) > spec.max_abs  # NaN compares False
    if beyond.any():
        row, index = (int(i) for i in np.argwhere(beyond)[0])
        raise RequestError(
            f"column '{spec.columns[columns[index]]}', row {row}: "
            f"{show_value(float(block[row, index]))} is beyond what this model takes "
            f"(at most ±{spec.max_abs:.4g})"
        )


def convert_values(values: Sequence[Any], index: int, spec: InputSpec) -> np.ndarray:
    """Check one column of plain Python values and return it as a typed 1-D array."""
    name, dtype = spec.columns[index], spec.dtypes[index]
    kind, allow_nan = dtype.kind, spec.allow_nan[index]
    if kind == "O":
        for row, value in enumerate(values):
            if type(value) is not str:
                raise _wrong(name, row, "a string", value)
        return np.array(values, dtype=object)
    if kind == "b":
        for row, value in enumerate(values):
            if type(value) is not bool:
                raise _wrong(name, row, "true or false", value)
        return np.array(values, dtype=bool)
    if kind == "f":
        has_null = special = False
        for row, value in enumerate(values):
            kind_of = type(value)
            if kind_of is float:
                # Only NaN and ±inf fail x - x == 0; checking here spares a NumPy pass.
                special = special or value - value != 0.0
                continue
            if kind_of is int:
                continue
            if value is None:
                if not allow_nan:
                    raise RequestError(f"column '{name}', row {row}: NaN/null is not allowed")
                has_null = True
                continue
            raise _wrong(name, row, "a number", value)
        if has_null:
            values = [math.nan if value is None else value for value in values]
        try:
            array = np.array(values, dtype=dtype)
        except OverflowError:
            raise RequestError(f"column '{name}': a value is too large for {dtype}") from None
        if special or dtype != np.float64:  # narrower floats may overflow to inf
            check_finite(array, name, allow_nan)
        return array
    integers: list[int] = []
    for row, value in enumerate(values):
        kind_of = type(value)
        if kind_of is int:
            integers.append(value)
        elif kind_of is float and value.is_integer() and abs(value) < _EXACT:
            integers.append(int(value))
        else:
            raise _wrong(name, row, "an integer", value)
    try:
        return np.array(integers, dtype=dtype)
    except OverflowError:
        raise RequestError(f"column '{name}': a value is out of range for {dtype}") from None


def parse_text(text: str, index: int, spec: InputSpec, row: int) -> Any:
    """Turn one text cell (CSV, or a BYTES tensor) into the Python value its column takes."""
    kind = spec.dtypes[index].kind
    if kind == "O":
        return text
    if kind == "b":
        flag = text.strip().lower()
        if flag in ("true", "1"):
            return True
        if flag in ("false", "0"):
            return False
    elif text.strip() == "":
        return None
    else:
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    raise _wrong(spec.columns[index], row, _EXPECTED[kind], text)


def assemble(columns: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Stack checked 1-D columns, in spec order, into the model's input matrix."""
    rows = len(columns[0])
    if rows == 0:
        raise empty_batch()
    matrix = np.empty((rows, len(spec.columns)), dtype=spec.matrix_dtype)
    for index, column in enumerate(columns):
        matrix[:, index] = column
    check_range(matrix, spec)
    return matrix


def decode_columns(columns: Mapping[str, Any], spec: InputSpec) -> np.ndarray:
    """Decode ``{column: [values]}`` into the model's input matrix."""
    _check_names(columns.keys(), spec, "the input")
    lists = [columns[name] for name in spec.columns]
    for name, values in zip(spec.columns, lists, strict=True):
        if not isinstance(values, list):
            raise RequestError(f"column '{name}' must be a list of values")
        if len(values) != len(lists[0]):
            raise RequestError(
                f"column '{name}' has {len(values)} values but column "
                f"'{spec.columns[0]}' has {len(lists[0])}"
            )
    return assemble([convert_values(v, i, spec) for i, v in enumerate(lists)], spec)


def decode_rows(rows: Any, spec: InputSpec, *, fast: bool = True) -> np.ndarray:
    """Decode rows (objects of column → value, or arrays in column order) into a matrix.

    Rows of plain numbers for an all-numeric spec take one ``np.array`` and a few
    whole-matrix checks (``fast``); anything else, or anything those checks doubt, takes
    the per-column path, which names the column and row of a bad value. Both give the
    same matrix.
    """
    if not isinstance(rows, list):
        raise RequestError("rows must be a JSON array of objects or arrays")
    if not rows:
        raise empty_batch()
    plan = spec.numeric_plan if fast else None
    if plan is not None:
        matrix = _numeric_rows(rows, spec, plan)
        if matrix is not None:
            return matrix
    width = len(spec.columns)
    if isinstance(rows[0], dict):
        wanted = spec.column_set
        for row, record in enumerate(rows):
            if not isinstance(record, dict):
                raise RequestError(f"row {row} is not an object like row 0")
            if record.keys() != wanted:
                _check_names(record.keys(), spec, f"row {row}")
        lists = [[record[name] for record in rows] for name in spec.columns]
    elif isinstance(rows[0], list):
        for row, values in enumerate(rows):
            if not isinstance(values, list):
                raise RequestError(f"row {row} is not an array like row 0")
            if len(values) != width:
                raise RequestError(
                    f"row {row} has {len(values)} values, expected {width} "
                    f"(columns: {', '.join(spec.columns)})"
                )
        lists = [list(column) for column in zip(*rows, strict=True)]
    else:
        raise RequestError(
            "row 0 must be an object (column → value) or an array of values in column order"
        )
    return assemble([convert_values(v, i, spec) for i, v in enumerate(lists)], spec)


def _numeric_rows(rows: list[Any], spec: InputSpec, plan: NumericPlan) -> np.ndarray | None:
    """The matrix of rows of plain numbers, or None when the per-column path must decide."""
    first = type(rows[0])
    if first is dict:
        wanted = spec.column_set
        if not all(type(record) is dict and record.keys() == wanted for record in rows):
            return None
        rows = list(map(plan.rows_of, rows))
    elif first is list:
        width = len(spec.columns)
        if not all(type(values) is list and len(values) == width for values in rows):
            return None
    else:
        return None
    if not set(map(type, chain.from_iterable(rows))) <= _NUMBERS:
        return None
    try:
        table = np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        return None
    return plan.matrix(table, spec)


def _check_names(names: Iterable[str], spec: InputSpec, where: str) -> None:
    given = list(names)
    for name in spec.columns:
        if name not in given:
            raise RequestError(f"{where} is missing column '{name}'")
    for name in given:
        if name not in spec.column_set:
            raise RequestError(
                f"{where} has unknown column '{name}'; "
                f"the model's columns are: {', '.join(spec.columns)}"
            )
    if len(given) != len(set(given)):
        raise RequestError(f"{where} names a column more than once")
