"""ROI metrics: exact values from a history of known timings, and from a real history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipyard.config import Config
from shipyard.errors import ConfigError
from shipyard.operations import roi_metrics
from shipyard.operations.history import CycleRecord, History, MonitorRunRecord
from shipyard.operations.roi import compute_roi
from shipyard.operations.timings import incidents
from shipyard.registry import Tracking
from shipyard.store import Store
from shipyard.store.events import Event
from tests.support.operations import Built, build_history

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Log:
    """Events with chosen times, ids in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(
        self, minutes: float, kind: str, subject: str, reason: str = "", **payload: Any
    ) -> None:
        self.events.append(
            Event(
                len(self.events) + 1, at(minutes), "tester", kind, subject, payload, reason=reason
            )
        )


def known_history() -> History:
    """Two weeks of churn: two promotions, a drift incident fixed by a rollback, a breach."""
    log = Log()
    # v1: data snapshotted at 0, registered at 30 after a 10-minute run, champion at 90.
    log.add(30, "run.finished", "run:r1", model="churn", metrics={"training_duration_seconds": 600},
            cost={"cpu_seconds": 600, "amount": 0.5, "currency": "EUR"})  # fmt: skip
    log.add(30, "model_version.registered", "model:churn/1", run_id="r1", data_digest="d1")
    log.add(90, "alias.promote", "model:churn@champion", from_version=None, to_version="1")
    # v2 on the same data (a code change): run from 1000 to 1010, champion at 1060, swap 1061.
    log.add(
        1010, "run.finished", "run:r2", model="churn", metrics={"training_duration_seconds": 600}
    )
    log.add(1010, "model_version.registered", "model:churn/2", run_id="r2", data_digest="d1")
    log.add(1060, "alias.promote", "model:churn@champion", from_version="1", to_version="2")
    log.add(1061, "serving.swapped", "model:churn/2", from_version="1")
    # Drift: ok run at 2000, inspect run at 2100, alert at 2105, rollback at 2130, ok run 2160.
    log.add(2105, "alert.opened", "alert:churn/feature:tenure", level="inspect", version="2")
    log.add(2130, "alias.rollback", "model:churn@champion", from_version="2", to_version="1")
    # A roll-out breach in week 2 at 10100, paged at 10102.
    log.add(10100, "rollout.rolled_back", "model:churn/3", reason="error rate up", to="rolled_back")
    log.add(10102, "rollout.alert_delivered", "model:churn/3", route="pager")
    runs = (
        MonitorRunRecord("churn", "2", "ok", at(2000), 1),
        MonitorRunRecord("churn", "2", "inspect", at(2100), 2),
        MonitorRunRecord("churn", "1", "unknown", at(2140), 3),
        MonitorRunRecord("churn", "1", "ok", at(2160), 4),
    )
    cycles = (
        CycleRecord(1, "churn", "monitor", "drift", "promoted", "2", at(900), at(1060)),
        CycleRecord(2, "churn", "monitor", "drift", "halted", None, at(3000), at(3010)),
        CycleRecord(3, "churn", "schedule", "schedule", "skipped", None, at(4000), at(4000)),
    )
    return History(
        events=tuple(log.events), monitor_runs=runs, cycles=cycles, datasets={"d1": at(0)}
    )


def test_each_metric_is_computed_from_the_timings() -> None:
    history = known_history()
    report = compute_roi(history, since=T0, until=T0 + timedelta(days=14), period="7d")
    m = {metric.key: metric for metric in report.metrics}
    # v1: data at 0 → champion at 90 (5400 s); v2: its run began at 1000 → served at 1061.
    assert m["iteration_time"].value == pytest.approx((5400 + 61 * 60) / 2)
    assert m["iteration_time"].n == 2
    assert m["deployment_frequency"].value == pytest.approx(1.0)  # 2 promotions / 2 weeks
    assert [p.value for p in m["deployment_frequency"].trend] == [2.0, 0.0]
    # Changes: v1 stuck, v2 was rolled back, the week-2 roll-out was rolled back.
    assert m["change_failure_rate"].value == pytest.approx(2 / 3)
    assert m["change_failure_rate"].n == 3
    # Drift: onset 2100 → alert 2105 (300 s); breach 10100 → page 10102 (120 s).
    assert m["mttd"].value == pytest.approx((300 + 120) / 2)
    assert [p.value for p in m["mttd"].trend] == [300.0, 120.0]
    # Recovery: alert 2105 → ok run 2160 after the rollback (3300 s); the breach's rollback
    # came before its page (0 s).
    assert m["mttr"].value == pytest.approx(3300 / 2)
    assert m["retraining_cost"].value == pytest.approx(0.5)
    assert (
        m["retraining_cost"].unit == "EUR"
        and "1 run(s) recorded no cost" in m["retraining_cost"].detail
    )
    assert m["retrain_ship_rate"].value == pytest.approx(0.5)  # 1 promoted of 2 finished
    assert m["retrain_ship_rate"].n == 2


