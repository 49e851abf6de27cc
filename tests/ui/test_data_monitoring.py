"""The model page's monitoring, cost and KPI charts, from stored runs, usage rows and the
team's own KPI files; a failing KPI or a missing source shows on its panel, never raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shipyard.project import Project
from shipyard.store.usage import UsageRecord, write_usage
from shipyard.ui.data import SERIES, ChartContext, model_view, parse_range
from shipyard.ui.panels import panels_for
from tests.support.dashboard_data import (
    bare_project,
    monitor_result,
    save_run,
    synthetic_rows,
    write_prediction_log,
)

MODEL = "m00"
NOW = datetime.now(UTC).replace(microsecond=0)
KPIS = """kpis:
  - name: retained
    sql: SELECT request_id, kept AS value FROM read_csv('outcomes.csv')
    join: request_id
    bucket: 1h
  - name: broken
    sql: SELECT nothing FROM read_csv('missing.csv')
    join: request_id
  - name: wrong columns
    sql: SELECT 1 AS one
    join: time
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Six hours of logs, three monitor runs, a scorecard floor and three KPIs."""
    scorecard = "evaluation:\n  scorecard:\n    primary: {metric: roc_auc, min: 0.75}\n"
    found = bare_project(tmp_path / "p", MODEL, extra=scorecard + KPIS)
    rows = synthetic_rows(5000, NOW - timedelta(hours=6), NOW, versions=("1",), seed=7)
    write_prediction_log(found.config, MODEL, rows)
    kept = np.random.default_rng(1).integers(0, 2, len(rows))
    lines = ["request_id,kept", *(f"{r},{k}" for r, k in zip(rows.request_id, kept, strict=True))]
    (tmp_path / "p" / "outcomes.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for hours, (age, income, auc, est) in zip(
        (5, 3, 1),
        ((0.01, 0.02, 0.82, 0.81), (0.05, 0.1, 0.78, 0.79), (0.3, 0.12, 0.7, 0.74)),
        strict=True,
    ):
        save_run(
            found,
            monitor_result(
                MODEL,
                "1",
                NOW - timedelta(hours=hours),
                features={"age": age, "income": income},
                feature_retrain=0.15,
                prediction=age / 2,
                prediction_band=0.1,
                realised={"roc_auc": auc},
                estimated={"roc_auc": est},
                coverage=0.25 * (6 - hours) / 5,
                lag_p50=7200.0,
            ),
        )
    return found


def _ctx(project: Project) -> ChartContext:
    return ChartContext(project, MODEL, parse_range("6h", None, None, "24h"))


def test_feature_drift_heatmap_is_each_score_over_its_retrain_level(project: Project) -> None:
    chart = SERIES["feature_drift"](_ctx(project))
    assert chart.heatmap is not None
    assert chart.heatmap.y == ["age", "income"]
    assert len(chart.heatmap.x) == 3
    np.testing.assert_allclose(
        np.array(chart.heatmap.z, dtype=float),
        np.array([[0.01, 0.05, 0.3], [0.02, 0.1, 0.12]]) / 0.15,
    )
    assert chart.points == 6


def test_prediction_drift_is_drawn_against_its_bands(project: Project) -> None:
    chart = SERIES["prediction_drift"](_ctx(project))
    lines = {s.name: s for s in chart.series}
    assert lines["1 score"].y == pytest.approx([0.005, 0.025, 0.15])
    assert lines["1 inspect"].y == pytest.approx([0.1] * 3) and lines["1 inspect"].dash
    assert lines["1 pause"].y == pytest.approx([0.3] * 3)


def test_performance_shows_realised_estimated_and_the_scorecard_floor(project: Project) -> None:
    chart = SERIES["performance"](_ctx(project))
    lines = {s.name: s for s in chart.series}
    assert lines["1 roc_auc realised"].y == pytest.approx([0.82, 0.78, 0.7])
    assert lines["1 roc_auc estimated"].y == pytest.approx([0.81, 0.79, 0.74])
    assert lines["1 roc_auc estimate low"].y == pytest.approx([0.79, 0.77, 0.72])
    assert lines["roc_auc scorecard min"].y == [0.75, 0.75]
    # The scorecard's metric is drawn; the estimate's band edges wait in the legend.
    assert not lines["1 roc_auc realised"].hidden and not lines["1 roc_auc estimated"].hidden
    assert lines["1 roc_auc estimate low"].hidden and lines["1 roc_auc estimate high"].hidden
    labels = SERIES["labels"](_ctx(project))
    assert labels.series[0].y == pytest.approx([0.05, 0.15, 0.25])
    assert "2.0 h" in (labels.note or "")


def test_cost_per_thousand_comes_from_the_recorded_usage(project: Project) -> None:
    ctx = _ctx(project)
    assert SERIES["cost"](ctx).series == []  # nothing recorded yet: a note, not an error
    at = NOW - timedelta(minutes=30)
    records = [
        UsageRecord(at, "h", 1, MODEL, "1", "champion", 400, 2.0, 0.0, 0.02, "USD"),
        UsageRecord(at, "h", 2, MODEL, "1", "champion", 600, 3.0, 0.0, 0.03, "USD"),
        UsageRecord(at, "h", 1, MODEL, "2", "shadow", 100, 1.0, 0.0, 0.01, "USD"),
    ]
    write_usage(project.store, records)
    chart = SERIES["cost"](_ctx(project))
    lines = {(s.name, s.arm): s.y for s in chart.series}
    assert chart.error is None
    assert [v for v in lines[("1 champion", "champion")] if v] == [pytest.approx(0.05)]
    assert [v for v in lines[("2 shadow", "shadow")] if v] == [pytest.approx(0.1)]


def test_each_kpi_has_its_chart_and_a_failing_one_shows_its_error(project: Project) -> None:
    view = model_view(project, MODEL, parse_range("6h", None, None, "24h"))
    kpis = [c for c in view.charts if c.panel.id == "kpi"]
    assert len(kpis) == 3
    good, broken, wrong = kpis
    assert good.error is None and good.points > 0
    assert "retained" in (good.note or "")
    assert broken.error is not None and "broken" in broken.error
    assert wrong.error is not None and "wrong columns" in wrong.error
    others = [c.panel.id for c in view.charts if c.panel.id != "kpi"]
    assert others == [p.id for p in panels_for("model") if p.id != "kpi"]


def test_panels_without_data_say_so_instead_of_failing(tmp_path: Path) -> None:
    empty = bare_project(tmp_path / "empty", "quiet")
    write_prediction_log(
        empty.config,
        "quiet",
        synthetic_rows(10, NOW - timedelta(hours=30), NOW - timedelta(hours=29)),
    )
    view = model_view(empty, "quiet", parse_range("6h", None, None, "24h"))
    for chart in view.charts:
        assert chart.error is None, chart.panel.id
    notes = {c.panel.id: c.note for c in view.charts}
    assert "No monitor run" in (notes["feature_drift"] or "")
    assert "No KPI" in (notes["kpi"] or "")
    assert all(y == 0 for s in view.charts[0].series for y in s.y)


def test_an_unreadable_log_shows_on_the_log_charts_and_the_rest_renders(project: Project) -> None:
    folder = project.config.workspace / "logs" / "predictions" / f"model={MODEL}"
    day = next(folder.glob("date=*"))
    (day / "part-stray.parquet").write_bytes(b"not parquet at all")
    view = model_view(project, MODEL, parse_range("6h", None, None, "24h"))
    failed = {c.panel.id: c.error for c in view.charts if c.error}
    assert set(failed) == {"throughput", "latency", "errors", "kpi"}
    assert "move it out of the log directory" in (failed["throughput"] or "")
    assert next(c for c in view.charts if c.panel.id == "performance").points > 0
