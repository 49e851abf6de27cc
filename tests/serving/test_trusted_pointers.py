"""A registry the server can trust: recorded pointers, drift reports, signed artifacts.

The attacks of issue 12, reproduced against real MLflow, a real control plane and real
servers: a plain ``MlflowClient().set_registered_model_alias`` is not served (and is
reported in readiness, a metric, an event and a page to the owner), and a version
whose model file was overwritten with another model's is refused at load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd
import pytest

from shipyard.agent import Agent
from shipyard.config import Config
from shipyard.errors import SigningError
from shipyard.governance.cards import sign_promotion
from shipyard.governance.integrity import signature_check, verify_mode
from shipyard.governance.signing import generate_keys
from shipyard.models.served import load_served_model
from shipyard.project import Project
from shipyard.registry.aliases import move_alias
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
from shipyard.store.traffic import TrafficSettings, write_traffic
from tests.support import (
    AlertReceiver,
    AppClient,
    TrainedExamples,
    call,
    free_port,
    in_process,
    project_of,
    server_environment,
    wait_for,
)

STARTUP = 240.0  # a server that refuses to start still imports MLflow first


def _body(config: Config) -> bytes:
    rows = pd.read_csv(config.root / "data" / "golden.csv").head(2).drop(columns=["churned"])
    return json.dumps({"instances": rows.to_dict("records")}).encode()


def _ready(app: AppClient) -> dict[str, Any]:
    return dict(json.loads(app.call("/v2/health/ready")[2])["details"])


def _metric(app: AppClient, line_start: str) -> str | None:
    text = app.call("/metrics")[2].decode()
    return next((line for line in text.splitlines() if line.startswith(line_start)), None)


def _with_routes(config: Config, receiver: AlertReceiver) -> Config:
    monitoring = config.monitoring.model_copy(
        update={"routes": [receiver.route()], "retries": 0, "backoff_seconds": 0.0}
    )
    return config.model_copy(update={"monitoring": monitoring})


@pytest.fixture
def project(trained_examples: TrainedExamples, tmp_path: Path) -> Any:
    """churn/1 champion (promoted through Shipyard) and churn/2, with a project key pair."""
    overrides = {"signing.private_key": str(tmp_path / "keys" / "churn.pem")}
    config = trained_examples.copy(tmp_path / "churn", {}, {}, overrides=overrides)
    project = project_of(config)
    move_alias(project.store, project.client, "churn", "champion", "1", action="promote")
    yield project
    project.close()


def _sign(project: Project, version: str) -> None:
    """Give the project its keys and sign ``version``'s card, as a promotion does."""
    config = project.config
    private = config.resolve(config.signing.private_key or Path("unset"))
    if not private.exists():
        generate_keys(private, config.resolve(config.signing.public_key))
    found = project.client.get_model_version("churn", version)
    assert sign_promotion(project, found, {"alias": "champion", "reason": "test"})


def _model_file(project: Project, version: str) -> Path:
    """The registry's own copy of ``churn/version``'s model file (not a download)."""
    client = project.client
    source = str(client.get_model_version("churn", version).source)
    assert source.startswith("models:/m-"), source  # MLflow 3: a logged model
    location = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    folder = Path(url2pathname(urlparse(location).path))
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".pkl", ".skops")]
    assert len(files) == 1, f"expected one model file in {folder}: {sorted(folder.rglob('*'))}"
    return files[0]


def _tamper(project: Project, version: str, other: str) -> str:
    """Overwrite ``version``'s model file with ``other``'s; returns its path in the model."""
    target = _model_file(project, version)
    shutil.copyfile(_model_file(project, other), target)
    return target.name


# --- drift: an alias moved outside Shipyard ------------------------------------------


