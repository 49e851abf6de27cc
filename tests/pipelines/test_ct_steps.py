"""A cycle run step by step, one CLI command per gate, as an orchestrator runs it.

Each step is the real ``shipyard`` CLI (in-process, through ``shipyard.cli.run``) on a
real project: real training, MLflow, SQLite, Parquet. The steps share nothing but the
control plane, as pods would. The agent's part of a roll-out (guardrail verdicts, the
promotion) is played by the same delivery functions the agent calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from shipyard.cli import run
from shipyard.config import Config, load_config
from shipyard.delivery.rollout import active_rollout, advance, complete_rollout
from shipyard.pipelines import ContinuousTraining, list_cycles
from shipyard.pipelines.cycles import get_cycle
from shipyard.registry import Tracking
from shipyard.registry.aliases import CHAMPION, current_alias
from shipyard.store import Store
from tests.support import copy_workspace, project_of
from tests.support.ct import build_ct_project, write_config

DRIFT = {"signal": "performance:roc_auc", "level": "retrain", "version": "1"}


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The churn example with a data folder, a light scorecard and a champion (churn/1)."""
    return build_ct_project(tmp_path_factory.mktemp("ct-steps") / "churn")


@dataclass
class Project:
    root: Path
    config: Config
    store: Store
    tracking: Tracking

    def reload(self, **changes: Any) -> None:
        write_config(self.root, **changes)
        self.config = load_config(self.root / "shipyard.yaml", environ={})

    def append(self, name: str, rows: int = 400) -> None:
        fresh = pd.read_csv(self.root / "data" / "valid.csv").head(rows)
        fresh.to_csv(self.root / "data" / "train" / name, index=False)


def _copy(base: Path, folder: Path) -> Iterator[Project]:
    root = copy_workspace(base, folder)
    config = load_config(root / "shipyard.yaml", environ={})
    store = Store(config.db_url, actor="tester")
    yield Project(root, config, store, Tracking(config))
    store.close()


