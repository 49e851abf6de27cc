"""Hot swap under load: alias moves reach the server without a failed request."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd

from shipyard.config import Config
from shipyard.models.served import load_served_model
from shipyard.registry.aliases import move_alias
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
from shipyard.store import Store
from tests.support import PATIENCE, TrainedExamples, in_process, project_of, wait_for


def test_swap_and_rollback_under_load(trained_examples: TrainedExamples, tmp_path: Path) -> None:
    config = trained_examples.copy(tmp_path / "churn", {}, {"n_estimators": 20})
    project = project_of(config)
    store, client = project.store, project.client
    move_alias(store, client, "churn", "champion", "1", action="promote")

    slot = ModelSlot(load_served_model(client, "churn", "1"))
    watcher = GenerationWatcher(slot, store=store, client=client, interval=0.1)
    watcher.start()
    rows = pd.read_csv(config.root / "data" / "golden.csv").head(2).drop(columns=["churned"])
    body = json.dumps({"instances": rows.to_dict("records")}).encode()
    versions: list[str] = []
    failures: list[tuple[int, bytes]] = []
    stop = threading.Event()

    with in_process(create_app(slot)) as app:

        def load() -> None:
            while not stop.is_set():
                status, headers, payload = app.call("/v1/models/churn:predict", body)
                if status != 200:
                    failures.append((status, payload))
                versions.append(headers.get("x-model-version", "?"))

        clients = [threading.Thread(target=load) for _ in range(4)]
        for thread in clients:
            thread.start()
        try:
            wait_for(lambda: len(versions) > 20, what="20 answers from churn/1")
            move_alias(store, client, "churn", "champion", "2", action="promote")
            wait_for(
                lambda: versions[-1] == "2" and slot.current.version == "2",
                what="churn/2 answering after the promotion",
            )
            # Rollback: the previous champion is on standby, so it is a pointer swap.
            move_alias(store, client, "churn", "champion", "1", action="rollback")
            wait_for(lambda: versions[-1] == "1", what="churn/1 answering after the rollback")
            count = len(versions)
            wait_for(lambda: len(versions) > count + 20, what="20 more answers")
        finally:
            stop.set()
            for thread in clients:
                thread.join(PATIENCE)
            watcher.stop()

    assert failures == []
    assert {"1", "2"} <= set(versions)
    assert watcher.swaps == 2
    kinds = [e.kind for e in store.events(kind="serving.swapped")]
    assert len(kinds) == 2


def test_a_broken_version_is_not_swapped_in(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    config = trained_examples.copy(tmp_path / "churn", {}, {})
    project = project_of(config)
    store, client = project.store, project.client
    move_alias(store, client, "churn", "champion", "1", action="promote")
    slot = ModelSlot(load_served_model(client, "churn", "1"))

    def broken(*_args: object) -> object:
        raise RuntimeError("artifact store unreachable")

    watcher = GenerationWatcher(slot, store=store, client=client, loader=broken)
    move_alias(store, client, "churn", "champion", "2", action="promote")
    assert watcher.check() is True
    assert slot.current.version == "1"
    assert "artifact store unreachable" in slot.status["load_error"]
    assert store.events(kind="serving.load_failed")[0].subject == "model:churn/2"


def test_database_outage_keeps_serving(trained_copy: Config, tmp_path: Path) -> None:
    client = project_of(trained_copy).client
    slot = ModelSlot(load_served_model(client, "churn", "1"))
    outage_db = tmp_path / "control.db"
    control = Store(f"sqlite:///{outage_db}", actor="tester")
    watcher = GenerationWatcher(slot, store=control, client=client, interval=0.05)
    watcher.start()
    try:
        # The control plane disappears: a fresh, empty file replaces the database.
        outage_db.unlink()
        control.engine.dispose()
        wait_for(lambda: "database" in slot.status, what="the watcher to see the outage")
        with in_process(create_app(slot)) as app:
            rows = pd.read_csv(trained_copy.root / "data" / "golden.csv").head(1)
            body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
            status, _, _ = app.call("/v1/models/churn:predict", body.encode())
            assert status == 200
            ready = json.loads(app.call("/v2/health/ready")[2])
            assert ready["ready"] is True and "unreachable" in ready["details"]["database"]
    finally:
        watcher.stop()