def test_a_plain_mlflow_alias_move_is_not_served_and_is_reported(
    project: Project, alert_receiver: Any
) -> None:
    store, client, config = project.store, project.client, project.config
    slot = ModelSlot(load_served_model(client, "churn", "1"))
    watcher = GenerationWatcher(
        slot, store=store, client=client, interval=0.05, drift_interval=0.05
    )
    receiver = alert_receiver("webhook")
    agent = Agent(project.with_config(_with_routes(config, receiver)))
    watcher.start()
    try:
        with in_process(create_app(slot)) as app:
            # The attack: MLflow's alias moved, plus a generation bump from a traffic write.
            client.set_registered_model_alias("churn", "champion", "2")
            write_traffic(store, "churn", TrafficSettings())
            wait_for(lambda: slot.drift, what="the server to report the drift")
            checks = watcher.drift_checks
            wait_for(lambda: watcher.drift_checks > checks + 3, what="three more drift checks")

            status, headers, _ = app.call("/v1/models/churn:predict", _body(config))
            assert status == 200 and headers["x-model-version"] == "1"
            assert slot.current.version == "1" and watcher.swaps == 0
            (drift,) = _ready(app)["registry_drift"]
            assert drift["alias"] == "champion"
            assert (drift["recorded_version"], drift["mlflow_version"]) == ("1", "2")
            assert "Shipyard recorded 1" in drift["summary"]
            gauge = _metric(app, 'shipyard_registry_drift{alias="champion",model="churn"}')
            assert gauge is not None and gauge.endswith(" 1.0")
            (event,) = store.events(kind="registry.drift")  # once, however many checks
            assert event.subject == "model:churn@champion"
            assert event.payload["mlflow_version"] == "2"

            # The agent pages the owner once (a drift must be seen on two ticks).
            agent.tick()
            agent.tick()
            agent.tick()
            (page,) = receiver.received
            assert page["signal"] == "registry:champion" and page["severity"] == "critical"
            assert page["owner"] == "growth-analytics"
            assert "MLflow points at 2, but Shipyard recorded 1" in page["summary"]
            assert len(store.events(kind="registry.alert_delivered")) == 1
            assert len(store.events(kind="registry.drift")) == 1  # the same drift

            # A Shipyard promotion is served, and it ends the drift.
            move_alias(store, client, "churn", "champion", "2", action="promote")
            wait_for(lambda: slot.current.version == "2", what="churn/2 served after promotion")
            wait_for(lambda: not slot.drift, what="the drift to end")
            wait_for(
                lambda: (
                    app.call("/v1/models/churn:predict", _body(config))[1]["x-model-version"] == "2"
                ),
                what="churn/2 answering",
            )
            assert "registry_drift" not in _ready(app)
            gauge = _metric(app, 'shipyard_registry_drift{alias="champion",model="churn"}')
            assert gauge is not None and gauge.endswith(" 0.0")
            wait_for(lambda: store.events(kind="registry.drift_resolved"), what="the drift's end")
    finally:
        watcher.stop()
    assert len(store.events(kind="registry.drift")) == 1
    assert len(receiver.received) == 1


def test_a_shipyard_promotion_is_served_without_drift(project: Project) -> None:
    store, client = project.store, project.client
    slot = ModelSlot(load_served_model(client, "churn", "1"))
    watcher = GenerationWatcher(
        slot, store=store, client=client, interval=0.05, drift_interval=0.05
    )
    watcher.start()
    try:
        move_alias(store, client, "churn", "champion", "2", action="promote")
        wait_for(lambda: slot.current.version == "2", what="churn/2 served after promotion")
        checks = watcher.drift_checks
        wait_for(lambda: watcher.drift_checks > checks + 2, what="two more drift checks")
    finally:
        watcher.stop()
    assert slot.drift == ()
    assert store.events(kind="registry.drift") == []


def test_serving_an_alias_nobody_recorded_is_refused(project: Project) -> None:
    from shipyard.errors import NotFoundError
    from shipyard.serving.server import ServeSpec, build_server

    project.client.set_registered_model_alias("churn", "challenger", "2")
    spec = ServeSpec.of(project.config, "churn@challenger", log_predictions=False)
    with pytest.raises(NotFoundError, match="no pointer recorded by Shipyard"):
        build_server(spec)


# --- integrity: a signed version's files are checked at load ---------------------------


