"""The fleet, version and audit pages' data: attention order with reasons, numbers against
numpy, unknown models and versions named with what exists, the audit log searched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.config import Config
from shipyard.errors import NotFoundError
from shipyard.project import Project
from shipyard.store import Store
from shipyard.store.event_kinds import EventKind
from shipyard.store.traffic import TrafficSettings, write_traffic
from shipyard.ui.data import (
    audit_view,
    fleet_rows,
    known_models,
    model_view,
    parse_range,
    version_view,
)
from tests.support import project_of
from tests.support.dashboard_data import (
    bare_project,
    monitor_result,
    save_run,
    synthetic_rows,
    write_prediction_log,
)

NOW = datetime.now(UTC).replace(microsecond=0)
FLOOR = {"metric": "roc_auc", "value": 0.6, "kind": "floor", "level": "retrain", "limit": 0.75}
FLOOR["method"] = "scorecard"  # as the monitor stores a breach of the scorecard


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Any]:
    """Five models: one with an open alert, one paused by drift, one failing requests, one
    below its scorecard floor, one calm (with a challenger, a shadow and a resolved alert)."""
    project = bare_project(tmp_path / "fleet", "calm")
    since = NOW - timedelta(hours=2)
    logged = {}
    for i, (model, errors) in enumerate(
        [("alerting", 0.0), ("paused", 0.0), ("failing", 0.2), ("below", 0.0), ("calm", 0.0)]
    ):
        rows = synthetic_rows(
            4000, since, NOW, versions=("1", "2"), shadow="3", error_rate=errors, seed=i
        )
        write_prediction_log(project.config, model, rows)
        logged[model] = rows
    for model, level, breaches in [
        ("alerting", "ok", []),
        ("paused", "pause", []),
        ("failing", "ok", []),
        ("below", "retrain", [FLOOR]),
        ("calm", "ok", []),
    ]:
        result = monitor_result(
            model, "1", NOW - timedelta(minutes=10), features={"age": 0.01}, level=level,
            realised={"roc_auc": 0.6 if breaches else 0.8}, coverage=0.5, lag_p50=60.0,
            breaches=breaches,
        )  # fmt: skip
        save_run(project, result)
    store = project.store
    store.record(
        EventKind.ALERT_OPENED, "alert:alerting/feature:age", {"level": "inspect", "version": "1"}
    )
    store.record(EventKind.ALERT_OPENED, "alert:calm/feature:age", {"level": "inspect"})
    store.record(EventKind.ALERT_RESOLVED, "alert:calm/feature:age", {"level": "inspect"})
    write_traffic(store, "calm", TrafficSettings(challengers={"2": 0.1}, shadow="3"))
    return {
        "project": project,
        "rows": logged,
        "window": parse_range(None, since.isoformat(), NOW.isoformat(), "24h"),
    }


def test_fleet_rows_put_what_needs_attention_first_and_say_why(fleet: dict[str, Any]) -> None:
    rows = fleet_rows(fleet["project"], fleet["window"])
    assert [r.model for r in rows] == ["alerting", "paused", "failing", "below", "calm"]
    why = {r.model: r.reasons for r in rows}
    assert why["alerting"] == ["1 open alert"]
    assert why["paused"] == ["monitor level pause"]
    assert why["failing"][0].startswith("error rate 2")
    assert "realised roc_auc 0.6 beyond the scorecard's bound 0.75" in why["below"]
    assert why["calm"] == []
    calm = rows[-1]
    assert (calm.challengers, calm.shadow, calm.open_alerts) == ({"2": 0.1}, "3", 0)
    assert (calm.drift_level, calm.realized, calm.label_coverage) == ("ok", {"roc_auc": 0.8}, 0.5)


def test_fleet_numbers_match_numpy_on_the_live_rows(fleet: dict[str, Any]) -> None:
    window = fleet["window"]
    rows = {r.model: r for r in fleet_rows(fleet["project"], window)}
    for model in ("failing", "calm"):
        logged = fleet["rows"][model]
        live = logged.role == "live"
        ok = live & (logged.status == "ok")
        row = rows[model]
        assert row.requests_per_second == pytest.approx(ok.sum() / window.seconds, rel=1e-12)
        assert row.error_rate == pytest.approx(1 - ok.sum() / live.sum(), abs=1e-12)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert row.latency_ms[name] == pytest.approx(np.quantile(logged.latency_ms[ok], q))


def test_an_unknown_model_is_a_404_naming_the_models(fleet: dict[str, Any]) -> None:
    project = fleet["project"]
    assert known_models(project) == ["alerting", "below", "calm", "failing", "paused"]
    with pytest.raises(NotFoundError) as caught:
        model_view(project, "<script>nope", fleet["window"])
    assert caught.value.http_status == 404
    assert "alerting, below, calm, failing, paused" in str(caught.value)
    with pytest.raises(NotFoundError) as missing:
        version_view(project, "calm", "9")
    assert "none registered" in str(missing.value)


def test_the_model_view_lists_alerts_and_events(fleet: dict[str, Any]) -> None:
    window = parse_range("3h", None, None, "24h")  # up to now: the events came after NOW
    view = model_view(fleet["project"], "calm", window)
    assert view.versions == ["1", "2", "3"]
    assert [(a["signal"], a["open"]) for a in view.alerts] == [("feature:age", False)]
    assert [e["kind"] for e in view.events] == ["traffic.changed", "alert.opened"]  # newest first
    alerting = model_view(fleet["project"], "alerting", window)
    assert [(a["signal"], a["open"], a["level"]) for a in alerting.alerts] == [
        ("feature:age", True, "inspect")
    ]


def test_the_audit_view_searches_and_verifies(fleet: dict[str, Any]) -> None:
    project = fleet["project"]
    everything = audit_view(project)
    assert everything.total == 4
    assert everything.verified["ok"] is True and everything.verified["size"] == 4
    assert everything.checkpoint is None
    found = audit_view(project, "CALM")
    assert found.total == 3 and {e["subject"] for e in found.events} == {
        "alert:calm/feature:age",
        "model:calm",
    }
    alerts = audit_view(project, "", "alert.", limit=2, offset=1)
    assert alerts.total == 3 and len(alerts.events) == 2
    assert [e["seq"] for e in alerts.events] == [2, 1]
    assert audit_view(project, "100%_off").total == 0  # LIKE wildcards are searched as text
    viewer = project_of(project.config, "vic", role="viewer")
    assert audit_view(viewer, "resolved", verify=False).total == 1
    project.store.record(EventKind.ALERT_RESOLVED, "alert:alerting/feature:age", {})
    grown = audit_view(project)  # the log grew: verified again, not the minute-old result
    assert grown.verified["ok"] is True and grown.verified["size"] == 5


def test_the_version_view_shows_lineage_card_and_serving(
    two_versions: tuple[Config, Store, Any],
) -> None:
    config, _store, _tracking = two_versions
    project: Project = project_of(config)
    view = version_view(project, "churn", "1")
    assert view.lineage["run"]["id"]
    assert len(view.lineage["dataset"]["digest"]) == 64
    assert view.lineage["params"]["max_depth"] == "3"
    assert view.card["status"] == "unsigned"
    assert [item["kind"] for item in view.serving] == ["alias.promote"]
    assert "→ 1" in view.serving[0]["what"]
    second = version_view(project, "churn", "2")
    # churn/2 was trained before churn/1 became champion, and by no CT cycle: no parent.
    assert second.lineage["parent"] is None
    assert second.serving == [] and second.scorecard is None
    from shipyard.evaluation.evaluate import evaluate_version
    from shipyard.registry import parse_ref

    champion = evaluate_version(project, parse_ref("churn/1"))
    candidate = evaluate_version(project, parse_ref("churn/2"))
    second = version_view(project, "churn", "2")
    assert second.scorecard is not None and second.champion_scorecard is not None
    assert second.scorecard["passed"] == candidate.passed
    assert second.scorecard["champion_version"] == "1"
    assert second.champion_scorecard["version"] == "1"
    assert second.champion_scorecard["passed"] == champion.passed
    if second.training_cost is not None:  # recorded by training once it measures its cost
        assert second.training_cost["cpu_seconds"] > 0
    with pytest.raises(NotFoundError) as caught:
        version_view(project, "churn", "7")
    assert "Versions of churn: 1, 2" in str(caught.value)


def test_roll_outs_show_each_steps_evidence_and_cycles_each_gate(fleet: dict[str, Any]) -> None:
    from shipyard.delivery.rollout import advance, start_rollout
    from shipyard.pipelines.cycles import record_gate, start_cycle

    project = fleet["project"]
    store = project.store
    cycle = start_cycle(store, "calm", "monitor:feature:age", {"level": "retrain"}, champion="1")
    record_gate(store, cycle.id, "scorecard", "passed", {"roc_auc": 0.81})
    start_rollout(store, "calm", "2", champion="1", steps=(0.1, 1.0), step_seconds=60.0,
                  min_requests=10)  # fmt: skip
    mid = model_view(project, "calm", parse_range("3h", None, None, "24h"))
    assert mid.rollout_active and mid.rollouts[0]["state"] == "running"
    advance(store, "calm", verdict="breach", requests=40,
            evidence={"reason": "p99 latency above the champion's", "p99_ms": 180.0})  # fmt: skip
    # The owner paged about the rollback, and the retrain a monitor asked for: the story.
    store.record(EventKind.ROLLOUT_ALERT_DELIVERED, "model:calm/2", {"route": "pager"})
    store.record(EventKind.RETRAIN_REQUESTED, "model:calm", {"signal": "feature:age"})
    view = model_view(project, "calm", parse_range("3h", None, None, "24h"))
    assert not view.rollout_active
    rollout = view.rollouts[0]
    assert (rollout["candidate"], rollout["state"]) == ("2", "rolled_back")
    last = rollout["history"][-1]
    assert last["to"] == "rolled_back" and last["step"] == 1
    assert last["evidence"]["p99_ms"] == 180.0 and last["evidence"]["requests"] == 40
    gates = view.cycles[0]["gates"]
    assert [(g["gate"], g["status"], g["evidence"]) for g in gates] == [
        ("scorecard", "passed", {"roc_auc": 0.81})
    ]
    kinds = [a.kind for a in view.charts[0].annotations]
    assert "rollout.started" in kinds and "rollout.rolled_back" in kinds
    assert {"rollout.alert_delivered", "retrain_requested", "ct.cycle_started"} <= set(kinds)
    rolled = next(a for a in view.charts[0].annotations if a.kind == "rollout.rolled_back")
    assert rolled.arm == "challenger" and "p99 latency" in rolled.text


def test_the_pages_read_postgresql_alike(tmp_path: Path, postgres_url: str) -> None:
    project = bare_project(tmp_path / "pg", "m00", extra=f"database_url: {postgres_url}\n")
    since = NOW - timedelta(hours=1)
    rows = synthetic_rows(2000, since, NOW, versions=("1",), error_rate=0.3, seed=11)
    write_prediction_log(project.config, "m00", rows)
    write_prediction_log(project.config, "m01", synthetic_rows(500, since, NOW, seed=12))
    save_run(project, monitor_result("m01", "1", NOW - timedelta(minutes=5), level="pause"))
    save_run(project, monitor_result("m01", "1", NOW - timedelta(minutes=1), level="retrain"))
    project.store.record(EventKind.ALERT_OPENED, "alert:m01/prediction", {"level": "retrain"})
    window = parse_range(None, since.isoformat(), NOW.isoformat(), "24h")
    found = fleet_rows(project, window)
    assert [(r.model, r.open_alerts, r.drift_level) for r in found] == [
        ("m01", 1, "retrain"),
        ("m00", 0, "unknown"),
    ]
    assert found[1].error_rate == pytest.approx(float((rows.status == "error").mean()))
    assert audit_view(project, "M01").total == 1
    view = model_view(project, "m01", parse_range("2h", None, None, "24h"))
    assert [a["signal"] for a in view.alerts] == ["prediction"]


def test_the_audit_view_shows_the_latest_signed_checkpoint(tmp_path: Path) -> None:
    from shipyard.governance.audit import write_checkpoint
    from shipyard.governance.signing import generate_keys

    private, public = tmp_path / "keys" / "audit.pem", tmp_path / "p" / "audit.pub"
    generate_keys(private, public)
    signing = f"signing:\n  private_key: {private}\n  public_key: {public}\n"
    project = bare_project(tmp_path / "p", "m00", extra=signing)
    project.store.record(EventKind.ALERT_OPENED, "alert:m00/prediction", {"level": "inspect"})
    first = write_checkpoint(project)
    project.store.record(EventKind.ALERT_RESOLVED, "alert:m00/prediction", {"level": "inspect"})
    second = write_checkpoint(project)
    view = audit_view(project)
    assert view.checkpoint is not None
    assert (view.checkpoint["size"], view.checkpoint["root"]) == (second.size, second.root)
    assert view.checkpoint["size"] > first.size
    assert view.verified["ok"] is True and view.verified["checkpoints"] == 2
