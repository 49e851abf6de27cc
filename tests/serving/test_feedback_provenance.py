"""Labels with provenance: who sent each label and when, conflicts never a silent overwrite,
request ids bounded and namespaced by principal.

Real tokens in a copy of the trained churn project, the app in process (and once
``shipyard serve`` with two workers), the logs read back with DuckDB, and the monitor
run on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard.config import Config, LabelSettings
from shipyard.logs.reader import join_labels, query_log
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel, load_served_model
from shipyard.monitoring.log_window import WindowSpec, load_window
from shipyard.monitoring.run import run_monitor
from shipyard.project import Project
from shipyard.serving.app import create_app
from shipyard.serving.auth import BearerTokens, ServerAccess
from shipyard.serving.feedback import FeedbackDesk
from shipyard.store.event_kinds import EventKind
from tests.support import (
    AppClient,
    ServeProcess,
    TrainedExamples,
    call,
    in_process,
    project_of,
    server_environment,
    token_for,
    token_id,
)

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


@dataclass(frozen=True)
class Tokens:
    alice: str  # labellers (serve:invoke and labels:write): their tokens' secrets
    bob: str
    mallory: str


@pytest.fixture(scope="module")
def project(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    project = project_of(trained_examples.copy(tmp_path_factory.mktemp("fb") / "churn", {}))
    yield project
    project.close()


@pytest.fixture(scope="module")
def served(project: Project) -> ServedModel:
    return load_served_model(project.client, "churn", "1")


@pytest.fixture(scope="module")
def tokens(project: Project) -> Tokens:
    return Tokens(
        *(token_for(project, "labeller", name=name) for name in ("alice", "bob", "mallory"))
    )


@pytest.fixture(scope="module")
def golden(project: Project) -> pd.DataFrame:
    return pd.read_csv(project.config.root / "data" / "golden.csv")


@dataclass
class Server:
    client: AppClient
    log: PredictionLogWriter
    root: Path
    project: Project  # with serving.logs and labels.on_conflict as this server has them

    def predict(self, row: pd.Series, request_id: str | None, token: str | None) -> Any:
        body = json.dumps({"instances": [row.drop("churned").to_dict()]}).encode()
        headers = {} if request_id is None else {"X-Request-ID": request_id}
        return self.client.call("/v1/models/churn:predict", body, headers | bearer(token))

    def feedback(self, items: list[dict[str, Any]], token: str | None, **headers: str) -> Any:
        return self.client.call("/v1/feedback", json.dumps(items).encode(), headers | bearer(token))

    def labels(self) -> list[dict[str, Any]]:
        return query_log(self.root, "churn", kind="labels").to_pylist()

    def joined(self) -> dict[str, Any]:
        self.log.flush()
        return {r["request_id"]: r for r in join_labels(self.root, "churn").to_pylist()}


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server_of(project: Project, served: ServedModel, tmp_path: Path) -> Iterator[Any]:
    """Start an in-process server: predictions open or authenticated, a conflict rule."""
    started: list[tuple[Any, PredictionLogWriter]] = []

    def start(*, predictions_auth: bool = False, on_conflict: str = "reject") -> Server:
        root = tmp_path / f"logs-{len(started)}"
        config = project.config.model_copy(
            update={
                "serving": project.config.serving.model_copy(update={"logs": root}),
                "labels": LabelSettings(on_conflict=on_conflict),  # type: ignore[arg-type]
            }
        )
        acting = project.with_config(config)
        log = PredictionLogWriter(root, roll_seconds=0.1)
        log.start()
        tokens = BearerTokens.of_store(lambda: project.store, ttl=1.0)
        access = ServerAccess(tokens, predictions=predictions_auth)
        desk = FeedbackDesk.for_project(acting, "churn")
        context = in_process(create_app(served, log=log, labels=desk, access=access))
        client = context.__enter__()
        started.append((context, log))
        return Server(client, log, root, acting)

    yield start
    for context, log in started:
        context.__exit__(None, None, None)
        log.close()


# --------------------------------------------------------------------------- the finding


def test_relabelling_400_predictions_is_refused_and_the_monitor_sees_the_truth(
    server_of: Any, tokens: Tokens, golden: pd.DataFrame
) -> None:
    """Issue 12: a client re-labelled 400 predictions (the last label won) and the monitor
    saw ROC-AUC fall from 0.52 to 0.21. Now the second label batch is a 409, and the
    monitor's labels and ROC-AUC stay as they were."""
    server = server_of()  # the laptop default: predictions open, feedback needs a token
    rows = golden.head(400)
    ids = [f"p{i}" for i in range(len(rows))]
    for request_id, (_, row) in zip(ids, rows.iterrows(), strict=True):
        status, _, payload = server.predict(row, request_id, None)
        assert status == 200, payload
    truth: list[dict[str, Any]] = [
        {"request_id": i, "label": int(v)} for i, v in zip(ids, rows["churned"], strict=True)
    ]
    status, _, payload = server.feedback(truth, tokens.alice)
    assert status == 200 and json.loads(payload) == {"accepted": 400, "dropped": 0}
    server.log.flush()
    before = run_monitor(server.project, "churn", window="last:400", alerts=False, report=False)

    flipped = [{"request_id": i["request_id"], "label": 1 - i["label"]} for i in truth]
    status, _, payload = server.feedback(flipped, tokens.mallory)
    assert status == 409, payload
    message = json.loads(payload)["error"]
    assert "400 labels conflict" in message and "p0, p1, p2, p3, p4 (and 395 more)" in message

    window = load_window(server.root, "churn", WindowSpec.parse("last:400"))
    by_id = dict(zip(window.request_ids, window.labels, strict=True))
    assert all(by_id[i] == int(v) for i, v in zip(ids, rows["churned"], strict=True))
    after = run_monitor(server.project, "churn", window="last:400", alerts=False, report=False)
    assert before.performance is not None and after.performance is not None
    auc = before.performance["metrics"]["roc_auc"]
    assert after.performance["metrics"]["roc_auc"] == auc and auc > 0.5
    assert {row["sender"] for row in server.labels()} == {"alice"}