def test_a_tampered_version_is_not_swapped_in_when_signatures_are_required(
    project: Project,
) -> None:
    store, client = project.store, project.client
    _sign(project, "2")
    assert verify_mode(project.config) == "required"  # auto: the project has a key now
    check = signature_check(project)
    assert check is not None
    verdict = load_served_model(client, "churn", "2", check=check).verdict
    assert verdict is not None and verdict.state == "verified"
    changed = _tamper(project, "2", "1")

    slot = ModelSlot(load_served_model(client, "churn", "1", check=check))
    assert slot.current.verdict is not None and slot.current.verdict.state == "unsigned"
    watcher = GenerationWatcher(slot, store=store, client=client, check=check)
    move_alias(store, client, "churn", "champion", "2", action="promote")
    assert watcher.check() is True
    assert slot.current.version == "1"  # the previous version keeps serving
    error = slot.status["load_error"]
    assert "churn/2" in error and "do not match its signed model card" in error
    assert f"{changed} changed" in error
    (failed,) = store.events(kind="serving.load_failed")
    assert failed.subject == "model:churn/2" and f"{changed} changed" in failed.payload["error"]

    with pytest.raises(SigningError, match=rf"Refused to load churn/2: .*{changed} changed"):
        load_served_model(client, "churn", "2", check=check)


def test_shipyard_serve_refuses_to_start_on_a_tampered_version(project: Project) -> None:
    _sign(project, "2")
    changed = _tamper(project, "2", "1")
    config = project.config
    command = [
        str(Path(sys.executable).parent / "shipyard"),
        *("--config", str(config.root / "shipyard.yaml"), "serve", "churn/2"),
        *("--port", str(free_port())),
    ]
    done = subprocess.run(
        command,
        env=server_environment(),
        capture_output=True,
        text=True,
        timeout=STARTUP,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "Refused to load churn/2" in said and f"{changed} changed" in said, said
    assert "Traceback" not in said, said


def test_a_tampered_version_is_served_with_a_warning_under_warn(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    _sign(project, "2")
    changed = _tamper(project, "2", "1")
    config = project.config
    serving = config.serving.model_copy(update={"verify_signatures": "warn"})
    warned = project.with_config(config.model_copy(update={"serving": serving}))
    check = signature_check(warned)
    assert check is not None and check.mode == "warn"

    served = load_served_model(warned.client, "churn", "2", check=check)
    assert served.verdict is not None and served.verdict.state == "mismatch"
    assert f"{changed} changed" in served.verdict.detail
    assert "failed verification" in caplog.text and "churn/2" in caplog.text
    (event,) = warned.store.events(kind="serving.unverified")
    assert event.subject == "model:churn/2"
    with in_process(create_app(served)) as app:
        status, headers, _ = app.call("/v1/models/churn:predict", _body(config))
        assert status == 200 and headers["x-model-version"] == "2"
        assert f"{changed} changed" in _ready(app)["artifact_mismatch"]["2"]
        gauge = _metric(app, 'shipyard_artifact_mismatch{model="churn",version="2"}')
        assert gauge is not None and gauge.endswith(" 1.0")


def test_verification_is_off_without_a_key_unless_required(project: Project) -> None:
    config = project.config
    assert verify_mode(config) == "off"  # auto, and no public key yet
    assert signature_check(project) is None
    serving = config.serving.model_copy(update={"verify_signatures": "required"})
    assert verify_mode(config.model_copy(update={"serving": serving})) == "required"


def test_a_server_process_follows_the_records_not_mlflow(project: Project) -> None:
    """``shipyard serve churn`` over the wire: started after the attack, every worker serves
    churn/1 and reports the drift."""
    from tests.support import ServeProcess

    project.client.set_registered_model_alias("churn", "champion", "2")
    config_file = project.config.root / "shipyard.yaml"
    with ServeProcess(config_file, "churn", workers=2, args=("--workers", "2")) as server:
        status, headers, _ = call(f"{server.url}/v1/models/churn:predict", _body(project.config))
        assert status == 200 and headers["x-model-version"] == "1"

        def reported() -> list[dict[str, Any]]:
            details = json.loads(call(f"{server.url}/v2/health/ready")[2])["details"]
            return list(details.get("registry_drift", []))

        (drift,) = wait_for(reported, what="the server to report the drift")
        assert (drift["recorded_version"], drift["mlflow_version"]) == ("1", "2")
