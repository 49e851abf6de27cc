"""``shipyard serve --workers 2`` as a user runs it: metrics summed, logs complete at stop."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from shipyard.config import Config
from shipyard.logs.reader import query_log
from tests.support import ServeProcess, call, server_environment


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_two_workers_share_metrics_and_flush_logs_on_sigterm(
    trained_project: Config, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    environ = server_environment(SHIPYARD_SERVING__LOGS=str(logs))
    config_file = trained_project.root / "shipyard.yaml"
    sent = 60
    with ServeProcess(
        config_file, "churn", workers=2, args=("--workers", "2"), environ=environ
    ) as server:
        rows = pd.read_csv(trained_project.root / "data" / "golden.csv").head(3)
        body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
        for i in range(sent):
            status, _, payload = call(
                f"{server.url}/v1/models/churn:predict",
                body.encode(),
                {"X-Request-ID": f"w{i}", "Content-Type": "application/json"},
            )
            assert status == 200, payload
        # Each scrape is answered by one worker, but counts every worker's requests.
        for _ in range(4):
            text = call(f"{server.url}/metrics")[2].decode()
            served = metric(text, "shipyard_requests_total", model="churn", protocol="kserve_v1")
            assert served == sent, text
        # Process metrics of each live worker (labelled by pid), and their health.
        memory = [
            line for line in text.splitlines() if line.startswith("process_resident_memory_bytes{")
        ]
        assert len({line.split('pid="')[1].split('"')[0] for line in memory}) == 2, text
        assert "# TYPE process_cpu_seconds_total counter" in text
        assert metric(text, "shipyard_degraded", reason="prediction_log") == 0.0
        assert 'reason="database"' in text
        # The example's model.owner is on every series a rule reads.
        assert metric(text, "shipyard_requests_total", owner="growth-analytics") == sent
        assert server.stop() == 0, server.text  # SIGTERM, as a supervisor stops it
    assert "logs flushed" in server.text
    table = query_log(
        logs, "churn", sql="SELECT count(*) AS n, count(DISTINCT request_id) AS r FROM log"
    )
    assert table.to_pylist() == [{"n": sent * 3, "r": sent * 3}]
    # Files are named part-<stamp>-<pid>-…: both workers served, so both wrote.
    writers = {f.name.split("-")[3] for f in (logs / "predictions").rglob("*.parquet")}
    assert len(writers) == 2, writers
