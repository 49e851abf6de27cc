"""The one JSON encoder and the one ``to_dict``: same bytes on the serving path, strict JSON
everywhere, NumPy and times handled once."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from shipyard.jsonable import Record, as_dict, dump_json, plain, to_json

REPO = Path(__file__).resolve().parents[1]


def _serving_default_before(obj: Any) -> Any:
    # The hook models/signature.py used before the encoders became one: the reference.
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


RESPONSES = [
    {"predictions": np.array([0.1, 0.2, np.nan, np.inf])},
    {"predictions": np.array([1, 0, 1], dtype=np.int64)},
    {"predictions": np.array(["yes", "no"], dtype=object)},
    {"predictions": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]},  # strided
    {"predictions": [np.float32(0.1), np.int32(7), np.bool_(True), np.str_("a")]},
    {"outputs": [{"name": "p", "data": np.array([[0.25, 0.75]]), "shape": [1, 2]}]},
    {"error": "bad input", "detail": b"\xffraw"},
    {"model_name": "churn", "id": None, "parameters": {"x": float("nan")}},
]


@pytest.mark.parametrize("value", RESPONSES)
def test_the_serving_encoder_writes_the_same_bytes_as_before(value: Any) -> None:
    before = orjson.dumps(value, default=_serving_default_before, option=orjson.OPT_SERIALIZE_NUMPY)
    assert dump_json(value) == before


def test_the_serving_encoder_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="object"):
        dump_json({"x": object()})


def test_text_for_logs_is_strict_json_and_never_fails() -> None:
    text = to_json(
        {
            1: np.float64(np.nan),
            "a": np.array([1.5, np.inf]),
            "when": pd.Timestamp("2026-11-24T09:00:00+00:00"),
            "huge": 2**70,
            "thing": object,
        }
    )
    found = json.loads(text)  # the big integer took the slow path; the rest is unchanged
    assert found["1"] is None and found["a"] == [1.5, None]
    assert found["when"] == "2026-11-24T09:00:00+00:00"
    assert found["huge"] == 2**70 and found["thing"] == "<class 'object'>"
    assert "NaN" not in text and "Infinity" not in text
    assert to_json({"x": np.int64(3), "ok": True}) == '{"x":3,"ok":true}'


def test_plain_values_are_what_to_json_writes() -> None:
    value = {
        "score": np.float64(0.25),
        "nan": float("nan"),
        "tags": ("a", "b"),
        "seen": {3},
        "at": datetime(2026, 1, 2, tzinfo=UTC),
        "array": np.array([[1, 2]]),
        "huge": -(2**80),
    }
    assert plain(value) == {
        "score": 0.25,
        "nan": None,
        "tags": ["a", "b"],
        "seen": [3],
        "at": "2026-01-02T00:00:00+00:00",
        "array": [[1, 2]],
        "huge": -(2**80),
    }
    assert plain(float("inf")) is None and plain(None) is None and plain("x") == "x"
    small = {k: v for k, v in value.items() if k != "huge"}
    assert plain(small) == json.loads(to_json(small))


@dataclass(frozen=True)
class _Inner:
    day: date
    weights: tuple[float, ...]


@dataclass(frozen=True)
class _Outer(Record):
    name: str
    at: datetime
    inner: _Inner
    items: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def test_records_become_json_ready_dicts_with_times_in_utc() -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    record = _Outer(
        "r",
        datetime(2026, 3, 1, 12, 0, tzinfo=east),
        _Inner(date(2026, 3, 1), (0.5, 1.5)),
        [1, 2],
        {"k": [1]},
    )
    data = record.to_dict()
    assert data == as_dict(record)
    assert list(data) == ["name", "at", "inner", "items", "extra"]  # field order
    assert data["at"] == "2026-03-01T06:30:00+00:00"
    assert data["inner"] == {"day": "2026-03-01", "weights": [0.5, 1.5]}
    assert json.loads(json.dumps(data)) == data  # nothing the standard library refuses
    data["items"].append(3)
    assert record.items == [1, 2]  # a copy, as dataclasses.asdict makes
    naive = as_dict(_Outer("n", datetime(2026, 3, 1, 12, 0), _Inner(date(2026, 3, 1), ())))
    assert naive["at"] == "2026-03-01T12:00:00+00:00"  # a naive time is UTC already


def test_one_module_calls_orjson_to_encode() -> None:
    callers = []
    for path in sorted((REPO / "shipyard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "dumps"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "orjson"
            ):
                callers.append(str(path.relative_to(REPO)))
    # Three encoders on purpose: jsonable for records and the wire; the audit log's
    # canonical bytes (store/audit_leaf.canonical), which are hashed and must never change;
    # and the prediction journal's frame headers (logs/kinds.journal_header), read back only
    # by the roll, which keep non-finite floats that strict JSON would lose.
    assert set(callers) == {
        "shipyard/jsonable.py",
        "shipyard/store/audit_leaf.py",
        "shipyard/logs/kinds.py",
    }