def test_keep_first_ignores_the_second_label_and_reports_it(
    server_of: Any, tokens: Tokens, golden: pd.DataFrame
) -> None:
    server = server_of(on_conflict="keep_first")
    server.predict(golden.iloc[0], "k1", None)
    assert server.feedback([{"request_id": "k1", "label": 1}], tokens.alice)[0] == 200
    status, _, payload = server.feedback(
        [{"request_id": "k1", "label": 0}, {"request_id": "k2", "label": 0}], tokens.bob
    )
    assert status == 200
    assert json.loads(payload) == {"accepted": 1, "dropped": 0, "ignored": ["k1"]}
    assert json.loads(server.joined()["k1"]["label"]) == 1
    assert sorted((r["request_id"], r["sender"]) for r in server.labels()) == [
        ("k1", "alice"),
        ("k2", "bob"),
    ]


def test_keep_last_accepts_keeps_the_old_one_and_readers_take_the_latest(
    server_of: Any, tokens: Tokens, golden: pd.DataFrame
) -> None:
    server = server_of(on_conflict="keep_last")
    server.predict(golden.iloc[0], "l1", None)
    assert server.feedback([{"request_id": "l1", "label": 1}], tokens.alice)[0] == 200
    status, _, payload = server.feedback([{"request_id": "l1", "label": 0}], tokens.bob)
    assert status == 200
    assert json.loads(payload) == {"accepted": 1, "dropped": 0, "replaced": ["l1"]}
    assert len(server.labels()) == 2  # both in the log
    joined = server.joined()["l1"]
    assert json.loads(joined["label"]) == 0 and joined["label_sender"] == "bob"
    events = server.project.store.events(kind=EventKind.LABELS_WRITTEN.value)
    assert events[0].actor == "bob" and events[0].payload["replaced"] == 1
    assert events[0].payload["on_conflict"] == "keep_last"


# --------------------------------------------------------------------------- provenance


def test_each_label_records_who_sent_it_and_when_and_is_audited(
    server_of: Any, tokens: Tokens, golden: pd.DataFrame
) -> None:
    server = server_of()
    server.predict(golden.iloc[0], "who-1", None)
    sent = datetime.now(UTC)
    status, headers, _ = server.feedback(
        [{"request_id": "who-1", "label": 1}], tokens.alice, **{"X-Request-ID": "fb-audit-1"}
    )
    assert status == 200 and headers["x-request-id"] == "fb-audit-1"
    (row,) = server.labels()
    assert row["sender"] == "alice" and row["token_id"] == token_id(tokens.alice)
    assert sent <= row["received_at"] <= datetime.now(UTC)
    (event,) = [
        e
        for e in server.project.store.events(kind=EventKind.LABELS_WRITTEN.value)
        if e.request_id == "fb-audit-1"
    ]
    assert event.subject == "model:churn" and event.actor == "alice"
    assert event.token_id == token_id(tokens.alice) and event.role == "labeller"
    assert event.payload["count"] == 1 and event.payload["request_ids"] == ["who-1"]
    assert len(event.payload["request_ids_sha256"]) == 64
    assert tokens.alice not in json.dumps(event.payload)


# --------------------------------------------------------------------------- request ids


@pytest.mark.parametrize("given", ["x" * 129, "a/b", "semi;colon", "space d"])
def test_a_bad_x_request_id_is_a_400_naming_the_header(
    server_of: Any, tokens: Tokens, golden: pd.DataFrame, given: str
) -> None:
    server = server_of()
    for status, headers, payload in (
        server.predict(golden.iloc[0], given, None),
        server.feedback([{"request_id": "x", "label": 1}], tokens.alice, **{"X-Request-ID": given}),
    ):
        assert status == 400, payload
        assert "X-Request-ID" in json.loads(payload)["error"]
        assert ULID.fullmatch(headers["x-request-id"])  # a fresh id, not the refused one
    assert server.labels() == []


