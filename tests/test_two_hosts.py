"""Two hosts, one control plane: the issue's acceptance test for running off one machine.

Two project folders stand for two hosts. They share no local file: each is its own copy
of the churn example (no workspace copied), and all they share is one PostgreSQL
database (the real server, ``postgres_url``) and one bucket. S3 is moto's standalone
server on 127.0.0.1, a stand-in for AWS speaking the S3 REST API to the real
boto3/s3fs/pyarrow/MLflow clients (:mod:`tests.support.s3`). One ``shipyard serve`` runs
in each folder, in its own process, following the champion.

What must hold, as the issue states it:
- a promotion or a rollback made from either folder is served by both servers within
  about a second (each polls a generation number every ``serving.poll_seconds``, 0.5 s
  by default; the test waits on the answers with a generous deadline and prints the
  delays it saw, since how fast a loaded machine gets there is not the test's business);
- both write prediction logs into one dataset in the bucket, names never colliding;
- ``monitor run``, a guardrail window and the CT training window read from either folder
  see the rows (and labels) of both;
- the agent's lease holds across hosts: of two agents, one in each folder, one acts;
- a CT retrain run on host A produces a version that host B loads from the bucket (its
  server answers the candidate in the roll-out's shadow step).

Timings of each phase are printed (``-s``) for the record, never asserted.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from shipyard.config import Config, load_config
from shipyard.logs.reader import query_log
from shipyard.logs.root import project_log_root
from shipyard.storage.location import Location
from tests.support import (
    PATIENCE,
    ServeProcess,
    call,
    copy_example,
    project_of,
    server_environment,
    token_for,
    wait_for,
)
from tests.support.s3 import S3Server, moto_server

pytestmark = pytest.mark.postgres

MODEL = "churn"
ROWS_PER_HOST = 30


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the module."""
    with moto_server() as server:
        yield server


@dataclass
class Host:
    """One host's project folder and configuration."""

    name: str
    root: Path
    config: Config

    @property
    def config_file(self) -> Path:
        return self.root / "shipyard.yaml"


def make_host(name: str, folder: Path, database: str, bucket: str, endpoint: str) -> Host:
    """A fresh copy of the example on ``name``'s disk, pointed at the shared database
    and bucket (the endpoint is the server's, as a MinIO user would set it)."""
    root = copy_example(folder / name / "churn")
    data = yaml.safe_load((root / "shipyard.yaml").read_text())
    data |= {
        "database_url": database,
        "artifact_root": f"{bucket}/artifacts",
        "storage": {"endpoint_url": endpoint},
    }
    data["train"]["params"]["n_estimators"] = 30
    data["promotion"] = {"approval": "none"}
    data["serving"] = {"log_roll_seconds": 1.0}  # rows reach the bucket a second after answers
    data["ct"] = {
        "cooldown_seconds": 0,
        "min_performance_loss": None,
        "recent_labelled": 0,
        "step_seconds": 0,
        "min_requests": 0,
    }
    (root / "shipyard.yaml").write_text(yaml.safe_dump(data))
    return Host(name, root, load_config(root / "shipyard.yaml", environ={}))


def predict(server: ServeProcess, body: bytes, token: str, request_id: str) -> tuple[str, Any]:
    """One prediction: the answering version and the predictions."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "X-Request-ID": request_id,
    }
    try:
        status, answer_headers, payload = call(
            f"{server.url}/v1/models/{MODEL}:predict", body, headers
        )
    except OSError as error:
        raise AssertionError(f"{server.url} refused: {error}\nIt said:\n{server.text}") from None
    assert status == 200, payload
    return answer_headers.get("x-model-version", ""), json.loads(payload)["predictions"]


def served_by_both(
    servers: list[ServeProcess], body: bytes, token: str, version: str, what: str
) -> float:
    """Wait until every server answers with ``version``; the seconds it took."""
    start = time.monotonic()
    count = iter(range(10**9))

    def everywhere() -> bool:
        return all(
            predict(server, body, token, f"probe-{next(count)}")[0] == version for server in servers
        )

    wait_for(everywhere, what=what)
    return time.monotonic() - start


@contextmanager
def two_servers(
    a: Host, b: Host, environ: dict[str, str]
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    """``shipyard serve churn`` in each host's folder, started side by side."""
    servers = [ServeProcess(host.config_file, MODEL, environ=environ) for host in (a, b)]
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        started = [pool.submit(stack.enter_context, server) for server in servers]
        for future in started:
            future.result()
        yield servers[0], servers[1]


