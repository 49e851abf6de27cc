"""Hot swap under load: alias moves reach the server without a failed request."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd

from shipyard.config import load_config
from shipyard.models.served import load_served_model
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
from shipyard.store import Store
from shipyard.training import train
from tests.serving.live import call, serve_in_thread
from tests.support import project_of


def wait_for(condition, timeout: float = 10.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not reached"
        time.sleep(0.01)
    return time.monotonic() - started


def test_swap_and_rollback_under_load(example_project: Path) -> None:
    config = load_config(example_project / "shipyard.yaml", environ={})
    store = Store(config.db_url, actor="tester")
    tracking = Tracking(config)
    client = tracking.client
    train(project_of(config))
    train(project_of(config), params={"n_estimators": 20})
    move_alias(store, client, "churn", "champion", "1", action="promote")

    slot = ModelSlot(load_served_model(client, "churn", "1"))
    watcher = GenerationWatcher(
        slot, store=Store(config.db_url, actor="tester"), client=client, interval=0.1
    )
    watcher.start()
    rows = pd.read_csv(config.root / "data" / "golden.csv").head(2).drop(columns=["churned"])
    body = json.dumps({"instances": rows.to_dict("records")}).encode()
    versions: list[str] = []
    failures: list[tuple[int, bytes]] = []
    stop = threading.Event()

    with serve_in_thread(create_app(slot)) as host_port:
        url = f"http://{host_port}/v1/models/churn:predict"

        def load() -> None:
            while not stop.is_set():
                status, headers, payload = call(url, body)
                if status != 200:
                    failures.append((status, payload))
                versions.append(headers.get("x-model-version", "?"))

        clients = [threading.Thread(target=load) for _ in range(4)]
        for thread in clients:
            thread.start()
        try:
            wait_for(lambda: len(versions) > 20)
            move_alias(store, client, "churn", "champion", "2", action="promote")
            wait_for(lambda: versions[-1] == "2" and slot.current.version == "2")
            # Rollback: the previous champion is on standby, so it is a pointer swap.
            moved = time.monotonic()
            move_alias(store, client, "churn", "champion", "1", action="rollback")
            wait_for(lambda: versions[-1] == "1")
            propagation = time.monotonic() - moved
            count = len(versions)
            wait_for(lambda: len(versions) > count + 20)
        finally:
            stop.set()
            for thread in clients:
                thread.join(10)
            watcher.stop()

    assert failures == []
    assert {"1", "2"} <= set(versions)
    assert propagation < 1.0, f"rollback reached the server after {propagation:.2f} s"
    assert watcher.swaps == 2
    kinds = [e.kind for e in store.events(kind="serving.swapped")]
    assert len(kinds) == 2


def test_a_broken_version_is_not_swapped_in(example_project: Path) -> None:
    config = load_config(example_project / "shipyard.yaml", environ={})
    store = Store(config.db_url, actor="tester")
    tracking = Tracking(config)
    train(project_of(config))
    move_alias(store, tracking.client, "churn", "champion", "1", action="promote")
    slot = ModelSlot(load_served_model(tracking.client, "churn", "1"))

    def broken(*_args: object) -> object:
        raise RuntimeError("artifact store unreachable")

    watcher = GenerationWatcher(slot, store=store, client=tracking.client, loader=broken)
    train(project_of(config))
    move_alias(store, tracking.client, "churn", "champion", "2", action="promote")
    assert watcher.check() is True
    assert slot.current.version == "1"
    assert "artifact store unreachable" in slot.status["load_error"]
    assert store.events(kind="serving.load_failed")[0].subject == "model:churn/2"


def test_database_outage_keeps_serving(example_project: Path, tmp_path: Path) -> None:
    config = load_config(example_project / "shipyard.yaml", environ={})
    tracking = Tracking(config)
    Store(config.db_url, actor="tester")
    train(project_of(config))
    slot = ModelSlot(load_served_model(tracking.client, "churn", "1"))
    outage_db = tmp_path / "control.db"
    control = Store(f"sqlite:///{outage_db}", actor="tester")
    watcher = GenerationWatcher(slot, store=control, client=tracking.client, interval=0.05)
    watcher.start()
    try:
        # The control plane disappears: a fresh, empty file replaces the database.
        outage_db.unlink()
        control.engine.dispose()
        wait_for(lambda: "database" in slot.status)
        with serve_in_thread(create_app(slot)) as host_port:
            rows = pd.read_csv(config.root / "data" / "golden.csv").head(1)
            body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
            status, _, _ = call(f"http://{host_port}/v1/models/churn:predict", body.encode())
            assert status == 200
            ready = json.loads(call(f"http://{host_port}/v2/health/ready")[2])
            assert ready["ready"] is True and "unreachable" in ready["details"]["database"]
    finally:
        watcher.stop()
