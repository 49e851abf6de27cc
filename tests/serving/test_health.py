"""Health that tells the truth: readiness and ``shipyard_degraded`` over a real socket.

The database going away degrades a server but keeps it in rotation; prediction-log
writes failing take it out of rotation only with ``serving.require_log``; a port in
use is refused before anything loads or says ready, with exit code 8.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import Config
from shipyard.errors import PortInUse
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel, load_served_model
from shipyard.registry import Tracking
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
from shipyard.store import Store
from tests.support import call, project_of, serve_in_thread, server_environment, wait_for
from tests.support.servers import HOST, free_port


@pytest.fixture(scope="module")
def served(trained_project: Config) -> ServedModel:
    return load_served_model(Tracking(trained_project).client, "churn", "1")


@pytest.fixture(scope="module")
def body(trained_project: Config) -> bytes:
    rows = pd.read_csv(trained_project.root / "data" / "golden.csv").head(2)
    return json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")}).encode()


def get(url: str) -> tuple[int, dict[str, object]]:
    status, _, payload = call(url)
    return status, json.loads(payload)


def predict(url: str, body: bytes) -> int:
    return call(f"{url}/v1/models/churn:predict", body, {"Content-Type": "application/json"})[0]


def degraded_gauge(url: str, reason: str) -> float:
    text = call(f"{url}/metrics")[2].decode()
    prefix = f'shipyard_degraded{{reason="{reason}"}} '
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def test_a_healthy_server_is_ready_with_nothing_degraded(served: ServedModel) -> None:
    with serve_in_thread(create_app(served)) as url:
        status, ready = get(f"{url}/v2/health/ready")
        assert (status, ready["ready"], ready["degraded"]) == (200, True, {})
        assert get(f"{url}/v2/models/churn/ready") == (
            200,
            {"name": "churn", "ready": True, "degraded": {}},
        )
        assert get(f"{url}/v1/models/churn")[1]["ready"] is True
        assert degraded_gauge(url, "database") == 0.0
        assert degraded_gauge(url, "prediction_log") == 0.0


def test_database_unreachable_is_degraded_not_unready(
    trained_copy: Config, tmp_path: Path, body: bytes
) -> None:
    client = project_of(trained_copy).client
    slot = ModelSlot(load_served_model(client, "churn", "1"))
    database = tmp_path / "control.db"
    control = Store(f"sqlite:///{database}", actor="tester")
    watcher = GenerationWatcher(slot, store=control, client=client, interval=0.05)
    watcher.start()
    try:
        with serve_in_thread(create_app(slot)) as url:
            assert get(f"{url}/v2/health/ready")[1]["degraded"] == {}
            # The control plane goes away: an empty file takes the database's place.
            database.unlink()
            control.engine.dispose()
            wait_for(
                lambda: "database" in get(f"{url}/v2/health/ready")[1]["degraded"],  # type: ignore[operator]
                what="readiness to report the database",
            )
            status, ready = get(f"{url}/v2/health/ready")
            assert status == 200 and ready["ready"] is True  # still in rotation
            assert "unreachable" in str(ready["degraded"]["database"])  # type: ignore[index]
            assert degraded_gauge(url, "database") == 1.0
            assert predict(url, body) == 200
            status, model = get(f"{url}/v2/models/churn/ready")
            assert status == 200 and "database" in model["degraded"]  # type: ignore[operator]
    finally:
        watcher.stop()


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[tuple[PredictionLogWriter, Path]]:
    """A prediction-log writer whose folder is a plain file, so no write can succeed."""
    root = tmp_path / "logs"
    root.write_text("not a folder")
    writer = PredictionLogWriter(root, roll_seconds=0.1)
    writer.start()
    yield writer, root
    writer.close()


def test_failing_log_writes_take_a_server_out_of_rotation_with_require_log(
    served: ServedModel, unwritable: tuple[PredictionLogWriter, Path], body: bytes
) -> None:
    writer, root = unwritable
    app = create_app(served, log=writer)
    app.state.metrics.health.require_log = True
    with serve_in_thread(app) as url:
        assert get(f"{url}/v2/health/ready")[0] == 200
        assert predict(url, body) == 200  # answered; its record cannot be written
        wait_for(lambda: get(f"{url}/v2/health/ready")[0] == 503, what="readiness to turn")
        _, ready = get(f"{url}/v2/health/ready")
        assert ready["ready"] is False and "predictions" in ready["degraded"]["prediction_log"]  # type: ignore[index]
        assert get(f"{url}/v2/models/churn/ready")[0] == 503
        assert get(f"{url}/v1/models/churn") == (
            503,
            {"name": "churn", "ready": False, "degraded": ready["degraded"]},
        )
        assert get(f"{url}/v2/health/live") == (200, {"live": True})  # a restart fixes nothing
        assert degraded_gauge(url, "prediction_log") == 1.0
        # The folder becomes writable: the writer's retries succeed and readiness returns.
        root.unlink()
        wait_for(lambda: get(f"{url}/v2/health/ready")[0] == 200, what="readiness to return")
        assert degraded_gauge(url, "prediction_log") == 0.0


def test_failing_log_writes_only_degrade_without_require_log(
    served: ServedModel, unwritable: tuple[PredictionLogWriter, Path], body: bytes
) -> None:
    writer, _root = unwritable
    with serve_in_thread(create_app(served, log=writer)) as url:
        assert predict(url, body) == 200
        wait_for(
            lambda: "prediction_log" in get(f"{url}/v2/health/ready")[1]["degraded"],  # type: ignore[operator]
            what="readiness to report the prediction log",
        )
        status, ready = get(f"{url}/v2/health/ready")
        assert status == 200 and ready["ready"] is True


def shipyard(config: Config, *args: str) -> subprocess.Popen[str]:
    command = [str(Path(sys.executable).parent / "shipyard"), "--config"]
    return subprocess.Popen(
        [*command, str(config.root / "shipyard.yaml"), *args],
        env=server_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_refused_before_anything_says_ready(
    trained_project: Config, workers: str
) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        serve = shipyard(trained_project, "serve", "churn", "--port", port, "--workers", workers)
        output, _ = serve.communicate(timeout=240)
    assert serve.returncode == PortInUse.exit_code == 8, output
    assert f"{HOST}:{port}" in output and "in use" in output, output
    assert "ready" not in output.lower() and "Serving" not in output, output
    assert "Traceback" not in output, output


def test_the_port_answers_only_once_the_model_is_loaded(trained_project: Config) -> None:
    """From the first answer on, readiness is true and a prediction succeeds."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    serve = shipyard(trained_project, "serve", "churn", "--port", str(port))
    try:
        first: list[int] = []

        def answered() -> bool:
            assert serve.poll() is None, serve.communicate()[0]
            try:
                with socket.create_connection((HOST, port), timeout=1):
                    pass
            except OSError:
                return False  # refused: not listening yet, while the model loads
            first.append(call(f"{url}/v2/health/ready")[0])
            return True

        wait_for(answered, what="the server to listen", timeout=240, every=0.05)
        assert first == [200]
        rows = pd.read_csv(trained_project.root / "data" / "golden.csv").head(1)
        body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
        assert predict(url, body.encode()) == 200
    finally:
        serve.terminate()
        output = serve.communicate(timeout=120)[0]
    assert "ready in" in output, output