def describe(servers: list[ServeProcess], logs: Location) -> str:
    """What each server says about itself and what the log holds, for a failure."""
    parts = []
    for server in servers:
        _, _, ready = call(f"{server.url}/v2/health/ready")
        parts.append(f"{server.url} ready: {ready.decode()[:2000]}\n{server.text[-3000:]}")
    held = query_log(
        logs, MODEL, sql="SELECT version, role, status, count(*) AS n FROM log GROUP BY ALL"
    )
    parts.append(f"the log holds: {held.to_pylist()}")
    return "\n".join(parts)


def send_traffic(server: ServeProcess, rows: list[dict[str, Any]], token: str, prefix: str) -> None:
    """One single-row prediction per row, with request ids ``<prefix><i>``."""
    for i, row in enumerate(rows):
        predict(server, json.dumps({"instances": [row]}).encode(), token, f"{prefix}{i}")


def test_two_hosts_share_one_control_plane_and_one_bucket(
    postgres_url: str,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shipyard.agent import Agent
    from shipyard.delivery import abort_rollout, active_rollout
    from shipyard.delivery.guardrails import evaluate_guardrails
    from shipyard.delivery.lease import Lease
    from shipyard.evaluation.evaluate import evaluate_version
    from shipyard.governance.promotion import promote
    from shipyard.monitoring.run import run_monitor
    from shipyard.pipelines import ContinuousTraining, manual_trigger
    from shipyard.pipelines.gates import recent_labelled
    from shipyard.registry import Tracking
    from shipyard.registry.aliases import rollback
    from shipyard.registry.refs import ModelRef
    from shipyard.store import Store
    from shipyard.training import train

    timings: dict[str, float] = {}
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.bucket("team")
    a = make_host("host-a", tmp_path, postgres_url, bucket, s3_server.endpoint_url)
    b = make_host("host-b", tmp_path, postgres_url, bucket, s3_server.endpoint_url)

    # Host A sets the control plane up and trains two versions; the files go to the bucket.
    started = time.monotonic()
    Store(a.config.db_url, actor="tester").close()
    Tracking(a.config)
    project_a, project_b = project_of(a.config), project_of(b.config)
    train(project_a)
    train(project_a)
    for version in ("1", "2"):
        evaluate_version(project_a, ModelRef(MODEL, version=version))
    promote(project_a, ModelRef(MODEL, version="1"), to="champion")
    timings["set up, train twice, promote"] = time.monotonic() - started
    artifacts = s3_server.keys(f"{bucket}/artifacts")
    assert any(key.endswith("MLmodel") for key in artifacts), artifacts[:20]
    assert not (a.root / ".shipyard" / "artifacts").exists()

    operator = token_for(project_a, "operator", name="servers")
    caller = token_for(project_a, "labeller", name="client")
    environ = server_environment(SHIPYARD_TOKEN=operator, **s3_server.environment())
    golden = pd.read_csv(a.root / "data" / "golden.csv")
    rows = [row.drop("churned").to_dict() for _, row in golden.head(ROWS_PER_HOST).iterrows()]
    probe = json.dumps({"instances": rows[:1]}).encode()
    logs = project_log_root(a.config)
    assert isinstance(logs, Location) and logs.url == f"{bucket}/artifacts/logs"
    assert project_log_root(b.config) == logs

    started = time.monotonic()
    with two_servers(a, b, environ) as (server_a, server_b):
        timings["start both servers"] = time.monotonic() - started
        servers = [server_a, server_b]
        served_by_both(servers, probe, caller, "1", "both servers on churn/1")

        # A promotion made on host B, then a rollback made on host A: both serve each.
        promote(project_b, ModelRef(MODEL, version="2"), to="champion")
        timings["promotion from B, served by both"] = served_by_both(
            servers, probe, caller, "2", "both servers to serve churn/2 after B promoted it"
        )
        rollback(project_a.store, project_a.client, MODEL, reason="two-host test")
        timings["rollback from A, served by both"] = served_by_both(
            servers, probe, caller, "1", "both servers to serve churn/1 after A rolled back"
        )

        # Traffic on both hosts; each host takes the labels of the other's predictions.
        send_traffic(server_a, rows, caller, "a")
        send_traffic(server_b, rows, caller, "b")
        for server, other in ((server_a, "b"), (server_b, "a")):
            truth = [
                {"request_id": f"{other}{i}", "label": int(label)}
                for i, label in enumerate(golden["churned"].head(ROWS_PER_HOST))
            ]
            status, _, payload = call(
                f"{server.url}/v1/feedback",
                json.dumps(truth).encode(),
                {"Authorization": f"Bearer {caller}", "Content-Type": "application/json"},
            )
            assert status == 200 and json.loads(payload)["accepted"] == ROWS_PER_HOST, payload

        def both_hosts_rows() -> bool:
            ids = set(query_log(logs, MODEL).column("request_id").to_pylist())
            return all(f"client/{h}{i}" in ids for h in "ab" for i in range(ROWS_PER_HOST))

        wait_for(both_hosts_rows, what="the rows of both hosts in the bucket's log")

        # Every reader, from either folder, sees both hosts' rows and labels.
        for host in (a, b):
            project = project_of(host.config)
            result = run_monitor(project, MODEL, version="1", window="last:1000", alerts=False)
            assert result.rows >= 2 * ROWS_PER_HOST, describe(servers, logs)
            assert str(result.report_path).startswith(f"{bucket}/artifacts/reports/monitor/")
            labelled = recent_labelled(host.config, MODEL, 2 * ROWS_PER_HOST)
            assert len(labelled) == 2 * ROWS_PER_HOST, labelled

        # A CT retrain on host A; both servers load the candidate from the bucket and
        # answer it in shadow, and a guardrail window from host B sees both hosts' rows.
        started = time.monotonic()
        cycle = ContinuousTraining(project_of(a.config)).run(manual_trigger("two-host test"))
        timings["CT cycle on A up to its roll-out"] = time.monotonic() - started
        assert cycle.candidate == "3" and cycle.rollout_id is not None, cycle.reason
        rollout = active_rollout(project_b.store, MODEL)
        assert rollout is not None and rollout.candidate == "3"
        round_ = iter(range(10**6))
        started = time.monotonic()

        def shadow_on_both() -> bool:
            n = next(round_)
            send_traffic(server_a, rows[:3], caller, f"sa{n}-")
            send_traffic(server_b, rows[:3], caller, f"sb{n}-")
            found = query_log(
                logs,
                MODEL,
                sql="SELECT DISTINCT substr(request_id, 8, 2) AS host FROM log "
                "WHERE version = '3' AND role = 'shadow'",
            )
            return set(found.column("host").to_pylist()) >= {"sa", "sb"}

        try:
            wait_for(shadow_on_both, what="shadow answers of churn/3 from both hosts", every=1.0)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n{describe(servers, logs)}") from None
        timings["both servers answer the candidate in shadow"] = time.monotonic() - started
        for server in servers:
            # One worker: uvicorn shuts down gracefully, then re-raises the SIGTERM it took.
            assert server.stop() in (0, -signal.SIGTERM), server.text

    # The servers flushed their journals as they stopped. A guardrail window read from
    # host B counts the candidate's answers of both hosts, as they are in the bucket.
    guard = evaluate_guardrails(project_log_root(b.config), rollout, since=rollout.step_started_at)
    shadow = query_log(
        logs,
        MODEL,
        since=rollout.step_started_at,
        sql="SELECT request_id FROM log WHERE version = '3' AND role = 'shadow'",
    )
    hosts = {rid[7:9] for rid in shadow.column("request_id").to_pylist()}
    assert hosts == {"sa", "sb"} and guard.requests == shadow.num_rows, guard.to_dict()
    abort_rollout(project_a.store, MODEL, reason="two-host test")

    # No local log on either host: only the journals live on each host's disk.
    for host in (a, b):
        assert not (host.root / ".shipyard" / "logs").exists()
        assert (host.root / ".shipyard" / "journal" / "predictions").is_dir()
    # One dataset, no collisions: every file name is unique and names its writer.
    keys = s3_server.keys(f"{bucket}/artifacts/logs/predictions/model={MODEL}")
    names = [key.rsplit("/", 1)[1] for key in keys if key.endswith(".parquet")]
    assert len(names) == len(set(names)) >= 2
    writers = {"-".join(name.split("-")[2:5]) for name in names}  # <host>-<pid>-<random>
    assert len(writers) >= 2, names  # both servers wrote into it

    # The agent's lease holds across hosts: two agents, one in each folder, one acts.
    stop = threading.Event()
    started = time.monotonic()
    leases = [
        Lease(project_of(host.config).store, "agent", holder=host.name, ttl=30.0) for host in (a, b)
    ]
    agents = [
        threading.Thread(target=Agent(project_of(host.config)).run, args=(stop, lease))
        for host, lease in zip((a, b), leases, strict=True)
    ]
    for agent in agents:
        agent.start()
    try:
        wait_for(lambda: any(lease.held for lease in leases), what="an agent to hold the lease")
        holders = [lease.holder for lease in leases if lease.held]
        current = leases[0].current()
        assert len(holders) == 1 and current is not None and current.holder == holders[0]
    finally:
        stop.set()
        for agent in agents:
            agent.join(PATIENCE)
    assert not any(agent.is_alive() for agent in agents)
    timings["two agents, one lease"] = time.monotonic() - started
    print("\ntwo-host timings (s): " + json.dumps({k: round(v, 2) for k, v in timings.items()}))
