"""A/B experiments end to end: a real trained project with two versions, predictions routed
to both arms by a sticky key through the in-process app, labels posted to
``POST /v1/feedback``, and the agent's ``tick_experiments`` deciding and acting."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.agent.experiments import tick_experiments
from shipyard.config import Config
from shipyard.delivery.experiments import start_experiment, stop_experiment
from shipyard.errors import ConfigError, NotFoundError
from shipyard.evaluation.evaluate import evaluate_version
from shipyard.governance.approvals import approve
from shipyard.governance.audit import verify
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import load_served_model
from shipyard.registry import Tracking, get_version
from shipyard.registry.pointers import trusted_version
from shipyard.registry.refs import ModelRef, parse_ref
from shipyard.serving.app import create_app
from shipyard.serving.feedback import FeedbackDesk
from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
from shipyard.serving.router import StickyKey
from shipyard.store import Store
from shipyard.store.experiments import find_experiment
from shipyard.store.traffic import read_traffic
from tests.support import AppClient, in_process, log_requests, project_of

USERS = 30  # callers, each sticky to one arm
BATCH = 10  # rows per request
ROWS = 600  # 60 requests: over 100 labelled rows per arm (min_samples), past the horizon


@dataclass
class Served:
    client: AppClient
    log: PredictionLogWriter
    answers: dict[str, tuple[str, Any]]  # request id:row → (version, predicted label)
    users: dict[str, set[str]]  # user → versions that answered them


@pytest.fixture
def serve(two_versions: tuple[Config, Store, Tracking]) -> Iterator[Any]:
    """Start the app on the model's slot, following the control plane's traffic."""
    config, store, tracking = two_versions
    opened: list[tuple[Any, GenerationWatcher, PredictionLogWriter]] = []

    def start() -> Served:
        slot = ModelSlot(load_served_model(tracking.client, "churn", "1"))
        watcher = GenerationWatcher(slot, store=store, client=tracking.client, interval=0.05)
        watcher.start()  # applies the experiment's split before the first request
        log = PredictionLogWriter(config.resolve(config.serving.logs), roll_seconds=0.1)
        log.start()
        desk = FeedbackDesk.for_project(project_of(config), "churn")
        app = create_app(slot, log=log, labels=desk, sticky=StickyKey.parse("header:X-User"))
        context = in_process(app)
        opened.append((context, watcher, log))
        return Served(context.__enter__(), log, {}, {})

    yield start
    for context, watcher, log in opened:
        context.__exit__(None, None, None)
        watcher.stop()
        log.close()


def _predict_all(served: Served, rows: pd.DataFrame, prefix: str) -> None:
    """Requests of ``BATCH`` rows, each from one of ``USERS`` users (the sticky key)."""
    for start in range(0, len(rows), BATCH):
        batch = rows.iloc[start : start + BATCH].drop(columns="churned")
        body = json.dumps({"instances": batch.to_dict(orient="records")}).encode()
        request_id = f"{prefix}{start // BATCH}"
        user = f"user-{(start // BATCH) % USERS}"
        status, headers, payload = served.client.call(
            "/v1/models/churn:predict", body, {"X-User": user, "X-Request-ID": request_id}
        )
        assert status == 200, payload
        for row, predicted in enumerate(json.loads(payload)["predictions"]):
            served.answers[f"{request_id}:{row}"] = (headers["x-model-version"], predicted)
        served.users.setdefault(user, set()).add(headers["x-model-version"])


def _send_labels(served: Served, right_share: dict[str, float]) -> None:
    """Label each arm's answers right for exactly ``right_share`` of them (every k-th wrong)."""
    items, seen = [], dict.fromkeys(right_share, 0)
    for request_id, (version, predicted) in served.answers.items():
        seen[version] += 1
        miss = (
            1 - right_share[version]
        )  # the k-th answer is wrong when k·miss steps past an integer
        wrong = math.floor(seen[version] * miss) > math.floor((seen[version] - 1) * miss)
        items.append(
            {"request_id": request_id, "label": 1 - int(predicted) if wrong else predicted}
        )
    status, _, payload = served.client.call("/v1/feedback", json.dumps(items).encode())
    assert status == 200, payload
    served.log.flush()


