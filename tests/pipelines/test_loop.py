"""The continuous-training loop on a real project: real training, MLflow, SQLite, Parquet.

One churn project gets its champion once per module; every test works on its own copy
(database, data folder and workspace, re-pointed to the copy by ``copy_workspace``), so
each test's cycles start from the same state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from shipyard.agent import Agent
from shipyard.config import Config, load_config
from shipyard.delivery.rollout import active_rollout, advance
from shipyard.pipelines import ContinuousTraining, list_cycles, manual_trigger
from shipyard.registry import Tracking
from shipyard.registry.aliases import CHAMPION, current_alias
from shipyard.store import Store
from tests.support import AlertReceiver, copy_workspace, project_of, wait_for
from tests.support.ct import build_ct_project, write_config


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The churn example with a data folder, a light scorecard and a champion (churn/1)."""
    return build_ct_project(tmp_path_factory.mktemp("ct") / "churn")


@dataclass
class Project:
    root: Path
    config: Config
    store: Store
    tracking: Tracking

    def reload(self, **changes: Any) -> None:
        write_config(self.root, **changes)
        self.config = load_config(self.root / "shipyard.yaml", environ={})

    def loop(self) -> ContinuousTraining:
        return ContinuousTraining(project_of(self.config))

    def versions(self) -> list[str]:
        found = self.tracking.client.search_model_versions("name='churn'")
        return sorted(str(v.version) for v in found)

    def append(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.root / "data" / "train" / name, index=False)


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> Iterator[Project]:
    root = copy_workspace(base_project, tmp_path / "churn")
    config = load_config(root / "shipyard.yaml", environ={})
    store = Store(config.db_url, actor="tester")
    yield Project(root, config, store, Tracking(config))
    store.close()


def _fresh_rows(base: Path, rows: int = 400) -> pd.DataFrame:
    """Rows for the data folder: the validation file's, as new labelled data."""
    return pd.read_csv(base / "data" / "valid.csv").head(rows)


def _finish_rollout(project: Project, *, breach_at: int | None = None) -> None:
    """Walk the roll-out through its steps (each step's verdict given, time moved on)."""
    later = datetime.now(UTC) + timedelta(hours=1)
    for index in range(10):
        rollout = active_rollout(project.store, "churn")
        if rollout is None or rollout.state != "running":
            return
        verdict = "breach" if breach_at == index else "pass"
        evidence = {"reason": "errors: candidate worse"} if verdict == "breach" else {}
        advance(
            project.store, "churn", verdict=verdict, requests=10_000, evidence=evidence, now=later
        )


def test_manual_cycle_passes_every_gate_and_becomes_champion(project: Project) -> None:
    project.append("0001-batch.csv", _fresh_rows(project.root))
    cycle = project.loop().run(manual_trigger("test"))
    assert cycle.state == "running", cycle.reason
    assert [g["gate"] for g in cycle.gates] == ["validate", "retrain", "scorecard", "feature_skew"]
    assert [g["status"] for g in cycle.gates] == ["passed", "passed", "passed", "skipped"]
    assert cycle.candidate == "2" and cycle.rollout_id is not None
    rollout = active_rollout(project.store, "churn")
    assert rollout is not None and rollout.strategy == "shadow-canary"
    assert rollout.steps == (100.0, 10.0, 50.0, 100.0)
    assert rollout.history[0]["evidence"]["cycle"] == cycle.id
    # The run records its cause, which lineage shows.
    version = project.tracking.client.get_model_version("churn", "2")
    assert version.tags["shipyard.trigger"] == "manual"
    assert cycle.trigger["source_rows"] == 3000 + 400

    _finish_rollout(project)
    Agent(project_of(project.config)).tick()  # promotes, follows the cycle
    Agent(project_of(project.config)).tick()
    done = list_cycles(project.store, "churn")[0]
    assert done.state == "promoted", done.reason
    assert [g["gate"] for g in done.gates] == [
        "validate",
        "retrain",
        "scorecard",
        "feature_skew",  # skipped: churn reads no feature views
        "shadow",
        "canary",
        "promote",
    ]
    assert all(g["status"] == "passed" for g in done.gates if g["gate"] != "feature_skew")
    assert current_alias(project.tracking.client, "churn", CHAMPION) == "2"


