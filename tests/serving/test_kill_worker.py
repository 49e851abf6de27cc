"""``kill -9`` of one worker under steady load: every answered prediction is in the log.

Each worker journals a prediction before its answer leaves; the replacement worker (or
the survivor) rolls the dead worker's journal into Parquet. The log then holds every
request that got a 200, once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path

import pandas as pd

from shipyard.config import Config
from shipyard.logs.reader import query_log
from tests.support import ServeProcess, call, server_environment, wait_for

CLIENTS = 4


def worker_pids(text: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"^worker (\d+): .* ready in ", text, re.MULTILINE)]


def test_killed_worker_loses_no_answered_prediction(
    trained_project: Config, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    environ = server_environment(
        SHIPYARD_SERVING__LOGS=str(logs), SHIPYARD_SERVING__LOG_ROLL_SECONDS="30"
    )
    config_file = trained_project.root / "shipyard.yaml"
    row = pd.read_csv(trained_project.root / "data" / "golden.csv").head(1)
    body = json.dumps({"instances": row.drop(columns=["churned"]).to_dict("records")}).encode()
    answered: list[str] = []
    failed: list[str] = []
    stop = threading.Event()

    with ServeProcess(
        config_file, "churn", workers=2, args=("--workers", "2"), environ=environ
    ) as server:

        def load(client: int) -> None:
            n = 0
            while not stop.is_set():
                request_id = f"k{client}-{n}"
                n += 1
                try:
                    status, _, _ = call(
                        f"{server.url}/v1/models/churn:predict", body, {"X-Request-ID": request_id}
                    )
                except OSError:  # the connection the killed worker held
                    failed.append(request_id)
                    continue
                (answered if status == 200 else failed).append(request_id)

        clients = [threading.Thread(target=load, args=(n,)) for n in range(CLIENTS)]
        for client in clients:
            client.start()
        try:
            wait_for(lambda: len(answered) >= 200, what="200 answered predictions")
            victim = worker_pids(server.text)[0]
            os.kill(victim, signal.SIGKILL)
            before = len(answered)
            wait_for(lambda: len(answered) >= before + 200, what="200 more answers after the kill")
            # uvicorn starts a replacement, which recovers the dead worker's journal.
            wait_for(lambda: len(worker_pids(server.text)) >= 3, what="a replacement worker")
            wait_for(lambda: len(answered) >= before + 400, what="answers after the replacement")
        finally:
            stop.set()
            for client in clients:
                client.join()
        # The dead worker's rows are in Parquet while the server still runs (its journal was
        # rolled by the replacement, with its roll_seconds of 30 s nowhere near passing).
        dead = f"-{victim}-"
        wait_for(
            lambda: any(dead in path.name for path in (logs / "predictions").rglob("*.parquet")),
            what=f"the killed worker {victim}'s journal rolled into Parquet",
        )
        assert server.stop() == 0, server.text
    table = query_log(logs, "churn", sql="SELECT request_id FROM log")
    logged = table.column("request_id").to_pylist()
    assert len(logged) == len(set(logged)), "a row was logged twice"
    missing = set(answered) - set(logged)
    assert not missing, (
        f"{len(missing)} answered predictions are not in the log: {sorted(missing)[:10]}"
    )
    assert not list((logs / "predictions" / "_journal").glob("*/seg-*")), "journal left behind"
