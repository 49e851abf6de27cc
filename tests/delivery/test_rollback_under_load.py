"""Roll-outs rolled back under concurrent load on a real two-worker server: no request fails.

One ``shipyard serve NAME --workers 2`` process follows the control plane for the whole
module while eight callers keep it busy on keep-alive connections. Each test starts a
roll-out, sees the candidate answer, then takes it back: by hand (``abort_rollout``),
by the agent after a real latency breach, and for blue/green the full switch to the
candidate and the switch back. Every response must be a 200 with the answering
version's own prediction, and once the rollback is written, every worker comes back to
the champion and stays there. How fast it does so is the machine's business, not the
test's: it waits on the answers, with a generous deadline.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from shipyard.agent import Agent
from shipyard.config import Config
from shipyard.delivery import (
    abort_rollout,
    active_rollout,
    advance,
    read_traffic,
    start_rollout,
)
from shipyard.delivery.rollout import get_rollout
from shipyard.logs.reader import query_log
from shipyard.models.served import load_served_model
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.serving.protocols import decode_v1
from shipyard.store import Store
from tests.support import (
    PATIENCE,
    ServeProcess,
    TrainedExamples,
    project_of,
    register_numeric,
    server_environment,
    wait_for,
)

NAME = "rollout"
CHAMPION, HEALTHY, SLOW = "1", "2", "3"
POLL = 0.2  # serving.poll_seconds of the server under test
# The slow candidate's time per call. The champion takes about 1 ms when the machine
# is idle and some more when it is not: 50 ms stays far beyond the latency guardrail's
# limit (1.25 × the champion's) however busy the machine is.
SLOW_SECONDS = 0.05
CALLERS = 8
RECONNECT_EVERY = 50  # requests per keep-alive connection, so both workers get callers
SAMPLE = 150  # answers looked at to say "every response comes from …"
# A streak only counts from this long after a pointer moves: on a fast machine one worker
# alone can answer SAMPLE requests before the other's next poll (every POLL seconds), so
# a streak that begins sooner may not yet speak for both workers.
SETTLE = 5 * POLL


class Slow(PythonModel):
    """The champion's answers, slowly: a latency breach and nothing else."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        time.sleep(SLOW_SECONDS)
        return self.model.predict(model_input.to_numpy())


@dataclass(frozen=True)
class Project:
    config: Config
    store: Store
    tracking: Tracking
    bodies: list[bytes]
    expected: dict[tuple[int, str], Any]  # (body, version): the predictions it must answer


@pytest.fixture(scope="module")
def project(trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Its own workspace: the champion (1), a healthy (2) and a slow (3) candidate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    config = trained_examples.copy(tmp_path_factory.mktemp("rollback") / "churn")
    champion = LogisticRegression(max_iter=500)
    X = register_numeric(config, NAME, champion.fit, "sklearn")
    register_numeric(config, NAME, GaussianNB().fit, "sklearn")
    # By value: the server's workers cannot import this test module to unpickle it.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with mlflow.start_run(experiment_id=Tracking(config).experiment_id()):
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Slow(champion),
            signature=infer_signature(X, np.zeros(len(X))),
            registered_model_name=NAME,
            pip_requirements=["mlflow"],
        )
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    store, tracking = Store(config.db_url, actor="tester"), Tracking(config)
    move_alias(store, tracking.client, NAME, "champion", CHAMPION, action="promote")
    # What each version answers to each body, computed the way the server computes it.
    bodies = [
        json.dumps({"instances": X.iloc[i : i + 3].to_dict("records")}).encode()
        for i in range(0, 24, 3)
    ]
    expected: dict[tuple[int, str], Any] = {}
    for version in (CHAMPION, HEALTHY, SLOW):
        served = load_served_model(tracking.client, NAME, version)
        for index, body in enumerate(bodies):
            labels = served.predict(decode_v1(body, served.spec)).labels
            expected[index, version] = json.loads(json.dumps(labels.tolist()))
    answers = {json.dumps(expected[i, CHAMPION]) for i in range(len(bodies))}
    assert len(answers) > 1, "the bodies must tell a wrong answer from a right one"
    return Project(config, store, tracking, bodies, expected)


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    process: ServeProcess
    logs: Path


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[Server]:
    """``shipyard serve NAME --workers 2`` following the champion, polling every 0.2 s."""
    environ = server_environment(
        SHIPYARD_SERVING__POLL_SECONDS=str(POLL),
        SHIPYARD_SERVING__LOG_ROLL_SECONDS="0.2",  # the agent reads the log as it grows
    )
    config_file = project.config.root / "shipyard.yaml"
    with ServeProcess(
        config_file, NAME, workers=2, args=("--workers", "2"), environ=environ
    ) as process:
        logs = project.config.resolve(project.config.serving.logs)
        yield Server("127.0.0.1", process.port, process, logs)


