"""``shipyard logs query`` over a prediction log written by the real writer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.cli.options import parse_moment
from shipyard.errors import ConfigError
from shipyard.logs.writer import LabelRecord, PredictionLogWriter, PredictionRecord


def write_logs(root: Path) -> None:
    now = datetime.now(UTC)
    with PredictionLogWriter(root) as writer:
        for i in range(6):
            writer.log(
                PredictionRecord(
                    request_id=f"r{i}",
                    time=now - timedelta(hours=i),
                    model="churn",
                    version="1" if i % 2 else "2",
                    role="live",
                    inputs={"tenure_months": i},
                    output=i % 2,
                    probabilities=[0.4, 0.6],
                    latency_ms=1.5,
                    status="ok",
                )
            )
    with PredictionLogWriter(root, kind="labels") as writer:
        writer.log(LabelRecord(request_id="r1", time=now, model="churn", label=1))


def test_logs_query(
    initialised_example: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A read command needs the project's database (a missing one is an error, not a new one).
    monkeypatch.chdir(initialised_example)
    write_logs(initialised_example / ".shipyard" / "logs")
    assert run(["logs", "query", "churn", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 6
    assert run(["logs", "query", "churn", "--since", "150m", "--json"]) == 0
    assert {r["request_id"] for r in json.loads(capsys.readouterr().out)} == {"r0", "r1", "r2"}
    sql = "SELECT version, count(*) AS n FROM log GROUP BY 1 ORDER BY 1"
    assert run(["logs", "query", "churn", "--sql", sql, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"version": "1", "n": 3},
        {"version": "2", "n": 3},
    ]
    assert run(["logs", "query", "churn", "--labels", "--json"]) == 0
    labelled = {r["request_id"]: r["label"] for r in json.loads(capsys.readouterr().out)}
    assert labelled["r1"] == "1" and labelled["r0"] is None
    assert run(["logs", "query", "churn"]) == 0
    assert "6 rows" in capsys.readouterr().out
    assert run(["logs", "query", "churn", "--sql", "SELECT nope FROM log"]) == 4
    err = capsys.readouterr().err
    assert "log" in err and "Traceback" not in err


def test_parse_moment() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert parse_moment("90m", now=now) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert parse_moment("2026-11-20") == datetime(2026, 11, 20, tzinfo=UTC)
    with pytest.raises(ConfigError, match="duration"):
        parse_moment("yesterday")