def test_invalid_new_data_halts_before_training(project: Project) -> None:
    good = pd.read_csv(project.root / "data" / "valid.csv").head(200)
    bad = pd.read_csv(project.root / "data" / "bad_batch.csv").assign(region="north")
    project.append("0001-bad.csv", bad[list(good.columns)])
    cycle = project.loop().run(manual_trigger())
    assert cycle.state == "halted"
    validate = cycle.gate("validate")
    assert validate is not None and validate["status"] == "failed"
    assert validate["evidence"]["failure_count"] > 0
    assert cycle.gate("retrain") is None
    assert project.versions() == ["1"]  # nothing trained
    assert active_rollout(project.store, "churn") is None
    kinds = [e.kind for e in project.store.events(subject="model:churn", limit=10)]
    assert "ct.cycle_finished" in kinds


def test_unreadable_new_data_halts_with_the_reason(project: Project) -> None:
    project.append("0001-short.csv", _fresh_rows(project.root).drop(columns=["region"]))
    cycle = project.loop().run(manual_trigger())
    assert cycle.state == "halted"
    validate = cycle.gate("validate")
    assert validate is not None and "same columns" in validate["evidence"]["hint"]
    assert project.versions() == ["1"]


def test_failing_scorecard_halts_before_any_traffic(project: Project) -> None:
    (project.root / "scorecard.yaml").write_text(
        yaml.safe_dump({"primary": {"metric": "roc_auc", "min": 0.999}})
    )
    project.append("0001-batch.csv", _fresh_rows(project.root))
    cycle = project.loop().run(manual_trigger())
    assert cycle.state == "halted"
    scorecard = cycle.gate("scorecard")
    assert scorecard is not None and scorecard["status"] == "failed"
    assert scorecard["evidence"]["golden"]["passed"] is False
    assert project.versions() == ["1", "2"]  # trained, but never served
    assert active_rollout(project.store, "churn") is None
    assert current_alias(project.tracking.client, "churn", CHAMPION) == "1"


def test_production_comparison_without_enough_labels_leaves_the_golden_set_to_decide(
    project: Project,
) -> None:
    from shipyard.pipelines.gates import production_comparison

    project.reload(**{"ct.recent_labelled": 500})
    # No prediction log yet: too few labelled rows, so the golden set decides alone.
    found = production_comparison(project.config, project.tracking, "churn", "1", "1")
    assert found["rows"] == 0 and "golden set only" in found["note"]


def test_breach_at_a_canary_step_rolls_the_cycle_back(project: Project) -> None:
    project.append("0001-batch.csv", _fresh_rows(project.root))
    cycle = project.loop().run(manual_trigger())
    assert cycle.state == "running"
    _finish_rollout(project, breach_at=1)  # shadow passes, the first canary step breaches
    Agent(project_of(project.config)).tick()
    done = list_cycles(project.store, "churn")[0]
    assert done.state == "rolled_back"
    statuses = {g["gate"]: g["status"] for g in done.gates}
    assert statuses["shadow"] == "passed"
    assert statuses["canary"] == "failed" and statuses["promote"] == "failed"
    assert current_alias(project.tracking.client, "churn", CHAMPION) == "1"


def test_drift_trigger_starts_a_cycle_with_its_cause_on_the_run(project: Project) -> None:
    project.reload(**{"ct.enabled": True})
    project.append("0001-batch.csv", _fresh_rows(project.root))
    loop = project.loop()
    assert loop.tick() == []  # nothing pending
    project.store.record(
        "retrain_requested",
        "model:churn",
        {"signal": "performance:roc_auc", "level": "retrain", "version": "1"},
    )
    actions = loop.tick()
    assert actions and "drift:performance:roc_auc" in actions[0]
    cycle = list_cycles(project.store, "churn")[0]
    assert cycle.cause == "drift:performance:roc_auc" and cycle.state == "running"
    version = project.tracking.client.get_model_version("churn", cycle.candidate or "")
    assert version.tags["shipyard.trigger"] == "drift:performance:roc_auc"
    # The trigger is spent: once the cycle ends, the same event starts nothing.
    project.store.record("monitor.ran", "model:churn", {})
    _finish_rollout(project, breach_at=0)
    loop.tick()
    assert list_cycles(project.store, "churn")[0].state == "rolled_back"
    assert loop.tick() == []


