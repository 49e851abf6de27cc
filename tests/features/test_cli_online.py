"""``shipyard features materialize | get | freshness``, in-process, with and without --json."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shipyard.cli import run
from tests.support.features import DRIVER_STATS, driver_project, driver_yaml

Capture = pytest.CaptureFixture[str]
UNTIL = "2024-01-01T06:00:00+00:00"


def cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stdout + stderr of one in-process command."""
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, out + err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> Path:
    """The driver project, its view with a 1h freshness SLA, applied."""
    document = copy.deepcopy(driver_yaml())
    document["features"]["views"][0]["freshness_sla"] = "1h"
    root = driver_project(tmp_path, features=document["features"]).root
    monkeypatch.chdir(root)
    code, _, both = cli(capsys, "features", "apply")
    assert code == 0, both
    return root


def test_materialize_prints_each_view_and_its_window(project: Path, capsys: Capture) -> None:
    code, out, both = cli(capsys, "features", "materialize", "--until", UNTIL)
    assert code == 0, both
    assert "driver_stats" in out and "5 rows with event time in (the beginning," in out
    assert "→ sqlite, 2 entities updated" in out
    code, out, both = cli(capsys, "features", "materialize", "driver_stats", "--json")
    assert code == 0, both
    (run_,) = json.loads(out)
    assert run_["start_ts"] == UNTIL and run_["rows"] == 1 and run_["status"] == "done"


def test_get_shows_values_times_and_expiry(project: Path, capsys: Capture) -> None:
    cli(capsys, "features", "materialize", "--until", UNTIL)
    code, out, both = cli(capsys, "features", "get", "driver_stats", "--entity", "driver_id=1")
    assert code == 0, both
    assert "conv_rate  0.99" in out and "trips      99" in out
    assert "event time 2024-01-01T02:00:00+00:00" in out
    assert "created 2024-01-01T05:00:00+00:00" in out
    assert "expired (ttl 2h)" in out
    code, out, _ = cli(
        capsys, "features", "get", "driver_stats", "--entity", "driver_id=1", "--json"
    )
    shown = json.loads(out)
    assert shown["values"] == {"conv_rate": 0.99, "trips": 99}
    assert shown["entity"] == {"driver_id": "1"} and shown["expired"] is True
    assert shown["ttl_seconds"] == 7200 and shown["age_seconds"] > 7200


def test_get_of_a_recent_row_is_not_expired(project: Path, capsys: Capture) -> None:
    path = project / DRIVER_STATS
    frame = pd.read_parquet(path)
    recent = datetime.now(UTC) - timedelta(minutes=5)
    row = {"driver_id": 7, "event_timestamp": recent, "created": recent, "conv_rate": 0.5}
    extra = pd.DataFrame([{**row, "trips": 5}])
    for column in ("event_timestamp", "created"):
        extra[column] = extra[column].astype("datetime64[us, UTC]")
    pd.concat([frame, extra], ignore_index=True).to_parquet(path, index=False)
    code, _, both = cli(capsys, "features", "materialize")
    assert code == 0, both
    code, out, both = cli(capsys, "features", "get", "driver_stats", "--entity", "driver_id=7")
    assert code == 0, both
    assert "conv_rate  0.5" in out and "expired" not in out
    code, out, _ = cli(capsys, "features", "freshness", "--json")
    (fresh,) = json.loads(out)
    assert fresh["breached"] is False and fresh["freshness_sla_seconds"] == 3600
    code, out, _ = cli(capsys, "features", "freshness")
    assert code == 0 and "fresh" in out and "driver_stats" in out


def test_get_refuses_bad_keys_and_says_when_nothing_is_stored(
    project: Path, capsys: Capture
) -> None:
    cli(capsys, "features", "materialize", "--until", UNTIL)
    code, _, both = cli(capsys, "features", "get", "driver_stats", "--entity", "driver_id=404")
    assert code == 3 and "no row of driver_stats" in both and "materialize" in both
    code, _, both = cli(capsys, "features", "get", "driver_stats", "--entity", "rider=1")
    assert code == 2 and "'rider' is not a join key of driver_stats" in both
    assert "driver_id" in both
    code, _, both = cli(capsys, "features", "get", "driver_stats", "--entity", "driver_id")
    assert code == 2 and "is not KEY=VALUE" in both
    code, _, both = cli(capsys, "features", "get", "nope", "--entity", "driver_id=1")
    assert code == 2 and "no feature view 'nope'" in both
    assert "Traceback" not in both


def test_freshness_of_a_view_never_materialised(project: Path, capsys: Capture) -> None:
    code, out, both = cli(capsys, "features", "freshness", "driver_stats")
    assert code == 0, both
    assert "never" in out and "stale" not in out
    code, out, _ = cli(capsys, "features", "freshness", "--json")
    (never,) = json.loads(out)
    assert never["last_run_at"] is None and never["breached"] is True


def test_materialize_errors_are_messages(project: Path, capsys: Capture) -> None:
    code, _, both = cli(capsys, "features", "materialize", "--until", "yesterday-ish")
    assert code == 2 and "--until 'yesterday-ish'" in both
    frame = pd.read_parquet(project / DRIVER_STATS)
    frame.drop(columns=["conv_rate"]).to_parquet(project / DRIVER_STATS, index=False)
    code, _, both = cli(capsys, "features", "materialize")
    assert code == 4 and "'conv_rate'" in both
    assert "Traceback" not in both


def test_a_project_without_views_has_nothing_to_materialise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: bare\n")
    monkeypatch.chdir(tmp_path)
    code, out, both = cli(capsys, "features", "materialize")
    assert code == 0, both
    assert "No feature views are defined" in out
    code, out, _ = cli(capsys, "features", "materialize", "--json")
    assert code == 0 and json.loads(out) == []
    assert not (tmp_path / ".shipyard" / "features" / "online.db").exists()