@pytest.fixture
def golden(two_versions: tuple[Config, Store, Tracking]) -> pd.DataFrame:
    config = two_versions[0]
    rows = pd.read_csv(config.root / "data" / "golden.csv")
    return pd.concat([rows] * (1 + ROWS // len(rows)), ignore_index=True).head(ROWS)


def test_a_clearly_better_arm_wins_and_is_promoted_through_the_gates(
    two_versions: tuple[Config, Store, Tracking], serve: Any, golden: pd.DataFrame
) -> None:
    config, store, tracking = two_versions
    project = project_of(config)
    experiment = start_experiment(
        project, "churn", ["1", "2"], metric="accuracy", split=[50, 50], min_effect=0.1
    )
    assert read_traffic(store, "churn")[1].challengers == {"2": 0.5}
    served = serve()
    _predict_all(served, golden, "a")
    versions = [version for version, _ in served.answers.values()]
    assert min(versions.count("1"), versions.count("2")) > 100  # both arms see traffic
    assert all(len(arms) == 1 for arms in served.users.values())  # each user stays on one

    _send_labels(served, {"1": 0.6, "2": 1.0})
    # The gates: a scorecard and, in the example, an approval by someone else. Latency
    # bounds are the scorecard's slow part and not what this test is about: left out.
    scorecard = config.root / "scorecard.yaml"
    text = scorecard.read_text()
    scorecard.write_text(text[: text.index("latency:")] + text[text.index("max_size_mb") :])
    evaluate_version(project, parse_ref("churn/2"))
    version = get_version(tracking.client, ModelRef("churn", version="2"))
    approve(project_of(config, "reviewer"), version, comment="won the A/B test")

    actions = tick_experiments(project_of(config, "agent"))
    assert any("arm 2 wins" in action for action in actions), actions
    assert any("2 promoted to champion" in action for action in actions), actions
    assert trusted_version(store, "churn", "champion") == "2"
    assert read_traffic(store, "churn")[1].empty  # the new champion has all traffic
    done = find_experiment(store, "churn", experiment.name)
    assert (done.state, done.winner) == ("promoted", "2")
    decided = store.events(kind="experiment.decided")[0]
    assert decided.actor == "agent" and decided.payload["winner"] == "2"
    numbers = decided.payload["evidence"]
    assert numbers["means"]["2"] == 1.0 and 0.55 < numbers["means"]["1"] < 0.65
    assert numbers["pairs"][0]["lower"] > 0.1  # surely better by more than min_effect
    assert len(store.events(kind="experiment.promoted")) == 1
    assert tick_experiments(project) == []  # nothing left to decide
    # The audit log vouches for every experiment event. (The workspace copy rewrote the
    # ids in its training events, which verify reports as edited: those come before.)
    first = store.events(kind="experiment.started")[0].seq
    findings = verify(project, registry=False).findings
    assert all(f.seq is not None and f.seq < first for f in findings if f.problem == "edited")


def test_equal_arms_end_in_no_difference_and_the_champion_keeps_all_traffic(
    two_versions: tuple[Config, Store, Tracking], serve: Any, golden: pd.DataFrame
) -> None:
    config, store, _ = two_versions
    project = project_of(config)
    start_experiment(project, "churn", ["1", "2"], metric="error_rate", min_effect=0.25)
    served = serve()
    _predict_all(served, golden, "t")
    assert tick_experiments(project) == []  # no labels yet: nothing to decide
    _send_labels(served, {"1": 0.8, "2": 0.8})
    actions = tick_experiments(project)
    assert len(actions) == 1 and "no difference" in actions[0], actions
    assert read_traffic(store, "churn")[1].empty
    assert trusted_version(store, "churn", "champion") == "1"
    stopped = store.events(kind="experiment.stopped")[0]
    assert stopped.payload["to"] == "stopped"
    decided = store.events(kind="experiment.decided")[0].payload["evidence"]
    assert decided["outcome"] == "no_difference"
    assert decided["means"] == {
        "1": pytest.approx(0.2, abs=0.01),
        "2": pytest.approx(0.2, abs=0.01),
    }


def test_start_refuses_what_it_cannot_run(two_versions: tuple[Config, Store, Tracking]) -> None:
    config, store, _ = two_versions
    project = project_of(config)
    with pytest.raises(ConfigError, match="not a per-prediction metric"):
        start_experiment(project, "churn", ["1", "2"], metric="f1")
    with pytest.raises(ConfigError, match="not two or more different versions"):
        start_experiment(project, "churn", ["2", "2"], metric="accuracy")
    with pytest.raises(ConfigError, match="adds up to 90"):
        start_experiment(project, "churn", ["1", "2"], metric="accuracy", split=[50, 40])
    with pytest.raises(NotFoundError):
        start_experiment(project, "churn", ["1", "9"], metric="accuracy")
    started = start_experiment(
        project, "churn", ["1", "2"], metric="accuracy", split=[80, 20], name="first"
    )
    with pytest.raises(ConfigError, match="already has an experiment"):
        start_experiment(project, "churn", ["1", "2"], metric="accuracy")
    stopped = stop_experiment(project, "churn", reason="changed our mind")
    assert stopped.state == "stopped" and stopped.name == started.name
    assert read_traffic(store, "churn")[1].empty
    assert store.events(kind="experiment.stopped")[0].reason == "changed our mind"
    with pytest.raises(ConfigError, match="already had an experiment called 'first'"):
        start_experiment(project, "churn", ["1", "2"], metric="accuracy", name="first")
    from shipyard.delivery.rollout import start_rollout

    start_rollout(store, "churn", "2", champion="1")
    with pytest.raises(ConfigError, match="roll-out in progress"):
        start_experiment(project, "churn", ["1", "2"], metric="accuracy")
    # A viewer may not start one.
    with pytest.raises(Exception, match="models:deploy"):
        start_experiment(
            project_of(config, "eve", role="viewer"), "churn", ["1", "2"], metric="mae"
        )


def test_a_business_outcome_decides_and_a_refused_promotion_waits_recorded_once(
    two_versions: tuple[Config, Store, Tracking],
) -> None:
    config, store, _ = two_versions
    project = project_of(config)
    experiment = start_experiment(
        project, "churn", ["1", "2"], metric="outcome:revenue", min_effect=1.0
    )
    for version in ("1", "2"):
        log_requests(config, version, np.full(240, 2.0), f"v{version}-")
    desk = FeedbackDesk.for_project(project, "churn")
    desk.namespaced = False  # the predictions above were logged without a caller
    try:
        # Revenue per request cycles 5, 10, 15 on arm 1 and 7, 12, 17 on arm 2: +2 a request.
        items = [
            {"request_id": f"v{v}-{i}", "outcome": {"name": "revenue", "value": base + 5 * (i % 3)}}
            for v, base in (("1", 5.0), ("2", 7.0))
            for i in range(240)
        ]
        assert desk.receive(items, None) == {"accepted": 0, "dropped": 0, "outcomes": 480}
    finally:
        desk.close()
    actions = tick_experiments(project)
    assert any("arm 2 wins" in action for action in actions), actions
    # churn/2 has no evaluation and no approval: the gates refuse, and the experiment waits.
    assert any("waiting to be promoted" in action for action in actions), actions
    assert tick_experiments(project) == []  # the refusal is recorded once
    waiting = find_experiment(store, "churn", experiment.name)
    assert (waiting.state, waiting.winner) == ("decided", "2")
    assert read_traffic(store, "churn")[1].challengers == {"2": 0.5}  # still split
    decided = store.events(kind="experiment.decided")
    assert len(decided) == 2 and "promotion refused" in decided[0].reason
    assert decided[1].payload["evidence"]["means"] == {"1": 10.0, "2": 12.0}
    stop_experiment(project, "churn", reason="promote by hand later")
    assert read_traffic(store, "churn")[1].empty