def test_cooldown_defers_a_trigger_once_and_keeps_it_pending(project: Project) -> None:
    project.reload(**{"ct.enabled": True, "ct.cooldown_seconds": 3600})
    project.append("0001-batch.csv", _fresh_rows(project.root))
    first = project.loop().run(manual_trigger())
    _finish_rollout(project, breach_at=0)
    loop = project.loop()
    loop.tick()  # follows the first cycle to its end
    project.store.record(
        "retrain_requested", "model:churn", {"signal": "feature:tenure_months", "version": "1"}
    )
    loop.tick()
    loop.tick()
    cycles = list_cycles(project.store, "churn")
    deferred = [c for c in cycles if c.state == "deferred"]
    assert len(deferred) == 1  # recorded once, however often the agent looks
    assert "cooldown" in deferred[0].reason and str(first.id) in deferred[0].reason
    assert loop.pending() is not None  # still waiting for the cooldown


def test_minimum_new_rows_defers_until_enough_data_arrives(project: Project) -> None:
    project.reload(**{"ct.enabled": True, "ct.min_new_rows": 300})
    project.append("0001-small.csv", _fresh_rows(project.root, 100))
    project.store.record(
        "retrain_requested", "model:churn", {"signal": "prediction", "version": "1"}
    )
    loop = project.loop()
    loop.tick()
    cycle = list_cycles(project.store, "churn")[0]
    assert cycle.state == "deferred"
    assert cycle.gates[0]["evidence"]["min_new_rows"]["new_rows"] == 100
    project.append("0002-more.csv", _fresh_rows(project.root, 300).tail(250))
    loop.watch.every = 0.0  # look at the folder again now
    loop.tick()
    started = list_cycles(project.store, "churn")[0]
    assert started.state == "running" and started.cause == "drift:prediction"


def test_small_performance_loss_skips_and_spends_the_trigger(project: Project) -> None:
    project.reload(**{"ct.enabled": True, "ct.min_performance_loss": 0.05})
    loop = project.loop()
    # The latest monitor run measured the champion 0.01 below its training roc_auc.
    _measured(project, drop=0.01, signal="feature:contract")
    loop.tick()
    cycle = list_cycles(project.store, "churn")[0]
    assert cycle.state == "skipped" and "below the 0.05" in cycle.reason
    assert loop.pending() is None  # spent: the champion is still good
    assert project.versions() == ["1"]


