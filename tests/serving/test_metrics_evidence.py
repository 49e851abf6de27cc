"""Alerts only on evidence: what ``/metrics`` exports, and what it leaves out.

Monitor gauges only for windows that met ``monitoring.min_rows`` (realised performance:
``min_labelled``), none for a version without traffic, ``owner`` and ``team`` on every
``shipyard_*`` series, counts typed as counters with ``_total``, and process metrics.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipyard.config import Config
from shipyard.config.evaluation import Scorecard
from shipyard.models.served import ServedModel, load_served_model
from shipyard.registry import Tracking
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import Lineup, ModelSlot
from shipyard.serving.metrics import Evidence, ScorecardBounds, ServerMetrics, Teams
from shipyard.serving.router import Route, Router, TrafficPlan
from shipyard.serving.server import scorecard_bounds
from tests.support import in_process

DRIFT = ("shipyard_feature_drift_score", "shipyard_prediction_drift_score")


@pytest.fixture(scope="module")
def served(trained_project: Config) -> ServedModel:
    return load_served_model(Tracking(trained_project).client, "churn", "1")


def run(version: str, rows: int, labelled: int) -> dict[str, Any]:
    """A stored monitor run, as the monitor writes it."""
    return {
        "model": "churn",
        "version": version,
        "rows": rows,
        "features": [
            {"feature": "plan", "method": "psi", "score": 10.04},
            {"feature": "age", "method": "kl", "score": None},
        ],
        "prediction": {"score": 0.06, "bands": {"inspect": 0.03}},
        "estimated": {"roc_auc": {"value": 0.81}},
        "performance": {"metrics": {"roc_auc": 0.7}, "coverage": 0.4, "labelled": labelled},
    }


def samples(metrics: ServerMetrics) -> dict[str, list[dict[str, str]]]:
    """Each exported series name with the labels of its samples, from the exposition text."""
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(dict(sample.labels))
    return found


def two_versions(served: ServedModel, challenger_weight: float) -> ModelSlot:
    plan = TrafficPlan(
        routes=(
            Route("1", "champion", 1.0 - challenger_weight),
            Route("2", "challenger", challenger_weight),
        )
    )
    models = {"1": served, "2": replace(served, version="2")}
    return ModelSlot(Lineup(models, Router(plan)))


def test_no_drift_gauges_below_min_rows(served: ServedModel) -> None:
    metrics = create_app(served).state.metrics
    metrics.evidence = Evidence(min_rows=200, min_labelled=50)
    metrics.monitor = lambda: [run("1", rows=2, labelled=2)]  # the 2 predictions
    exported = samples(metrics)
    for name in (*DRIFT, "shipyard_prediction_drift_band", "shipyard_estimated_performance"):
        assert name not in exported, name
    assert "shipyard_realized_performance" not in exported

    metrics.monitor = lambda: [run("1", rows=200, labelled=49)]
    exported = samples(metrics)
    assert exported["shipyard_feature_drift_score"] == [
        {"model": "churn", "version": "1", "feature": "plan", "method": "psi"}
    ]  # the feature without a score has no gauge
    assert "shipyard_realized_performance" not in exported  # 49 labels: not enough
    assert exported["shipyard_label_coverage"] == [{"model": "churn", "version": "1"}]

    metrics.monitor = lambda: [run("1", rows=200, labelled=50)]
    assert samples(metrics)["shipyard_realized_performance"] == [
        {"model": "churn", "version": "1", "metric": "roc_auc"}
    ]


def test_a_version_without_traffic_has_no_gauges(served: ServedModel) -> None:
    slot = two_versions(served, challenger_weight=0.2)
    metrics = create_app(slot).state.metrics
    metrics.monitor = lambda: [run("1", 500, 100), run("2", 500, 100)]
    assert {s["version"] for s in samples(metrics)["shipyard_feature_drift_score"]} == {"1", "2"}
    # The challenger is retired (weight 0): its gauges go at the next scrape.
    slot.lineup = two_versions(served, challenger_weight=0.0).lineup
    exported = samples(metrics)
    for name in (*DRIFT, "shipyard_realized_performance", "shipyard_estimated_performance"):
        assert {s["version"] for s in exported[name]} == {"1"}, name
    # A shadow with a share takes traffic, so it keeps its gauges.
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0),), shadow_version="2", shadow_share=0.5)
    slot.lineup = Lineup(slot.lineup.models, Router(plan))
    assert {s["version"] for s in samples(metrics)["shipyard_feature_drift_score"]} == {"1", "2"}


def test_every_shipyard_series_carries_owner_and_team(served: ServedModel) -> None:
    app = create_app(served)
    metrics = app.state.metrics
    metrics.teams = Teams(owner="ana@example.com", team="risk")
    metrics.bounds = ScorecardBounds(0.05, (("roc_auc", "min", 0.8),))
    metrics.monitor = lambda: [run("1", 500, 100)]
    with in_process(app) as client:
        client.call("/v1/models/churn:predict", b"{bad")  # counts a 400
        text = client.call("/metrics")[2].decode()
    names = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("shipyard"):
                names.add(sample.name)
                assert sample.labels["owner"] == "ana@example.com", sample
                assert sample.labels["team"] == "risk", sample
            else:
                assert "owner" not in sample.labels, sample
    assert {
        "shipyard_requests_total",
        "shipyard_feature_drift_score",
        "shipyard_scorecard_latency_seconds",
        "shipyard_scorecard_bound",
        "shipyard_degraded",
    } <= names


def test_unset_owner_and_team_add_no_labels(served: ServedModel) -> None:
    exported = samples(create_app(served).state.metrics)
    assert all(
        "owner" not in labels and "team" not in labels
        for labels in exported["shipyard_traffic_weight"]
    )


def test_counts_are_counters_and_process_metrics_are_exported(served: ServedModel) -> None:
    metrics = create_app(served).state.metrics
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    for name in ("shipyard_requests", "shipyard_log_records", "shipyard_shadow_dropped"):
        assert families[name].type == "counter", name
    counted = [
        f for f in families.values() if f.name.startswith("shipyard") and f.type == "counter"
    ]
    for family in counted:
        assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family
    gauges = [f.name for f in families.values() if f.type == "gauge"]
    assert not [name for name in gauges if name.endswith(("_dropped", "_records", "_count"))]
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_resident_memory_bytes"].samples[0].value > 0


def test_scorecard_bounds_come_from_the_configured_scorecard(trained_project: Config) -> None:
    scorecard = {
        "primary": {"metric": "roc_auc", "min": 0.8},
        "metrics": [{"metric": "log_loss", "max": 0.5}],
        "latency": {"max_p99_ms": 25.0},
    }
    evaluation = trained_project.evaluation.model_copy(
        update={"scorecard": Scorecard.model_validate(scorecard)}
    )
    config = trained_project.model_copy(update={"evaluation": evaluation})
    bounds = scorecard_bounds(config)
    assert bounds.latency_p99_seconds == pytest.approx(0.025)
    assert bounds.floors == (("roc_auc", "min", 0.8), ("log_loss", "max", 0.5))


def test_the_server_reads_the_latest_run_of_each_loaded_version(
    trained_copy: Config, served: ServedModel
) -> None:
    from datetime import UTC, datetime

    from shipyard.serving.server import latest_runs
    from shipyard.store.monitor_runs import save_monitor_run
    from shipyard.store.tables import MonitorRunRow
    from tests.support import project_of

    store = project_of(trained_copy).store
    for version, rows in (("1", 10), ("1", 20), ("2", 30), ("3", 40), ("2", 50)):
        result = run(version, rows, 0)
        save_monitor_run(
            store,
            MonitorRunRow(
                model="churn",
                version=version,
                window_spec="last:5000",
                rows=rows,
                level="ok",
                result=result,
                created_at=datetime.now(UTC),
            ),
        )
    slot = two_versions(served, challenger_weight=0.5)  # versions 1 and 2 loaded, not 3
    found = sorted((r["version"], r["rows"]) for r in latest_runs(store, "churn", slot))
    assert found == [("1", 20), ("2", 50)]
