"""A churn project with a real operating history, built through the domain functions.

``build_history`` takes a project trained twice (churn/1 champion, churn/2 candidate) and
lives through what a level-2 team does: it evaluates, approves and promotes, monitors
(the alerter opens a real alert), runs a continuous-training cycle, stages a roll-out
that promotes on its guardrails and one that a guardrail rolls back, rolls the champion
back by hand, holds the agent's lease and keeps an exported pipeline in the project.
Every event is written by the code the CLI and the agent call; the test reads the times
back from the event log to know the expected numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shipyard.config import Config
from shipyard.delivery.lease import Lease
from shipyard.delivery.rollout import advance, complete_rollout, start_rollout
from shipyard.evaluation.evaluate import evaluate_version
from shipyard.governance.approvals import approve
from shipyard.governance.promotion import promote
from shipyard.monitoring.alerting.alerter import Alerter
from shipyard.monitoring.alerting.signals import Signal
from shipyard.pipelines.cycles import finish_cycle, start_cycle, update_cycle
from shipyard.pipelines.export import DEFAULT_CAUSE, export_pipeline, pipeline_spec
from shipyard.pipelines.gates import ROLLOUT_GATES, gate_names
from shipyard.project import Project
from shipyard.registry.aliases import rollback
from shipyard.registry.refs import ModelRef
from shipyard.registry.views import get_version
from shipyard.store import MonitorRunRow
from shipyard.store.monitor_runs import save_monitor_run
from tests.support import project_of
from tests.support.ct import write_config
from tests.support.projects import load

__all__ = ["LEVEL_2", "SECRETS", "Built", "build_history", "monitor_run"]

SECRET_KEY = "R0UTING-KEY-0123456789abcdef"
SECRET_WEBHOOK = "https://hooks.slack.com/services/T000/B000/S3CRETS3CRET"
SECRETS = ("R0UTING-KEY", "S3CRETS3CRET", "T000/B000", "Bearer-h3ader", "pa55word")
"""Pieces of the routes' secrets: none may appear in a runbook, a draft or a CLI answer."""
LEVEL_2 = {
    "ct.enabled": True,
    "ct.schedule": "1d",
    "monitoring.every_seconds": 300,
    "monitoring.routes": [
        {"kind": "pagerduty", "url": "http://127.0.0.1:9/v2/enqueue", "routing_key": SECRET_KEY},
        {"kind": "slack", "url": SECRET_WEBHOOK, "min_level": "retrain"},
        {
            "kind": "webhook",
            "url": "http://ops:pa55word@127.0.0.1:9/hook",
            "headers": {"Authorization": "Bearer-h3ader"},
            "min_level": "pause",
        },
    ],
    "model.team": "growth",
}


@dataclass(frozen=True)
class Built:
    """The project after its history: its configuration and an admin's project handle."""

    config: Config
    project: Project


def monitor_run(project: Project, version: str, level: str) -> None:
    """Store one monitor run of churn/``version`` at ``level``, as the monitor does."""
    save_monitor_run(
        project.store,
        MonitorRunRow(
            model="churn",
            version=version,
            window_spec="last:5000",
            rows=5000,
            level=level,
            result={"level": level},
            created_at=datetime.now(UTC),
        ),
    )


def build_history(root: Path) -> Built:
    """Live through a level-2 history in the project at ``root`` (churn/1 is champion)."""
    write_config(root, **LEVEL_2)
    (root / "pipelines").mkdir()
    spec = pipeline_spec(
        "churn",
        "registry.example.com/churn:1",
        gates=gate_names(),
        rollout_gates=ROLLOUT_GATES,
        cause=DEFAULT_CAUSE,
        secrets=(),
        timeout=None,
        namespace=None,
    )
    (root / "pipelines" / "churn-argo.yaml").write_text(export_pipeline(spec, "argo"))
    config = load(root)
    admin = project_of(config)
    store = admin.store
    Lease(store, holder="agent-host").acquire()

    # churn/2: scored, approved by someone else, promoted through a staged roll-out.
    evaluate_version(admin, ModelRef("churn", version="1"))
    evaluate_version(admin, ModelRef("churn", version="2"))
    monitor_run(admin, "1", "ok")
    monitor_run(admin, "1", "retrain")  # drift onset
    Alerter(config, store, routes=[]).process(
        [Signal("churn", "1", "feature:tenure", "retrain", 0.3)]
    )
    cycle = start_cycle(store, "churn", "monitor:feature:tenure", {"kind": "drift"}, champion="1")
    rollout = start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=0)
    update_cycle(store, cycle.id, candidate="2", rollout_id=rollout.id)
    for _step in rollout.steps:
        advance(store, "churn", verdict="pass", requests=100, evidence={"p_value": 0.4})
    bob = project_of(config, "bob", role="approver")
    approve(bob, get_version(bob.client, ModelRef("churn", version="2")), comment="reviewed")
    promote(admin, ModelRef("churn", version="2"), to="champion")
    complete_rollout(store, "churn")
    finish_cycle(store, cycle.id, "promoted", "every gate passed")
    monitor_run(admin, "2", "ok")  # healthy again

    # churn/1 rolled out again: a guardrail breaches and rolls it back at once.
    start_rollout(store, "churn", "1", champion="2", step_seconds=0, min_requests=0)
    advance(store, "churn", verdict="breach", requests=80, evidence={"reason": "error rate up"})

    # And the champion rolled back by hand.
    rollback(store, admin.client, "churn", reason="rehearsal")
    return Built(config, admin)
