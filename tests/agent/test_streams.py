"""The agent's sequential feed on a real project: served predictions, late labels, a change.

The churn champion serves golden rows through the in-process server, which logs them;
labels come back through ``POST /v1/feedback`` after the predictions, true at first and
then flipped (an abrupt concept change: the error rate jumps from about 0.2 to 0.8).
StreamWatch reads both logs, the error stream's ADWIN alarms, an alert opens and a
retrain is requested; a new StreamWatch resumes from the stored cursor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from shipyard.agent import Agent
from shipyard.agent.streams import StreamWatch
from shipyard.cli import run
from shipyard.config import Config
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import load_served_model
from shipyard.project import Project
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.serving.app import create_app
from shipyard.store import Store
from shipyard.store.detector_states import load_detector_states
from tests.support import AppClient, in_process, project_of, wait_for

BATCH = 200  # rows per predict request: request ids "<id>:<row>"


@dataclass
class Traffic:
    config: Config
    store: Store
    project: Project
    client: AppClient
    writers: tuple[PredictionLogWriter, PredictionLogWriter]
    golden: pd.DataFrame
    rng: np.random.Generator

    def predict(self, prefix: str, rows: int) -> pd.DataFrame:
        """Serve ``rows`` golden rows (drawn with replacement) in requests of BATCH."""
        sample = self.golden.sample(rows, replace=True, random_state=self.rng).reset_index(
            drop=True
        )
        for start in range(0, rows, BATCH):
            chunk = sample.iloc[start : start + BATCH].drop(columns="churned")
            body = json.dumps({"instances": chunk.to_dict(orient="records")}).encode()
            request_id = f"{prefix}{start // BATCH}"
            status, _, payload = self.client.call(
                "/v1/models/churn:predict", body, {"X-Request-ID": request_id}
            )
            assert status == 200, payload
        sample["request_id"] = [f"{prefix}{i // BATCH}:{i % BATCH}" for i in range(rows)]
        self.wait_logged(prefix, rows)
        return sample

    def label(self, rows: pd.DataFrame, *, flipped: bool) -> None:
        labels = 1 - rows.churned if flipped else rows.churned
        feedback = [
            {"request_id": rid, "label": int(label)}
            for rid, label in zip(rows.request_id, labels, strict=True)
        ]
        status, _, payload = self.client.call("/v1/feedback", json.dumps(feedback).encode())
        assert status == 200, payload
        self.wait_logged(rows.request_id.iloc[0].split(":")[0][:2], len(rows), kind="labels")

    def wait_logged(self, prefix: str, count: int, kind: str = "predictions") -> None:
        from shipyard.logs.reader import query_log

        for writer in self.writers:
            writer.flush()
        sql = f"SELECT count(*) AS n FROM log WHERE starts_with(request_id, '{prefix}')"
        root = self.config.resolve(self.config.serving.logs)
        wait_for(
            lambda: query_log(root, "churn", kind=kind, sql=sql)["n"][0].as_py() >= count,
            what=f"{count} {kind} rows {prefix}* on disk",
            every=0.1,
        )


@pytest.fixture
def traffic(two_versions: tuple[Config, Store, Tracking]) -> Iterator[Traffic]:
    config, store, _tracking = two_versions
    project = project_of(config)
    model = load_served_model(project.client, "churn", "1")
    root = config.resolve(config.serving.logs)
    log = PredictionLogWriter(root, roll_seconds=0.1)
    labels = PredictionLogWriter(root, kind="labels", roll_seconds=0.1)
    log.start()
    labels.start()
    golden = pd.read_csv(config.root / "data" / "golden.csv")
    with in_process(create_app(model, log=log, labels=labels)) as client:
        yield Traffic(
            config, store, project, client, (log, labels), golden, np.random.default_rng(7)
        )
    log.close()
    labels.close()


def watch(traffic: Traffic) -> StreamWatch:
    """A fresh feed, as a restarted agent builds it; every row on disk is settled."""
    return StreamWatch(traffic.project, settle_seconds=0)


def samples(store: Store) -> dict[str, int]:
    return {s.stream: s.samples for s in load_detector_states(store, "churn", "1")}


def test_a_concept_change_raises_an_error_alarm_an_alert_and_a_retrain(traffic: Traffic) -> None:
    store = traffic.store
    before = traffic.predict("aa", 1200)
    after = traffic.predict("bb", 1200)
    # Labels lag their predictions: none yet. Features and scores feed; errors do not.
    assert not [a for a in watch(traffic).tick() if "alarm on error" in a]
    fed = samples(store)
    assert fed["error"] == 0 and fed["prediction"] == 2400
    assert fed["feature:tenure_months"] == 2400
    traffic.label(before, flipped=False)
    assert not [a for a in watch(traffic).tick() if "alarm on error" in a]
    assert samples(store)["error"] == 1200
    traffic.label(after, flipped=True)  # the concept changes
    actions = watch(traffic).tick()
    assert any("alarm on error" in action for action in actions), actions
    assert any("retrain requested" in action for action in actions), actions
    alarm = next(e for e in store.events(kind="detector.alarm") if e.payload["stream"] == "error")
    assert alarm.payload["detector"] == "adwin"
    # The alarm came soon after the change: within 300 of the 1,200 flipped labels.
    assert 1200 <= alarm.payload["position"] < 1500
    opened = store.events(kind="alert.opened")
    assert [e.subject for e in opened if "sequential:error" in e.subject] == [
        "alert:churn/sequential:error"
    ]
    requested = store.events(kind="retrain_requested")
    assert any(e.payload["signal"] == "sequential:error" for e in requested)


def test_a_restarted_watch_resumes_from_the_cursor_without_rereading(traffic: Traffic) -> None:
    store = traffic.store
    first = traffic.predict("cc", 600)
    traffic.label(first, flipped=False)
    watch(traffic).tick()
    fed = samples(store)
    assert fed["prediction"] == 600 and fed["error"] == 600
    watch(traffic).tick()  # a new watch, nothing new in the logs
    assert samples(store) == fed
    second = traffic.predict("dd", 400)
    traffic.label(second.iloc[:150], flipped=False)
    watch(traffic).tick()
    again = samples(store)
    assert again["prediction"] == 1000 and again["error"] == 750
    assert again["feature:monthly_charges"] == 1000


def test_a_new_champion_restarts_the_detectors(traffic: Traffic) -> None:
    store = traffic.store
    rows = traffic.predict("ee", 400)
    traffic.label(rows, flipped=False)
    watch(traffic).tick()
    assert load_detector_states(store, "churn", "1")
    move_alias(store, traffic.project.client, "churn", "champion", "2", action="promote")
    actions = watch(traffic).tick()
    assert any("restarted for the new champion" in action for action in actions)
    assert load_detector_states(store, "churn", "1") == []
    reset = store.events(kind="detector.reset")
    assert reset and reset[-1].payload["versions"] == ["1"]
    # version 2 has no predictions yet: its streams exist, empty
    assert {s.samples for s in load_detector_states(store, "churn", "2")} == {0}


def test_the_cli_shows_and_resets_the_detectors(
    traffic: Traffic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(traffic.config.root)
    assert run(["monitor", "detectors", "churn"]) == 0
    assert "No sequential detector of churn has run yet" in capsys.readouterr().out
    rows = traffic.predict("gg", 300)
    traffic.label(rows, flipped=False)
    watch(traffic).tick()
    assert run(["monitor", "detectors", "churn", "--json"]) == 0
    shown = {row["stream"]: row for row in json.loads(capsys.readouterr().out)}
    assert shown["error"]["detector"] == "adwin" and shown["error"]["samples"] == 300
    assert shown["prediction"]["last_alarm"] is None
    assert run(["monitor", "detectors", "churn"]) == 0
    assert "feature:monthly_charges" in capsys.readouterr().out
    assert run(["monitor", "detectors", "churn", "--reset"]) == 0
    assert "Reset" in capsys.readouterr().out
    assert load_detector_states(traffic.store, "churn") == []
    assert traffic.store.events(kind="detector.reset")[0].payload["reason"] == "reset by hand"


def test_the_agent_feeds_the_detectors_on_its_tick(traffic: Traffic) -> None:
    """The agent's own StreamWatch waits two log rolls before it reads a row."""
    serving = traffic.config.serving.model_copy(update={"log_roll_seconds": 0.05})
    project = traffic.project.with_config(traffic.config.model_copy(update={"serving": serving}))
    agent = Agent(project)
    rows = traffic.predict("hh", 400)
    traffic.label(rows.iloc[:200], flipped=False)
    traffic.label(rows.iloc[200:], flipped=True)
    actions = wait_for(
        lambda: [a for a in agent.tick().actions if "alarm on error" in a],
        what="the agent's tick to raise the error alarm",
        every=0.1,
    )
    assert actions[0].startswith("churn/1: adwin alarm on error")


def test_disabled_detectors_do_nothing(traffic: Traffic) -> None:
    sequential = traffic.config.monitoring.sequential.model_copy(update={"enabled": False})
    monitoring = traffic.config.monitoring.model_copy(update={"sequential": sequential})
    project = traffic.project.with_config(
        traffic.config.model_copy(update={"monitoring": monitoring})
    )
    traffic.predict("ff", 200)
    assert StreamWatch(project, settle_seconds=0).tick() == []
    assert load_detector_states(traffic.store, "churn") == []