def test_the_longest_plain_id_is_accepted(server_of: Any, golden: pd.DataFrame) -> None:
    server = server_of()
    longest = "a-Z_0.9:" * 16
    assert len(longest) == 128
    status, headers, _ = server.predict(golden.iloc[0], longest, None)
    assert status == 200 and headers["x-request-id"] == longest


def test_server_assigned_ids_are_unique_and_logged(server_of: Any, golden: pd.DataFrame) -> None:
    server = server_of()
    given = []
    for _, row in golden.head(50).iterrows():
        status, headers, _ = server.predict(row, None, None)
        assert status == 200
        given.append(headers["x-request-id"])
    assert len(set(given)) == 50 and all(ULID.fullmatch(i) for i in given)
    assert set(given) <= set(server.joined())


def test_two_principals_with_one_x_request_id_do_not_collide(
    server_of: Any, tokens: Tokens, golden: pd.DataFrame
) -> None:
    server = server_of(predictions_auth=True)
    for token in (tokens.alice, tokens.bob):
        assert server.predict(golden.iloc[0], "same-1", token)[0] == 200
    assert server.predict(golden.iloc[1], "only-alice", tokens.alice)[0] == 200
    logged = server.joined()
    assert {"alice/same-1", "bob/same-1", "alice/only-alice"} <= set(logged)
    assert "same-1" not in logged

    assert server.feedback([{"request_id": "same-1", "label": 1}], tokens.alice)[0] == 200
    # Bob's label for "same-1" is for his own prediction: not a conflict with Alice's.
    assert server.feedback([{"request_id": "same-1", "label": 0}], tokens.bob)[0] == 200
    # Bob names an id only Alice used: it labels nothing of Alice's.
    assert server.feedback([{"request_id": "only-alice", "label": 0}], tokens.bob)[0] == 200
    # Nor can he name her namespace.
    status, _, payload = server.feedback(
        [{"request_id": "alice/only-alice", "label": 0}], tokens.bob
    )
    assert status == 400 and "request_id" in json.loads(payload)["error"]

    joined = server.joined()
    assert json.loads(joined["alice/same-1"]["label"]) == 1
    assert json.loads(joined["bob/same-1"]["label"]) == 0
    assert joined["alice/only-alice"]["label"] is None
    assert {(r["request_id"], r["sender"]) for r in server.labels()} == {
        ("alice/same-1", "alice"),
        ("bob/same-1", "bob"),
        ("bob/only-alice", "bob"),
    }


# --------------------------------------------------------------------------- across workers


def test_conflicts_are_caught_across_the_workers_of_a_real_server(
    trained_copy: Config, tmp_path: Path, golden: pd.DataFrame
) -> None:
    """``shipyard serve --workers 2``: labels checked on disk by both workers; and the
    project's pii section masks what the workers log."""
    config_file = trained_copy.root / "shipyard.yaml"
    with config_file.open("a", encoding="utf-8") as settings:
        settings.write("pii:\n  columns: {region: quasi_identifier}\n")
    project = project_of(trained_copy)
    labeller = token_for(project, "labeller", name="labeller-bot")
    project.close()
    logs = tmp_path / "logs"
    environ = server_environment(SHIPYARD_SERVING__LOGS=str(logs))
    truth = [{"request_id": f"w{i}", "label": int(v)} for i, v in enumerate(golden["churned"][:20])]
    body = json.dumps(truth).encode()
    auth = bearer(labeller)
    with ServeProcess(
        config_file, "churn", workers=2, args=("--workers", "2"), environ=environ
    ) as server:
        status, _, payload = call(f"{server.url}/v1/feedback", body, auth)
        assert status == 200 and json.loads(payload)["accepted"] == 20, payload
        for i, (_, row) in enumerate(golden.head(20).iterrows()):
            one = json.dumps({"instances": [row.drop("churned").to_dict()]}).encode()
            status, _, _ = call(
                f"{server.url}/v1/models/churn:predict", one, {"X-Request-ID": f"w{i}"}
            )
            assert status == 200
        # Each call is a new connection: the workers take them in turn, and each refuses.
        for _ in range(6):
            status, _, payload = call(f"{server.url}/v1/feedback", body, auth)
            assert status == 409 and "w0, w1, w2" in json.loads(payload)["error"], payload
        assert server.stop() == 0, server.text
    stored = query_log(logs, "churn", kind="labels").to_pylist()
    assert len(stored) == 20 and {r["sender"] for r in stored} == {"labeller-bot"}
    logged = b"".join(path.read_bytes() for path in (logs / "predictions").rglob("*.parquet"))
    assert logged and not any(region.encode() in logged for region in golden["region"].unique())
    assert all(json.loads(r["label"]) is not None for r in join_labels(logs, "churn").to_pylist())
    project = project_of(trained_copy)
    events = project.store.events(kind=EventKind.LABELS_WRITTEN.value)
    assert len(events) == 1 and events[0].actor == "labeller-bot"
    project.close()
