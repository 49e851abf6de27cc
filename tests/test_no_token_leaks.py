"""No token ever lands in a log, an event, an error, ``/metrics`` or the prediction log.

One real ``shipyard serve`` (two workers, ``serving.auth: required``), started with a
token of its own in ``SHIPYARD_TOKEN``, is called with every kind of token: valid,
lacking a scope, revoked before and during the run, expired, mistyped (a checksum that
fails) and sent the wrong way. Requests succeed and fail on every protocol and on
feedback. Then everything the run wrote is searched for every token the test created,
whole and its secret part alone: each file under the test's folder (the SQLite database
and its WAL as bytes and as an SQL dump, the Parquet prediction and label logs as bytes
and as decoded rows, MLflow's files), the server's output, this process's log records,
every answer's headers and body, and the ``/metrics`` text.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from shipyard.config import Config
from shipyard.governance.tokens import issue_token, revoke_token
from tests.support import ServeProcess, call, project_of, server_environment, wait_for

# A token is shp_ + 12-character id + 32-character secret + 6-character checksum.
SECRET = slice(4 + 12, 4 + 12 + 32)


def mistyped(token: str) -> str:
    """``token`` with one secret character changed: it looks right, its checksum fails."""
    position = SECRET.start + 5
    swapped = "a" if token[position] != "a" else "b"
    return token[:position] + swapped + token[position + 1 :]


def searched_texts(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` as bytes, plus decoded forms of the compressed ones."""
    texts: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        texts[str(path)] = path.read_bytes()
        if path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
            texts[f"{path} (rows)"] = repr(rows).encode()
        elif path.suffix == ".db":
            with sqlite3.connect(path) as database:
                dump = "\n".join(database.iterdump())
            texts[f"{path} (SQL dump)"] = dump.encode()
    return texts


def test_no_token_appears_anywhere_a_run_writes(
    trained_copy: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    project = project_of(trained_copy)
    operator = issue_token(project, name="serving-host", role="operator")
    labeller = issue_token(project, name="labeller-bot", role="labeller")
    viewer = issue_token(project, name="dashboard", role="viewer")
    doomed = issue_token(project, name="leaver", role="labeller")
    revoked = issue_token(project, name="gone", role="labeller")
    revoke_token(project, revoked.id)
    long_ago = datetime.now(UTC) - timedelta(days=10)
    expired = issue_token(
        project, name="old", role="labeller", expires=timedelta(days=1), now=long_ago
    )
    issued = [operator, labeller, viewer, doomed, revoked, expired]
    typo = mistyped(labeller.token)
    tokens = [token.token for token in issued] + [typo]
    project.close()

    logs = tmp_path / "logs"
    environ = server_environment(
        SHIPYARD_TOKEN=operator.token,
        SHIPYARD_SERVING__AUTH="required",
        SHIPYARD_SERVING__LOGS=str(logs),
        SHIPYARD_SERVING__LOG_ROLL_SECONDS="0.2",
    )
    golden = pd.read_csv(trained_copy.root / "data" / "golden.csv").head(2)
    rows = golden.drop(columns=["churned"])
    v1 = json.dumps({"instances": rows.to_dict("records")}).encode()
    split = json.dumps({"dataframe_split": rows.to_dict("split") | {"index": None}}).encode()
    answers: list[tuple[int, dict[str, str], bytes]] = []

    config_file = trained_copy.root / "shipyard.yaml"
    args = ("--workers", "2")
    with ServeProcess(config_file, "churn", workers=2, args=args, environ=environ) as server:

        def ask(path: str, body: bytes | None = None, **headers: str) -> int:
            answer = call(f"{server.url}{path}", body, headers)
            answers.append(answer)
            return answer[0]

        def bearer(token: str) -> str:
            return f"Bearer {token}"

        predict = "/v1/models/churn:predict"
        for i in range(4):
            assert (
                ask(predict, v1, Authorization=bearer(labeller.token), **{"X-Request-ID": f"ok{i}"})
                == 200
            )
        mlflow_headers = {
            "Content-Type": "application/json",
            "Authorization": bearer(labeller.token),
        }
        assert ask("/invocations", split, **mlflow_headers) == 200
        assert ask(predict, v1, Authorization=bearer(doomed.token)) == 200
        assert ask(predict, v1, Authorization=bearer(viewer.token)) == 403
        assert ask("/invocations", split, Authorization=bearer(viewer.token)) == 403
        for refused in (revoked.token, expired.token, typo):
            assert ask(predict, v1, Authorization=bearer(refused)) == 401
            assert ask("/v2/models/churn/infer", b"{}", Authorization=bearer(refused)) == 401
        assert ask(predict, v1, Authorization=f"Basic {labeller.token}") == 401
        assert ask(predict, v1, Authorization=f"Bearer {labeller.token} {viewer.token}") == 401
        assert ask(predict, v1) == 401
        # Revoked while the server runs: refused once the workers' cached answers go stale.
        with_project = project_of(trained_copy)
        revoke_token(with_project, doomed.id)
        with_project.close()
        wait_for(
            lambda: ask(predict, v1, Authorization=bearer(doomed.token)) == 401,
            what="the token revoked mid-run to be refused",
        )

        feedback = json.dumps([{"request_id": "ok0", "label": 1}]).encode()
        assert ask("/v1/feedback", feedback) == 401
        assert ask("/v1/feedback", feedback, Authorization=bearer(viewer.token)) == 403
        assert ask("/v1/feedback", feedback, Authorization=bearer(typo)) == 401
        assert ask("/v1/feedback", feedback, Authorization=bearer(labeller.token)) == 200
        assert ask("/v2/models/churn", Authorization=bearer(expired.token)) == 401
        assert ask("/v2/models/churn", Authorization=bearer(viewer.token)) == 200
        assert ask("/v2/health/ready") == 200
        assert ask("/metrics") == 200
        metrics = answers[-1][2]
        assert b"shipyard_requests_total" in metrics
        assert server.stop() == 0, server.text
    output = server.text

    texts = searched_texts(tmp_path)
    texts["server output"] = output.encode()
    texts["this process's log records"] = caplog.text.encode()
    texts["/metrics"] = metrics
    for number, (status, headers, body) in enumerate(answers):
        texts[f"answer {number} ({status})"] = repr(headers).encode() + body

    # The search reaches what it should: the logs, the database and the answers.
    assert any(path.endswith(".parquet (rows)") and b"ok3" in text for path, text in texts.items())
    assert any(b"labeller-bot" in text for path, text in texts.items() if "SQL dump" in path)
    assert any(b"was revoked on" in text for path, text in texts.items() if "answer" in path)
    leaks = [
        f"{where}: {'the whole token' if token.encode() in text else 'its secret'} of token {n}"
        for where, text in texts.items()
        for n, token in enumerate(tokens)
        if token[SECRET].encode() in text
    ]
    assert leaks == [], "\n".join(leaks)