def test_the_incidents_say_how_they_ended() -> None:
    drift, breach = incidents(known_history())
    assert drift.kind == "drift" and drift.signal == "feature:tenure"
    assert drift.onset == at(2100) and drift.detected == at(2105) and drift.recovered == at(2160)
    assert drift.recovery == "rollback to version 1, then an ok monitor run"
    assert breach.kind == "guardrail" and breach.signal == "error rate up"
    assert breach.time_to_detect == 120.0 and breach.time_to_recover == 0.0


def test_since_and_until_bound_the_window() -> None:
    second_week = compute_roi(
        known_history(), since=T0 + timedelta(days=7), until=T0 + timedelta(days=14), period="1d"
    )
    m = {metric.key: metric for metric in second_week.metrics}
    assert m["deployment_frequency"].value == 0.0 and m["deployment_frequency"].n == 0
    assert m["iteration_time"].value is None and m["iteration_time"].n == 0
    assert m["mttd"].value == 120.0 and len(m["mttd"].trend) == 7
    assert m["change_failure_rate"].value == 1.0


def test_an_empty_history_has_no_values_but_says_so() -> None:
    report = compute_roi(History(), until=T0, period="7d")
    for metric in report.metrics:
        if metric.key == "deployment_frequency":
            assert metric.value == 0.0
        else:
            assert metric.value is None and metric.n == 0, metric.key
        assert metric.detail
    assert len(report.to_dict()["metrics"]) == 7


def test_a_malformed_period_says_what_to_write() -> None:
    with pytest.raises(ConfigError, match="--period 'weekly' is not a duration"):
        compute_roi(History(), period="weekly")


@pytest.fixture
def lived(two_versions: tuple[Config, Store, Tracking]) -> Iterator[Built]:
    config, _store, _tracking = two_versions
    built = build_history(config.root)
    yield built
    built.project.close()


def test_a_real_history_gives_the_metrics_its_event_times_imply(lived: Built) -> None:
    store = lived.project.store
    report = roi_metrics(lived.project, period="1d")
    m = {metric.key: metric for metric in report.metrics}
    (opened,) = store.events(kind="alert.opened")
    (breach,) = store.events(kind="rollout.rolled_back")
    rollbacks = store.events(kind="alias.rollback")
    assert len(rollbacks) == 1 and m["mttd"].n == 2  # the drift incident and the breach
    # The drift's onset is the stored run at "retrain"; it was detected by the alert.
    from sqlalchemy import select

    from shipyard.moments import as_utc
    from shipyard.store import MonitorRunRow

    with store.session() as session:
        onset = session.scalar(
            select(MonitorRunRow.created_at).where(MonitorRunRow.level == "retrain")
        )
    drift_ttd = (as_utc(opened.at) - as_utc(onset)).total_seconds()
    assert m["mttd"].value == pytest.approx(drift_ttd / 2)  # the breach was never paged: 0 s
    assert m["deployment_frequency"].n == 2  # churn/1 (fixture), churn/2 (through governance)
    assert m["change_failure_rate"].n == 3  # two promotions, one rolled-back roll-out
    assert m["change_failure_rate"].value == pytest.approx(2 / 3)  # churn/2 was rolled back
    assert m["retrain_ship_rate"].value == 1.0 and m["retrain_ship_rate"].n == 1
    assert m["iteration_time"].n == 2 and m["iteration_time"].value > 0
    # Each training run priced itself (run.finished's cost); the metric is their sum.
    spent = [e.payload["cost"]["amount"] for e in store.events(kind="run.finished")]
    assert len(spent) == 2 and m["retraining_cost"].n == 2
    assert m["retraining_cost"].value == pytest.approx(sum(spent))
    assert "recorded no cost" not in m["retraining_cost"].detail
    assert as_utc(breach.at) <= report.until
