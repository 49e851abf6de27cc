"""The model page's log charts against numpy on the same rows, split by arm across a real
promotion, with the audited events as annotations at their times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shipyard.config import Config
from shipyard.moments import as_utc
from shipyard.registry.aliases import alias_moves, move_alias
from shipyard.store import Store
from shipyard.store.traffic import TrafficSettings, write_traffic
from shipyard.ui.data import SERIES, ChartContext, parse_range
from shipyard.ui.data.buckets import grid_for
from shipyard.ui.panels import panels_for
from shipyard.ui.views import Chart
from tests.support import project_of
from tests.support.dashboard_data import LogRows, synthetic_rows, write_prediction_log

MODEL = "churn"


def test_every_model_panel_has_one_series_function_and_no_other() -> None:
    assert set(SERIES) == {panel.id for panel in panels_for("model")}


def _concat(a: LogRows, b: LogRows) -> LogRows:
    return LogRows(
        np.concatenate([a.time, b.time]),
        np.concatenate([a.version, b.version]),
        np.concatenate([a.role, b.role]),
        np.concatenate([a.latency_ms, b.latency_ms]),
        np.concatenate([a.status, b.status]),
    )


@pytest.fixture
def promoted(two_versions: tuple[Config, Store, Any]) -> dict[str, Any]:
    """churn/1 champion, rows logged, churn/2 promoted (the real path), more rows after it."""
    config, store, _tracking = two_versions
    project = project_of(config)
    first = alias_moves(store, MODEL, "champion")[-1].at
    move_alias(store, None, MODEL, "champion", "2", action="promote", reason="better AUC")
    promoted_at = alias_moves(store, MODEL, "champion")[-1].at
    write_traffic(store, MODEL, TrafficSettings(challengers={"1": 0.2}), reason="keep 1 at 20 %")
    # Rows between the two promotions (2 is a challenger there), then 30 minutes after.
    before = synthetic_rows(
        3000, first, promoted_at, versions=("1", "2"), weights=(0.6, 0.4), error_rate=0.05, seed=3
    )
    after = synthetic_rows(
        20000,
        promoted_at,
        promoted_at + timedelta(minutes=30),
        versions=("1", "2"),
        weights=(0.2, 0.8),
        shadow="1",
        error_rate=0.02,
        seed=4,
    )
    rows = _concat(before, after)
    rows.request_id = np.array([f"r{i}" for i in range(len(rows))], dtype=object)
    write_prediction_log(config, MODEL, rows)
    window = parse_range(
        None,
        first.isoformat(),
        (promoted_at + timedelta(minutes=31)).isoformat(),
        "24h",
    )
    return {"project": project, "store": store, "rows": rows, "window": window}


def _expected(rows: LogRows, moves: list[tuple[datetime, str | None]], window: Any) -> dict:
    """Per (version, arm): per bucket requests, answered rows and answered latencies."""
    grid = grid_for(window)
    times = rows.time.astype("datetime64[us]").astype(np.int64)
    since = int((window.since - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    bucket = (times - since) // (grid.step * 1_000_000)
    move_times = np.array(
        [
            int((as_utc(at) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
            for at, _ in moves
        ]
    )
    move_versions = [v for _, v in moves]
    at = np.searchsorted(move_times, times, side="right") - 1
    champion = np.array([move_versions[i] if i >= 0 else None for i in at], dtype=object)
    arm = np.where(
        rows.role == "shadow",
        "shadow",
        np.where((champion == None) | (champion == rows.version), "champion", "challenger"),  # noqa: E711
    )
    found: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for i in range(len(rows)):
        cell = found.setdefault((rows.version[i], arm[i]), {}).setdefault(
            int(bucket[i]), {"n": 0, "ok": []}
        )
        cell["n"] += 1
        if rows.status[i] == "ok":
            cell["ok"].append(rows.latency_ms[i])
    return found


def _series(chart: Chart, name: str) -> list[float | None]:
    matches = [s for s in chart.series if s.name == name]
    assert len(matches) == 1, f"{name} not in {[s.name for s in chart.series]}"
    return matches[0].y


def test_throughput_latency_and_errors_match_numpy_split_by_arm(promoted: dict[str, Any]) -> None:
    project, window, rows = promoted["project"], promoted["window"], promoted["rows"]
    moves = [(m.at, m.to_version) for m in alias_moves(promoted["store"], MODEL, "champion")]
    expected = _expected(rows, moves, window)
    ctx = ChartContext(project, MODEL, window)
    grid = ctx.grid
    throughput, latency, errors = (SERIES[p](ctx) for p in ("throughput", "latency", "errors"))
    # Across the promotion: 2 was the challenger, then the champion; 1 the other way round.
    assert set(expected) == {
        ("1", "champion"), ("2", "challenger"), ("2", "champion"), ("1", "challenger"),
        ("1", "shadow"),
    }  # fmt: skip
    assert {(s.name, s.arm) for s in throughput.series} == {(f"{v} {a}", a) for v, a in expected}
    for (version, arm), buckets in expected.items():
        name = f"{version} {arm}"
        answered = _series(throughput, name)
        shares = _series(errors, name)
        p99 = _series(latency, f"{name} p99")
        p50 = _series(latency, f"{name} p50")
        assert len(answered) == grid.count
        for index in range(grid.count):
            cell = buckets.get(index)
            if cell is None:
                assert answered[index] == 0 and shares[index] is None and p99[index] is None
                continue
            ok = np.array(cell["ok"])
            assert answered[index] == pytest.approx(len(ok) / grid.seconds(index), rel=1e-12)
            assert shares[index] == pytest.approx(1 - len(ok) / cell["n"], abs=1e-12)
            if len(ok):
                assert p99[index] == pytest.approx(np.quantile(ok, 0.99), rel=1e-9)
                assert p50[index] == pytest.approx(np.quantile(ok, 0.5), rel=1e-9)
    total = sum(v * grid.seconds(i) for s in throughput.series for i, v in enumerate(s.y) if v)
    assert round(total) == int((rows.status == "ok").sum())


def test_audited_events_are_annotations_at_their_times(promoted: dict[str, Any]) -> None:
    project, window, store = promoted["project"], promoted["window"], promoted["store"]
    ctx = ChartContext(project, MODEL, window)
    chart = SERIES["throughput"](ctx)
    promote = next(
        e for e in store.events(kind="alias.promote") if e.payload.get("to_version") == "2"
    )
    traffic = store.events(kind="traffic.changed")[0]
    marks = {(a.kind, a.time): a for a in chart.annotations}
    found = marks[("alias.promote", as_utc(promote.at).isoformat())]
    assert found.arm == "champion"
    assert "1 → 2" in found.text and "better AUC" in found.text
    shifted = marks[("traffic.changed", as_utc(traffic.at).isoformat())]
    assert shifted.arm == "challenger" and "1 at 20 %" in shifted.text
    for panel in panels_for("model"):
        if panel.annotated and panel.id not in ("kpi",):
            assert SERIES[panel.id](ctx).annotations == chart.annotations


def test_traffic_shares_step_at_each_change(promoted: dict[str, Any]) -> None:
    ctx = ChartContext(promoted["project"], MODEL, promoted["window"])
    chart = SERIES["traffic"](ctx)
    shares = {s.name: s.y for s in chart.series}
    # At the start churn/1 has all traffic; after the promotion churn/2 does; after the
    # traffic change churn/2 keeps 80 % and churn/1 takes 20 % as a challenger.
    assert shares["1 champion"][0] == 1.0
    assert shares["2 champion"][-1] == pytest.approx(0.8)
    assert shares["1 challenger"][-1] == pytest.approx(0.2)
    assert chart.series[0].x[0] == ctx.window.since.isoformat()
    assert chart.series[0].x[-1] == ctx.window.until.isoformat()


def test_arms_follow_every_champion_move_in_range(tmp_path: Any) -> None:
    """Promotions, a rollback and a move before the range, each row's arm by its own time."""
    from shipyard.logs.root import project_log_root
    from shipyard.ui.data.log_stats import bucket_stats
    from tests.support.dashboard_data import bare_project

    project = bare_project(tmp_path / "arms", "m")
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    window = parse_range(None, (now - timedelta(hours=4)).isoformat(), now.isoformat(), "24h")
    rows = synthetic_rows(
        30000, window.since, now, versions=("1", "2", "3"), shadow="3", error_rate=0.0, seed=9
    )
    write_prediction_log(project.config, "m", rows)
    moves: list[tuple[datetime, str | None]] = [
        (now - timedelta(days=2), "1"),  # before the range: champion at its start
        (now - timedelta(hours=3), "2"),
        (now - timedelta(hours=2), "3"),
        (now - timedelta(hours=1), "2"),  # a rollback
    ]
    grid = grid_for(window)
    stats = bucket_stats(project_log_root(project.config), "m", grid, moves)
    expected = _expected(rows, moves, window)
    counted: dict[tuple[str, str], int] = {}
    for version, arm, n in zip(stats.version, stats.arm, stats.requests, strict=True):
        counted[(version, arm)] = counted.get((version, arm), 0) + int(n)
    assert counted == {
        group: sum(cell["n"] for cell in buckets.values()) for group, buckets in expected.items()
    }
    assert counted[("3", "champion")] > 0 and counted[("3", "challenger")] > 0
    assert ("1", "champion") in counted and ("3", "shadow") in counted
