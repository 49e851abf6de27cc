"""``shipyard serve --workers 2`` as a user runs it: metrics summed, logs complete at stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from shipyard.config import Config
from shipyard.logs.reader import query_log
from tests.serving.live import call


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metric(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_two_workers_share_metrics_and_flush_logs_on_sigterm(
    trained_project: Config, tmp_path: Path
) -> None:
    port = free_port()
    logs = tmp_path / "logs"
    env = {**os.environ, "SHIPYARD_SERVING__LOGS": str(logs)}
    command = [
        str(Path(sys.executable).parent / "shipyard"),
        "--config",
        str(trained_project.root / "shipyard.yaml"),
    ]
    server = subprocess.Popen(
        [*command, "serve", "churn", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        ready: set[str] = set()
        while len(ready) < 2:  # each worker reports itself; then both accept connections
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "workers did not start"
            line = server.stdout.readline() if server.stdout else ""
            if line.startswith("worker ") and " ready in " in line:
                ready.add(line.split(":")[0])
        rows = pd.read_csv(trained_project.root / "data" / "golden.csv").head(3)
        body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
        sent = 60
        for i in range(sent):
            status, _, payload = call(
                f"{url}/v1/models/churn:predict", body.encode(), {"X-Request-ID": f"w{i}"}
            )
            assert status == 200, payload
        # Each scrape is answered by one worker, but counts every worker's requests.
        for _ in range(4):
            text = call(f"{url}/metrics")[2].decode()
            served = metric(text, 'shipyard_requests_total{model="churn",protocol="kserve_v1"')
            assert served == sent, text
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert "logs flushed" in output
    table = query_log(
        logs, "churn", sql="SELECT count(*) AS n, count(DISTINCT request_id) AS r FROM log"
    )
    assert table.to_pylist() == [{"n": sent * 3, "r": sent * 3}]
    # Files are named part-<stamp>-<pid>-…: both workers served, so both wrote.
    writers = {f.name.split("-")[2] for f in (logs / "predictions").rglob("*.parquet")}
    assert len(writers) == 2, writers