@pytest.fixture
def project(
    base_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A copy of the base project, the working directory of every CLI step."""
    for made in _copy(base_project, tmp_path / "churn"):
        monkeypatch.chdir(made.root)
        yield made


@pytest.fixture(scope="module")
def untouched_project(
    base_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """One copy of the base project for the tests that only see a command refused: each
    asserts that nothing was started in it, so they can share it."""
    yield from _copy(base_project, tmp_path_factory.mktemp("ct-refused") / "churn")


@pytest.fixture
def refusing_project(untouched_project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The shared copy, the working directory of the refused CLI step."""
    assert list_cycles(untouched_project.store, "churn") == []  # an earlier test left none
    monkeypatch.chdir(untouched_project.root)
    return untouched_project


def _shipyard(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _start(project: Project, capsys: pytest.CaptureFixture[str], cause: str) -> int:
    id_file = project.root / "out" / "cycle-id"
    code, out, err = _shipyard(
        capsys, "ct", "start", "churn", "--cause", cause, "--id-file", str(id_file)
    )
    assert code == 0, out + err
    return int(id_file.read_text())


def _advance(project: Project, times: int, *, breach: bool = False) -> None:
    """The agent's guardrail verdicts on the roll-out's next ``times`` steps."""
    later = datetime.now(UTC) + timedelta(hours=1)
    for _ in range(times):
        verdict = "breach" if breach else "pass"
        evidence = {"reason": "errors: candidate worse"} if breach else {}
        advance(
            project.store, "churn", verdict=verdict, requests=10_000, evidence=evidence, now=later
        )


def _agent_promotes(project: Project) -> None:
    """What the agent does with a roll-out that passed every step."""
    from shipyard.governance.promotion import promote
    from shipyard.registry.refs import ModelRef

    rollout = active_rollout(project.store, "churn")
    assert rollout is not None and rollout.state == "promoting"
    promote(project_of(project.config), ModelRef("churn", version=rollout.candidate), to=CHAMPION)
    complete_rollout(project.store, "churn")


def test_the_steps_in_order_promote_and_record_the_agents_cause(
    base_project: Path, project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same trigger on a twin project, acted on by the agent's loop.
    for twin in _copy(base_project, tmp_path / "twin"):
        twin.reload(**{"ct.enabled": True})
        twin.append("0001-batch.csv")
        twin.store.record("retrain_requested", "model:churn", DRIFT)
        ContinuousTraining(project_of(twin.config)).tick()
        by_agent = list_cycles(twin.store, "churn")[0]
        agent_tag = twin.tracking.client.get_model_version("churn", by_agent.candidate or "")
        agent_started = twin.store.events(kind="ct.cycle_started", limit=1)[0].payload

    project.append("0001-batch.csv")
    project.store.record("retrain_requested", "model:churn", DRIFT)
    cycle_id = _start(project, capsys, '{"kind": "drift"}')
    for gate in ("validate", "retrain", "scorecard", "feature_skew"):
        code, out, err = _shipyard(capsys, "ct", "step", str(cycle_id), gate)
        assert code == 0, f"{gate}: {out}{err}"
        assert f"{gate} passed" in out or f"{gate} skipped" in out
    cycle = get_cycle(project.store, cycle_id)
    assert cycle.candidate == "2" and cycle.rollout_id is not None

    _advance(project, 1)  # the shadow step passed: the roll-out is at its first canary step
    code, out, _ = _shipyard(capsys, "ct", "step", str(cycle_id), "shadow")
    assert code == 0 and "shadow passed" in out
    code, _, err = _shipyard(
        capsys, "ct", "step", str(cycle_id), "canary", "--timeout", "0", "--poll", "0.05"
    )
    assert code == 1 and "did not pass its canary gate within 0 s" in err
    assert "step 2/4 (10 % canary), running" in err  # where the roll-out stood, for the log
    stale = get_cycle(project.store, cycle_id)  # what a concurrent follower holds

    _advance(project, 3)
    _agent_promotes(project)
    for gate in ("canary", "promote"):
        code, out, err = _shipyard(capsys, "ct", "step", str(cycle_id), gate)
        assert code == 0, f"{gate}: {out}{err}"
    ContinuousTraining(project_of(project.config)).follow(stale)  # the agent, a beat late

    done = get_cycle(project.store, cycle_id)
    assert done.state == "promoted", done.reason
    assert [g["gate"] for g in done.gates] == [
        "validate",
        "retrain",
        "scorecard",
        "feature_skew",
        "shadow",
        "canary",
        "promote",
    ]  # each once, though two followers saw the roll-out end
    assert all(g["status"] == "passed" for g in done.gates if g["gate"] != "feature_skew")
    assert current_alias(project.tracking.client, "churn", CHAMPION) == "2"
    finished = project.store.events(kind="ct.cycle_finished", limit=5)
    assert len([e for e in finished if e.payload["cycle"] == cycle_id]) == 1

    # Recorded exactly as the agent records the same trigger.
    assert done.cause == by_agent.cause == "drift:performance:roc_auc"
    assert done.trigger == by_agent.trigger
    started = project.store.events(kind="ct.cycle_started", limit=1)[0].payload
    assert started == agent_started
    version = project.tracking.client.get_model_version("churn", "2")
    assert version.tags["shipyard.trigger"] == agent_tag.tags["shipyard.trigger"]


def test_a_failing_gate_exits_1_halts_the_cycle_and_stops_later_steps(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "scorecard.yaml").write_text(
        yaml.safe_dump({"primary": {"metric": "roc_auc", "min": 0.999}})
    )
    project.append("0001-batch.csv")
    cycle_id = _start(project, capsys, '{"kind": "manual", "reason": "new quarter"}')
    for gate in ("validate", "retrain"):
        assert _shipyard(capsys, "ct", "step", str(cycle_id), gate)[0] == 0
    code, _, err = _shipyard(capsys, "ct", "step", str(cycle_id), "scorecard")
    assert code == 1 and "scorecard failed" in err and "golden set failed" in err
    halted = get_cycle(project.store, cycle_id)
    assert halted.state == "halted" and halted.reason.startswith("scorecard")
    assert halted.trigger["reason"] == "new quarter" and halted.cause == "manual"
    assert active_rollout(project.store, "churn") is None
    code, _, err = _shipyard(capsys, "ct", "step", str(cycle_id), "shadow")
    assert code == 1 and "ended halted before its shadow gate" in err
    # A retried step reports the recorded verdict; nothing runs again.
    code, _, err = _shipyard(capsys, "ct", "step", str(cycle_id), "scorecard", "--json")
    assert code == 1
    assert len(get_cycle(project.store, cycle_id).gates) == 3


def test_steps_out_of_order_or_unknown_are_refused_with_what_to_run(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    cycle_id = _start(project, capsys, '{"kind": "manual"}')
    code, _, err = _shipyard(capsys, "ct", "step", str(cycle_id), "retrain")
    assert code == 2 and f"shipyard ct step {cycle_id} validate" in err
    code, _, err = _shipyard(capsys, "ct", "step", str(cycle_id), "canary")
    assert code == 2 and "no roll-out yet" in err
    code, _, err = _shipyard(capsys, "ct", "step", str(cycle_id), "deploy")
    assert code == 2 and "'deploy' is not a gate" in err
    code, _, err = _shipyard(capsys, "ct", "step", "999", "validate")
    assert code == 3 and "Cycle 999 does not exist" in err
    assert get_cycle(project.store, cycle_id).gates == ()


@pytest.mark.parametrize(
    ("cause", "said"),
    [
        ("{kind: drift}", "--cause is not JSON"),
        ('["drift"]', "must be a JSON object"),
        ('{"kind": "storm"}', "field 'kind' is 'storm'"),
        ('{"kind": "drift", "key": "drift:1"}', "field 'cause' must be a non-empty string"),
        ('{"kind": "drift"}', "no pending retrain_requested"),
        ('{"kind": "schedule", "fired_at": "yesterday"}', "ct.schedule is not set"),
        (
            '{"kind": "schedule", "expression": "0 3 * * *", "fired_at": "yesterday"}',
            "'fired_at' is 'yesterday'",
        ),
    ],
)
def test_a_bad_cause_is_refused_naming_the_field(
    refusing_project: Project, capsys: pytest.CaptureFixture[str], cause: str, said: str
) -> None:
    code, _, err = _shipyard(capsys, "ct", "start", "churn", "--cause", cause)
    assert code == 2 and said in err
    assert list_cycles(refusing_project.store, "churn") == []


def test_the_guards_refuse_the_first_step_as_the_agent_would(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.reload(**{"ct.cooldown_seconds": 3600})
    first = _start(project, capsys, '{"kind": "manual"}')
    code, out, _ = _shipyard(
        capsys, "ct", "start", "churn", "--cause", '{"kind": "manual"}', "--json"
    )
    assert code == 1
    deferred = json.loads(out)
    assert deferred["state"] == "deferred" and f"cooldown: cycle {first}" in deferred["reason"]
    # Past the guards, one cycle at a time: the running one is named.
    code, _, err = _shipyard(
        capsys, "ct", "start", "churn", "--cause", '{"kind": "manual"}', "--force"
    )
    assert code == 2 and f"already has a cycle running: {first}" in err
    from shipyard.pipelines.cycles import finish_cycle

    finish_cycle(project.store, first, "halted", "test: ended by hand")
    code, out, _ = _shipyard(
        capsys, "ct", "start", "churn", "--cause", '{"kind": "manual"}', "--force", "--json"
    )
    assert code == 0 and json.loads(out)["state"] == "running"


def test_a_retried_first_step_gives_back_the_running_cycle(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.store.record("retrain_requested", "model:churn", DRIFT)
    first = _start(project, capsys, '{"kind": "drift"}')
    assert _start(project, capsys, '{"kind": "drift"}') == first
    cycle = get_cycle(project.store, first)
    stored = json.dumps({**cycle.trigger})
    assert _start(project, capsys, stored) == first  # the stored form names the same trigger
    assert len(list_cycles(project.store, "churn")) == 1


def test_data_that_changed_after_validation_fails_the_retrain_step(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.append("0001-batch.csv")
    cycle_id = _start(project, capsys, '{"kind": "manual"}')
    assert _shipyard(capsys, "ct", "step", str(cycle_id), "validate")[0] == 0
    project.append("0002-late.csv", 50)
    code, _, err = _shipyard(capsys, "ct", "step", str(cycle_id), "retrain")
    assert code == 4 and f"train.data changed after cycle {cycle_id} validated it" in err
    failed = get_cycle(project.store, cycle_id)
    assert failed.state == "failed" and failed.candidate is None


def test_the_exported_steps_run_in_order_as_the_orchestrator_runs_them(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands `shipyard pipeline export` puts in each step, filled in and run."""
    code, out, err = _shipyard(
        capsys, "pipeline", "export", "churn", "--to", "argo", "--image", "img:1", "--json"
    )
    assert code == 0, err
    steps = json.loads(out)["steps"]
    id_file = project.root / "out" / "cycle-id"
    filled = {"{cause}": '{"kind": "manual", "reason": "exported"}', "{id_file}": str(id_file)}
    project.append("0001-batch.csv")
    for step in steps:
        if step["name"] == "shadow":  # the agent's part: the roll-out passes every step
            _advance(project, 4)
            _agent_promotes(project)
        if id_file.exists():
            filled["{cycle}"] = id_file.read_text()
        command = [filled.get(part, part) for part in step["command"]]
        assert command[0] == "shipyard"
        code, out, err = _shipyard(capsys, *command[1:])
        assert code == 0, f"{step['name']}: {out}{err}"
    done = get_cycle(project.store, int(id_file.read_text()))
    assert done.state == "promoted" and done.cause == "manual"
    assert done.trigger["reason"] == "exported"
    assert [g["gate"] for g in done.gates] == [s["name"] for s in steps[1:]]
    assert current_alias(project.tracking.client, "churn", CHAMPION) == done.candidate


@pytest.mark.slow
def test_each_step_is_its_own_shipyard_process(project: Project) -> None:
    """Nothing is shared in memory: each gate is a fresh `shipyard` process, as in a pod."""
    import os
    import subprocess
    import sys

    shipyard = str(Path(sys.executable).parent / "shipyard")
    project.append("0001-batch.csv")
    id_file = project.root / "out" / "cycle-id"
    start = ["ct", "start", "churn", "--cause", '{"kind": "manual"}', "--id-file", str(id_file)]
    commands = [start]
    commands += [
        ["ct", "step", "{cycle}", gate]
        for gate in ("validate", "retrain", "scorecard", "feature_skew")
    ]
    for command in commands:
        argv = [id_file.read_text() if part == "{cycle}" else part for part in command]
        done = subprocess.run(
            [shipyard, *argv],
            cwd=project.root,
            env={k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    cycle = get_cycle(project.store, int(id_file.read_text()))
    assert [g["gate"] for g in cycle.gates] == [
        "validate",
        "retrain",
        "scorecard",
        "feature_skew",
    ]
    assert cycle.state == "running" and cycle.rollout_id is not None
    rollout = active_rollout(project.store, "churn")
    assert rollout is not None and rollout.candidate == cycle.candidate
    assert rollout.history[0]["evidence"]["cycle"] == cycle.id
