"""Maturity, ROI and incidents read alike from PostgreSQL (times come back zone-aware)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.config import Config
from shipyard.delivery.rollout import advance, start_rollout
from shipyard.moments import as_utc
from shipyard.monitoring.alerting.alerter import Alerter
from shipyard.monitoring.alerting.signals import Signal
from shipyard.operations import assess_maturity, incident_report, roi_metrics
from shipyard.pipelines.cycles import finish_cycle, start_cycle
from shipyard.project import Principal, Project
from shipyard.store import MonitorRunRow
from shipyard.store.monitor_runs import save_monitor_run


def _run(project: Project, level: str) -> datetime:
    moment = datetime.now(UTC)
    save_monitor_run(
        project.store,
        MonitorRunRow(
            model="churn", version="1", window_spec="last:100", rows=100, level=level,
            result={}, created_at=moment,
        ),
    )  # fmt: skip
    return moment


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_the_same_history_gives_the_same_numbers_on_both_databases(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'shipyard.db'}"
    )
    config = Config(database_url=url, root=tmp_path, model={"name": "churn"})
    project = Project(config, Principal("tester", "test"))
    store = project.store
    _run(project, "ok")
    onset = _run(project, "pause")
    Alerter(config, store, routes=[]).process([Signal("churn", "1", "prediction", "pause", 0.9)])
    healthy = _run(project, "ok")
    cycle = start_cycle(store, "churn", "schedule", {"kind": "schedule"}, champion="1")
    finish_cycle(store, cycle.id, "halted", "the scorecard failed")
    start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=0)
    advance(store, "churn", verdict="breach", requests=10, evidence={"reason": "latency"})

    (opened,) = store.events(kind="alert.opened")
    roi = roi_metrics(project, period="1d")
    mttd, mttr = roi.metric("mttd"), roi.metric("mttr")
    drift_ttd = (as_utc(opened.at) - onset).total_seconds()
    drift_ttr = (healthy - as_utc(opened.at)).total_seconds()
    assert mttd.n == 2 and mttd.value == pytest.approx(drift_ttd / 2, abs=1e-3)
    assert mttr.n == 2 and mttr.value == pytest.approx(drift_ttr / 2, abs=1e-3)
    assert roi.metric("retrain_ship_rate").value == 0.0
    assert roi.metric("change_failure_rate").value == 1.0  # the one roll-out rolled back

    report = assess_maturity(project)
    assert report.characteristic("drift_monitoring").level == 1
    assert report.characteristic("rollback").level == 2  # a guardrail rolled one back
    assert report.characteristic("retraining").level == 0  # ct.enabled is off

    found = incident_report(project, "churn", since=onset)
    assert [i.kind for i in found.incidents] == ["drift", "guardrail"]
    assert found.incidents[0].signal == "prediction"
    assert found.incidents[0].recovery == "an ok monitor run"
    project.close()