@dataclass(frozen=True)
class Answer:
    """One request as a caller saw it; ``status`` 0 when the connection failed."""

    sent: float  # time.monotonic() when it was sent
    status: int
    version: str
    role: str
    valid: bool  # a 200 carrying the answering version's own predictions
    detail: str


class Load:
    """``CALLERS`` threads posting predictions back to back on keep-alive connections."""

    def __init__(self, server: Server, project: Project) -> None:
        self.server = server
        self.project = project
        self.answers: list[Answer] = []
        # When each caller sent the request it waits on. A slow answer lands in
        # ``answers`` late, so only answers sent before the oldest of these are complete.
        self._waiting: dict[int, float] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._call, args=(seed,), daemon=True)
            for seed in range(CALLERS)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(PATIENCE)
        assert not any(thread.is_alive() for thread in self._threads), "a caller hung"

    def failures(self) -> list[Answer]:
        """Every answer that was not a 200 with a valid prediction."""
        return [a for a in list(self.answers) if not a.valid]

    def sent_after(self, moment: float) -> list[Answer]:
        """The answers to requests sent after ``moment``, so far."""
        return [a for a in list(self.answers) if a.sent > moment]

    def complete_after(self, moment: float) -> list[Answer]:
        """Every answer to a request sent after ``moment`` and before the oldest one
        still waited on, by the time it was sent: none of those can still arrive."""
        horizon = min(self._waiting.values(), default=float("inf"))
        done = [a for a in list(self.answers) if moment < a.sent < horizon]
        return sorted(done, key=lambda a: a.sent)

    def settled(self, moment: float, count: int = SAMPLE) -> list[Answer]:
        """The first ``count`` answers to requests sent after ``moment`` (waits for them)."""
        wait_for(lambda: len(self.complete_after(moment)) >= count, what=f"{count} answers")
        return self.complete_after(moment)[:count]

    def _call(self, seed: int) -> None:
        path = f"/v1/models/{NAME}:predict"
        headers = {"Content-Type": "application/json"}
        rng = random.Random(seed)
        connection: http.client.HTTPConnection | None = None
        used = 0
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(
                    self.server.host, self.server.port, timeout=PATIENCE
                )
                used = 0
            index = rng.randrange(len(self.project.bodies))
            sent = time.monotonic()
            self._waiting[seed] = sent
            try:
                connection.request("POST", path, self.project.bodies[index], headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                self.answers.append(Answer(sent, 0, "", "", False, repr(error)))
                connection.close()
                connection = None
                continue
            version = response.getheader("X-Model-Version") or ""
            role = response.getheader("X-Model-Role") or ""
            valid = False
            if response.status == 200:
                got = json.loads(payload).get("predictions")
                valid = got == self.project.expected.get((index, version))
            detail = "" if valid else payload.decode(errors="replace")[:300]
            self.answers.append(Answer(sent, response.status, version, role, valid, detail))
            used += 1
            if used >= RECONNECT_EVERY or response.will_close:
                connection.close()
                connection = None
        self._waiting.pop(seed, None)
        if connection is not None:
            connection.close()


@pytest.fixture
def load(server: Server, project: Project) -> Iterator[Load]:
    """Load running for the whole test, on the champion alone at first."""
    assert active_rollout(project.store, NAME) is None
    try:
        with Load(server, project) as running:
            first = running.settled(time.monotonic(), 40)
            assert {(a.version, a.role) for a in first} == {(CHAMPION, "champion")}, first
            yield running
    finally:  # a failed test must not leave its roll-out to the next one
        if active_rollout(project.store, NAME) is not None:
            abort_rollout(project.store, NAME, reason="test teardown")


def candidate_answers(load: Load, candidate: str, moment: float, count: int = 20) -> None:
    """Wait until ``count`` requests sent after ``moment`` reached the candidate."""

    def reached() -> bool:
        found = [a for a in load.sent_after(moment) if a.version == candidate]
        return len(found) >= count

    wait_for(reached, what=f"{count} answers from {candidate}")
    roles = {a.role for a in load.sent_after(moment) if a.version == candidate}
    assert roles == {"challenger"}, roles


def assert_settles_on(load: Load, moment: float, version: str, role: str) -> None:
    """After ``moment`` every worker comes to answer as ``version`` in ``role``, and stays.

    Waits for ``SAMPLE`` such answers in a row, sent from ``SETTLE`` after ``moment`` on
    (however long the workers take to see the change), then for as many again: none of
    them may stray.
    """

    def stray(answer: Answer) -> bool:
        return (answer.version, answer.role) != (version, role)

    def streak_began() -> float | None:
        after = load.complete_after(moment + SETTLE)
        last = max((i for i, answer in enumerate(after) if stray(answer)), default=-1)
        streak = after[last + 1 :]
        return streak[0].sent if len(streak) >= SAMPLE else None

    began = wait_for(
        streak_began, what=f"{SAMPLE} answers in a row from {role} {version}", every=0.1
    )
    late = [answer for answer in load.settled(began, 2 * SAMPLE) if stray(answer)]
    assert late == [], late[:5]


def assert_back_on_champion(load: Load, rolled_back: float) -> None:
    """After the rollback every worker answers as the champion, and keeps doing so."""
    assert_settles_on(load, rolled_back, CHAMPION, "champion")


def assert_no_failures(load: Load, server: Server, since: float) -> None:
    """No caller saw a failure, and both workers answered during the test."""
    failures = load.failures()
    assert failures == [], (failures[:5], "".join(server.process.output[-40:]))
    # Log files are named part-<stamp>-<host>-<pid>-…: a file per worker that served.
    wait_for(lambda: len(log_writers(server.logs, since)) == 2, what="a log file from each worker")


def log_writers(logs: Path, since: float) -> set[str]:
    """Pids of the workers that wrote prediction-log files after ``since`` (wall clock):
    files are named part-<stamp>-<host>-<pid>-…."""
    files = (logs / "predictions").rglob("*.parquet")
    return {f.name.split("-")[3] for f in files if f.stat().st_mtime >= since}


def history(project: Project, rollout_id: int) -> list[tuple[str | None, str, str]]:
    """The roll-out's transitions as (from, to, reason)."""
    rollout = get_rollout(project.store, rollout_id)
    return [(e["from"], e["to"], e["reason"]) for e in rollout.history]


def test_abort_under_load_returns_every_request_to_the_champion(
    project: Project, server: Server, load: Load
) -> None:
    wall = time.time()
    started = time.monotonic()
    rollout = start_rollout(
        project.store, NAME, HEALTHY, champion=CHAMPION, steps=(50.0, 100.0), min_requests=100
    )
    candidate_answers(load, HEALTHY, started)

    aborted = time.monotonic()
    abort_rollout(project.store, NAME, reason="operator: abort under load")
    assert_back_on_champion(load, aborted)

    assert_no_failures(load, server, wall)
    after = get_rollout(project.store, rollout.id)
    assert (after.state, after.reason) == ("aborted", "operator: abort under load")
    assert history(project, rollout.id) == [
        (None, "running", "started"),
        ("running", "aborted", "operator: abort under load"),
    ]
    assert read_traffic(project.store, NAME)[1].empty
    assert active_rollout(project.store, NAME) is None
    events = project.store.events(kind="rollout.aborted")
    assert events[0].payload["reason"] == "operator: abort under load"


def test_the_agent_rolls_back_a_slow_canary_under_load(
    project: Project, server: Server, load: Load
) -> None:
    wall = time.time()
    started = time.monotonic()
    rollout = start_rollout(
        project.store, NAME, SLOW, champion=CHAMPION, steps=(50.0, 100.0), min_requests=100
    )
    candidate_answers(load, SLOW, started)

    agent = Agent(project_of(project.config), poll=POLL)
    actions: list[str] = []

    def rolled_back() -> bool:
        actions.extend(agent.tick().actions)
        return active_rollout(project.store, NAME) is None

    wait_for(rolled_back, what="the agent's rollback")
    ticked = time.monotonic()  # the last tick wrote the champion's traffic just before
    assert_back_on_champion(load, ticked)

    assert_no_failures(load, server, wall)
    assert len(actions) == 1, actions
    assert actions[0].startswith(f"{NAME}/{SLOW}: rolled back at canary 50 %: latency:"), actions
    after = get_rollout(project.store, rollout.id)
    assert after.state == "rolled_back" and after.reason.startswith("latency:"), after.reason
    last = after.history[-1]
    assert (last["from"], last["to"], last["reason"]) == ("running", "rolled_back", after.reason)
    # The candidate answers as the champion does, only slower: latency alone breached.
    checks = last["evidence"]["checks"]
    breached = {name for name, check in checks.items() if check["verdict"] == "breach"}
    assert "latency" in breached and breached <= {"latency", "latency_p99"}, breached
    assert read_traffic(project.store, NAME)[1].empty
    event = project.store.events(kind="rollout.rolled_back")[0]
    assert event.subject == f"model:{NAME}/{SLOW}" and event.payload["reason"] == after.reason


def test_bluegreen_switches_all_traffic_over_and_back_under_load(
    project: Project, server: Server, load: Load
) -> None:
    wall = time.time()
    started = time.monotonic()
    rollout = start_rollout(
        project.store,
        NAME,
        HEALTHY,
        champion=CHAMPION,
        strategy="bluegreen",
        step_seconds=0,
        min_requests=0,
    )
    # Validation in shadow: the candidate answers copies, callers only see the champion.
    shadowed = load.settled(started)
    assert {(a.version, a.role) for a in shadowed} == {(CHAMPION, "champion")}
    copies = f"SELECT count(*) AS n FROM log WHERE version = '{HEALTHY}' AND role = 'shadow'"
    since = datetime.fromtimestamp(wall, UTC)
    wait_for(
        lambda: query_log(server.logs, NAME, since=since, sql=copies).to_pylist()[0]["n"] > 0,
        what="shadow copies in the prediction log",
        every=0.1,
    )

    # The verdict the agent gives a passing shadow step: switch everything at once.
    switched = time.monotonic()
    advance(project.store, NAME, verdict="pass", requests=0)
    assert_settles_on(load, switched, HEALTHY, "challenger")
    assert read_traffic(project.store, NAME)[1].challengers == {HEALTHY: 1.0}

    back = time.monotonic()
    abort_rollout(project.store, NAME, reason="blue/green: switch back")
    assert_back_on_champion(load, back)

    assert_no_failures(load, server, wall)
    assert history(project, rollout.id) == [
        (None, "running", "started"),
        ("running", "running", "step 1 passed"),
        ("running", "aborted", "blue/green: switch back"),
    ]
    assert read_traffic(project.store, NAME)[1].empty