def test_retrain_cli_refuses_another_model_and_shows_status(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.cli import run

    monkeypatch.chdir(project.root)
    assert run(["retrain", "other"]) == 2
    project.append("0001-batch.csv", _fresh_rows(project.root))
    assert run(["retrain", "churn", "--reason", "new quarter"]) == 0
    assert run(["ct", "status", "churn"]) == 0
    cycle = list_cycles(project.store, "churn")[0]
    assert cycle.trigger["reason"] == "new quarter"


def test_after_drift_the_retrain_waits_for_rows_from_after_the_trigger(project: Project) -> None:
    project.reload(**{"ct.enabled": True, "ct.rows_after_trigger": 200})
    project.append("0001-before.csv", _fresh_rows(project.root, 300))  # before the alarm
    project.store.record(
        "retrain_requested", "model:churn", {"signal": "performance:roc_auc", "version": "1"}
    )
    loop = project.loop()
    loop.watch.every = 0.0
    loop.tick()
    waiting = list_cycles(project.store, "churn")[0]
    assert waiting.state == "deferred" and waiting.trigger["rows_at_trigger"] == 3300
    assert "0 new rows since the trigger" in waiting.reason
    project.append("0002-after.csv", _fresh_rows(project.root, 400).tail(200))
    loop.tick()
    started = list_cycles(project.store, "churn")[0]
    assert started.state == "running" and started.id != waiting.id


def test_a_halted_cycle_pages_the_owner_with_the_evidence(
    project: Project, alert_receiver: Callable[..., AlertReceiver]
) -> None:
    """The page goes to a local stand-in for the owner's webhook."""
    hook = alert_receiver("webhook")
    routes = [{"kind": "webhook", "url": hook.url}]
    project.reload(**{"monitoring.routes": routes, "monitoring.retries": 0})
    (project.root / "scorecard.yaml").write_text(
        yaml.safe_dump({"primary": {"metric": "roc_auc", "min": 0.999}})
    )
    project.append("0001-batch.csv", _fresh_rows(project.root))
    cycle = project.loop().run(manual_trigger())
    page = wait_for(lambda: hook.received and hook.received[0], what="the page about the cycle")
    assert cycle.state == "halted" and page is not None
    assert page["signal"] == f"ct:cycle-{cycle.id}" and page["version"] == "2"
    assert page["evidence"]["golden"]["passed"] is False
    assert "halted at scorecard" in page["summary"] and "owner: growth-analytics" in page["summary"]
    kinds = [e.kind for e in project.store.events(subject="model:churn", limit=20)]
    assert "ct.alert_delivered" in kinds


def test_a_failing_training_function_halts_at_retrain(project: Project) -> None:
    project.reload(**{"train.params.n_estimators": -1})  # sklearn refuses it
    project.append("0001-batch.csv", _fresh_rows(project.root))
    cycle = project.loop().run(manual_trigger())
    assert cycle.state == "halted" and cycle.reason.startswith("retrain")
    retrain = cycle.gate("retrain")
    assert retrain is not None and retrain["status"] == "failed"
    assert "n_estimators" in retrain["evidence"]["error"]
    assert cycle.gate("scorecard") is None and project.versions() == ["1"]


def test_new_data_at_the_source_starts_a_cycle(project: Project) -> None:
    project.reload(**{"ct.enabled": True, "ct.on_drift": False, "ct.on_new_data": True})
    loop = project.loop()
    loop.watch.every = 0.0
    assert loop.tick() == []  # the first look is the baseline, not news
    project.append("0001-batch.csv", _fresh_rows(project.root))
    actions = loop.tick()
    cycle = list_cycles(project.store, "churn")[0]
    assert actions and cycle.cause.startswith("new_data:") and cycle.state == "running"
    assert cycle.trigger["rows"] == 3400


def test_the_schedule_starts_a_cycle_when_it_fires(project: Project) -> None:
    project.reload(**{"ct.enabled": True, "ct.on_drift": False, "ct.schedule": "0 3 * * *"})
    moments = iter(
        [
            datetime(2026, 11, 24, 2, 0, tzinfo=UTC),  # the loop starts
            datetime(2026, 11, 24, 2, 30, tzinfo=UTC),  # before 03:00: nothing
            datetime(2026, 11, 24, 3, 1, tzinfo=UTC),  # fired
        ]
    )
    clock = {"now": next(moments)}
    loop = ContinuousTraining(project_of(project.config), now=lambda: clock["now"])
    clock["now"] = next(moments)
    assert loop.pending() is None
    clock["now"] = next(moments)
    found = loop.pending()
    assert found is not None and found.cause == "schedule:0 3 * * *"
    assert found.details["fired_at"] == "2026-11-24T03:00:00+00:00"


def test_production_comparison_fails_a_candidate_worse_on_live_labels(project: Project) -> None:
    """Live rows as the server logs them, labels as /v1/feedback stores them."""
    from shipyard.logs.writer import LabelRecord, PredictionBatch, PredictionLogWriter
    from shipyard.pipelines.gates import production_comparison
    from shipyard.training import train

    rows = pd.read_csv(project.root / "data" / "valid.csv").head(200)
    features = rows.drop(columns=["churned"])
    root = project.config.resolve(project.config.serving.logs)
    with PredictionLogWriter(root) as writer:
        for i, (_, row) in enumerate(features.iterrows()):
            writer.log(
                PredictionBatch(
                    request_id=f"r{i}",
                    time=datetime.now(UTC),
                    model="churn",
                    version="1",
                    role="live",
                    columns=tuple(features.columns),
                    matrix=np.array([row.to_numpy(dtype=object)], dtype=object),
                    labels=np.array([0]),
                    probabilities=None,
                    latency_ms=1.0,
                    status="ok",
                )
            )
    with PredictionLogWriter(root, kind="labels") as writer:
        for i, truth in enumerate(rows["churned"]):
            writer.log(LabelRecord(f"r{i}", datetime.now(UTC), "churn", int(truth)))
    # A candidate that learned shuffled labels: no better than chance on live rows.
    shuffled = pd.read_csv(project.root / "data" / "train" / "0000-initial.csv")
    shuffled["churned"] = shuffled["churned"].sample(frac=1.0, random_state=0).to_numpy()
    bad = project.root / "shuffled.csv"
    shuffled.to_csv(bad, index=False)
    settings = project.config.train.model_copy(update={"data": bad})
    version = train(project_of(project.config.model_copy(update={"train": settings}))).version
    project.reload(**{"ct.recent_labelled": 150})
    found = production_comparison(project.config, project.tracking, "churn", version, "1")
    assert found["rows"] == 150 and found["metric"] == "roc_auc"
    assert found["champion"] > 0.75 and found["candidate"] < found["champion"] - 0.1
    assert found["worse_by"] > 0.1 and found["passed"] is False
    same = production_comparison(project.config, project.tracking, "churn", "1", "1")
    assert same["worse_by"] == 0 and same["passed"] is True


def _measured(project: Project, drop: float, signal: str = "performance:roc_auc") -> None:
    """A monitor run measuring churn/1 ``drop`` below its training roc_auc on 500 labels,
    and the retrain request ``signal`` raised."""
    performance = {"labelled": 500, "metrics": {"roc_auc": _trained_auc(project) - drop}}
    _stored_run(project, {"version": "1", "performance": performance})
    project.store.record("retrain_requested", "model:churn", {"signal": signal, "version": "1"})


def _trained_auc(project: Project) -> float:
    """churn/1's roc_auc as its training run logged it."""
    run_id = project.tracking.client.get_model_version("churn", "1").run_id
    return float(project.tracking.client.get_run(run_id).data.metrics["roc_auc"])


def _stored_run(project: Project, result: dict[str, Any]) -> None:
    """Store a monitor run of churn/1 with ``result``, as the monitor would."""
    from shipyard.store import MonitorRunRow

    with project.store.session() as session:
        session.add(
            MonitorRunRow(
                model="churn",
                version="1",
                window_spec="last:500",
                rows=500,
                level="ok",
                result=result,
            )
        )


def test_cost_guard_skips_a_cheap_drop_and_retrains_on_a_costly_one(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shipyard.cli import run
    from tests.support.logs import log_requests

    # 0.50 EUR per unit of roc_auc lost per prediction; a retrain costs 10 EUR of review.
    project.reload(
        **{
            "ct.enabled": True,
            "ct.cost_per_error": 0.5,
            "ct.retrain_fixed_cost": 10.0,
            "cost.currency": "EUR",
        }
    )
    log_requests(project.config, "1", np.full(300, 2.0), "live-")  # 300 since promotion
    log_requests(project.config, "2", np.full(50, 2.0), "other-")  # not the champion's
    project.append("0001-batch.csv", _fresh_rows(project.root))

    _measured(project, drop=0.01)  # 0.01 × 0.5 × 300 = 1.50 EUR < 10 EUR
    project.loop().tick()
    skipped = list_cycles(project.store, "churn")[0]
    assert skipped.state == "skipped", skipped.reason
    assert "expected loss 1.50 EUR" in skipped.reason and "not worth a retrain" in skipped.reason
    assert project.versions() == ["1"]

    _measured(project, drop=0.2)  # 0.2 × 0.5 × 300 = 30.00 EUR ≥ 10 EUR + compute
    project.loop().tick()
    started = list_cycles(project.store, "churn")[0]
    assert started.state == "running", started.reason
    guards = started.gate("guards")
    assert guards is not None and guards["status"] == "passed"
    assert guards["evidence"]["cost"]["expected_loss"] == pytest.approx(30.0)

    monkeypatch.chdir(project.root)
    capsys.readouterr()
    assert run(["ct", "status", "churn", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    costs = [(c["state"], c["cost"]) for c in shown]
    assert [state for state, _ in costs] == ["running", "skipped"]
    for (_, cost), expected in zip(costs, (30.0, 1.5), strict=True):
        assert cost["expected_loss"] == pytest.approx(expected)
        assert cost["traffic"] == 300 and cost["currency"] == "EUR"
        assert cost["cpu_seconds"] > 0 and cost["fixed_cost"] == 10.0
        assert cost["retrain_cost"] == pytest.approx(10.0 + cost["compute_cost"])
    assert run(["ct", "status", "churn"]) == 0
    text = capsys.readouterr().out
    assert "1.50 < 10.00 EUR" in text and "30.00 ≥ 10.00 EUR" in text


def test_cost_kpi_weighs_the_kpis_fall_per_prediction(project: Project) -> None:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    from shipyard.logs.records import PredictionBatch
    from shipyard.logs.root import project_log_root
    from shipyard.logs.writer import PredictionLogWriter
    from shipyard.pipelines.economics import champion_since

    project.reload(
        **{
            "ct.enabled": True,
            "ct.cost_kpi": "revenue",
            "ct.retrain_fixed_cost": 10.0,
            "kpis": [
                {"name": "revenue", "sql": "SELECT * FROM read_csv('kpi.csv')", "bucket": "1m"}
            ],
        }
    )
    since = champion_since(project_of(project.config), "churn", "1")
    assert since is not None
    # Four one-minute buckets of 10 predictions each: 2.00 EUR per prediction, then 1.90.
    # They start at the whole minute after the champion took over, so each minute's ten
    # fall in one bucket whatever second the test started at.
    start = (since + timedelta(minutes=1)).replace(second=0, microsecond=0)
    values: dict[str, float] = {}
    with PredictionLogWriter(project_log_root(project.config)) as writer:
        for minute in range(4):
            for i in range(10):
                request = f"k{minute}-{i}"
                values[request] = 2.0 if minute < 2 else 1.9
                writer.log(
                    PredictionBatch(
                        request_id=request,
                        time=start + timedelta(seconds=60 * minute + i),
                        model="churn",
                        version="1",
                        role="live",
                        columns=("x",),
                        matrix=np.array([[1.0]]),
                        labels=np.array([0]),
                        probabilities=None,
                        latency_ms=1.0,
                        status="ok",
                    )
                )
    pacsv.write_csv(
        pa.table({"request_id": list(values), "value": list(values.values())}),
        project.root / "kpi.csv",
    )
    _measured(project, drop=0.3)  # the metric's drop is not used: the KPI replaces it
    project.loop().tick()
    cycle = list_cycles(project.store, "churn")[0]
    assert cycle.state == "skipped", cycle.reason
    # 0.10 lost per prediction × 40 predictions = 4.00 < 10.00 (+ compute).
    assert "expected loss 4.00 USD" in cycle.reason and "KPI 'revenue'" in cycle.reason
    guards = cycle.gate("guards")
    assert guards is not None
    cost = guards["evidence"]["cost"]
    assert cost["loss_per_prediction"] == pytest.approx(0.1) and cost["traffic"] == 40


def test_an_unreliable_estimate_is_not_taken_as_a_measured_loss(project: Project) -> None:
    from shipyard.pipelines.guards import check_guards

    project.reload(**{"ct.min_performance_loss": 0.05})
    estimate = {
        "value": _trained_auc(project) - 0.01,
        "low": 0.3,
        "high": 1.0,
        "reliable": False,
        "support": 0.4,
        "reason": "60% of the window's scores fall where the reference has little support",
    }
    _stored_run(
        project,
        {"version": "1", "performance": {"labelled": 0}, "estimated": {"roc_auc": estimate}},
    )
    loop = project.loop()
    loss = loop.performance_loss("1")
    assert loss is not None and loss.source == "estimated (CBPE)"
    assert loss.unreliable is not None and "little support" in loss.unreliable
    [decision] = check_guards(
        project.config, now=datetime.now(UTC), last_started=None, new_rows=None, loss=loss
    )
    # A reliable 0.01 drop would be skipped (below 0.05); an unreliable one is unknown.
    assert decision.allowed and "unreliable" in decision.reason
    assert "treated as unknown" in decision.reason
