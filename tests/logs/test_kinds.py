"""A registered log kind is written and read back like the built-in ones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from shipyard.errors import ConfigError
from shipyard.logs.kinds import LogKind, log_kinds, log_schema, register, unregister
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

SPAN_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("duration_ms", pa.float64()),
    ]
)


@dataclass(frozen=True)
class Span:
    """How long one stage of one request took."""

    request_id: str
    time: datetime
    model: str
    stage: str
    duration_ms: float


class Spans(LogKind):
    """A trace log, as an extension would add it."""

    name = "spans"
    schema = SPAN_SCHEMA
    record_types = (Span,)

    def to_table(self, records: Sequence[Any]) -> pa.Table:
        rows = [
            {
                "request_id": r.request_id,
                "time": r.time,
                "model": r.model,
                "stage": r.stage,
                "duration_ms": r.duration_ms,
            }
            for r in records
        ]
        return pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)


@pytest.fixture
def spans() -> Iterator[type[Spans]]:
    register(Spans)
    yield Spans
    unregister(Spans.name)


def test_a_registered_kind_is_written_and_queried_back(tmp_path: Path, spans: type) -> None:
    assert log_kinds()[:2] == ("predictions", "labels") and "spans" in log_kinds()
    with PredictionLogWriter(tmp_path, kind="spans") as writer:
        for i, stage in enumerate(["decode", "predict", "log"] * 2):
            model = "churn" if i < 3 else "fraud"
            writer.log(Span(f"r{i // 3}", NOW + timedelta(seconds=i), model, stage, 1.5 * i))
        assert writer.log(object()) is False  # only its own records
    assert writer.written == 6 and writer.dropped == 1
    files = sorted((tmp_path / "spans" / "model=churn").glob("date=*/*.parquet"))
    assert [f.parent.name for f in files] == ["date=2026-11-24"]

    rows = query_log(tmp_path, "churn", kind="spans").to_pylist()
    assert [(r["stage"], r["duration_ms"]) for r in rows] == [
        ("decode", 0.0),
        ("predict", 1.5),
        ("log", 3.0),
    ]
    slow = query_log(
        tmp_path, "fraud", kind="spans", sql="SELECT stage FROM log WHERE duration_ms > 5"
    )
    assert slow.column("stage").to_pylist() == ["predict", "log"]
    # No files for a model: an empty table with the kind's own columns.
    assert query_log(tmp_path, "other", kind="spans").schema.names == SPAN_SCHEMA.names


def test_an_unregistered_kind_is_refused(tmp_path: Path) -> None:
    assert "spans" not in log_kinds()
    with pytest.raises(ConfigError, match="spans"):
        PredictionLogWriter(tmp_path, kind="spans")
    with pytest.raises(ConfigError, match="labels, outcomes, predictions"):
        log_schema("spans")
