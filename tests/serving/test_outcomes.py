"""Business outcomes through ``POST /v1/feedback``: validated, logged with who sent them,
audited like labels, and read by an A/B experiment on ``outcome:NAME``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import load_served_model
from shipyard.project import Project
from shipyard.serving.app import create_app
from shipyard.serving.auth import BearerTokens, ServerAccess
from shipyard.serving.feedback import FeedbackDesk, parse_feedback
from shipyard.store.event_kinds import EventKind
from tests.support import AppClient, TrainedExamples, in_process, project_of, token_for


@pytest.fixture(scope="module")
def project(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    project = project_of(trained_examples.copy(tmp_path_factory.mktemp("oc") / "churn", {}))
    yield project
    project.close()


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[tuple[AppClient, PredictionLogWriter, Path]]:
    config = project.config
    root = config.resolve(config.serving.logs)
    log = PredictionLogWriter(root, roll_seconds=0.1)
    log.start()
    access = ServerAccess(BearerTokens.of_store(lambda: project.store, ttl=1.0))
    desk = FeedbackDesk.for_project(project, "churn")
    served = load_served_model(project.client, "churn", "1")
    with in_process(create_app(served, log=log, labels=desk, access=access)) as client:
        yield client, log, root
    log.close()


def _post(client: AppClient, body: Any, token: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    status, _, payload = client.call("/v1/feedback", json.dumps(body).encode(), headers)
    return status, json.loads(payload)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"request_id": "r1", "outcome": 3}, "item 0: outcome must be an object"),
        ({"request_id": "r1", "outcome": {"value": 1}}, "item 0: outcome.name must be"),
        ({"request_id": "r1", "outcome": {"name": "a b", "value": 1}}, "outcome.name must be"),
        ({"request_id": "r1", "outcome": {"name": "rev", "value": "1"}}, "outcome.value must be"),
        ({"request_id": "r1", "outcome": {"name": "rev", "value": True}}, "outcome.value must be"),
        ({"request_id": "r1", "outcome": {"name": "rev"}}, "outcome.value must be a number"),
        (
            {"request_id": "r1", "outcome": {"name": "rev", "value": 1, "unit": "€"}},
            "unknown fields ['unit'] in outcome",
        ),
        ({"request_id": "r1", "outcomes": {}}, "unknown fields ['outcomes']"),
    ],
)
def test_malformed_outcomes_are_a_400_naming_the_field(
    server: tuple[AppClient, PredictionLogWriter, Path],
    project: Project,
    item: dict[str, Any],
    message: str,
) -> None:
    client, _, _ = server
    status, payload = _post(client, [item], token_for(project, "labeller", name="ann"))
    assert status == 400 and message in payload["error"], payload


def test_a_non_finite_value_is_refused_before_anything_is_written() -> None:
    from shipyard.errors import RequestError

    with pytest.raises(RequestError, match="finite"):
        parse_feedback(
            [{"request_id": "r1", "outcome": {"name": "rev", "value": float("inf")}}], "churn"
        )


def test_outcomes_are_logged_with_their_sender_and_audited(
    server: tuple[AppClient, PredictionLogWriter, Path], project: Project
) -> None:
    client, _, root = server
    token = token_for(project, "labeller", name="olga")
    body = [
        {"request_id": "o1", "outcome": {"name": "revenue", "value": 12.5}},
        {"request_id": "o2", "outcome": {"name": "revenue", "value": 0}, "label": 1},
    ]
    status, payload = _post(client, body, token)
    assert status == 200 and payload == {"accepted": 1, "dropped": 0, "outcomes": 2}
    rows = query_log(root, "churn", kind="outcomes").to_pylist()
    assert sorted((r["request_id"], r["name"], r["value"], r["sender"]) for r in rows) == [
        ("o1", "revenue", 12.5, "olga"),
        ("o2", "revenue", 0.0, "olga"),
    ]
    written = [
        e for e in project.store.events(kind=EventKind.LABELS_WRITTEN.value)
        if e.payload.get("log") == "outcomes"
    ]  # fmt: skip
    assert written[0].actor == "olga" and written[0].payload["count"] == 2
    # Without labels:write, nothing is written.
    viewer = token_for(project, "viewer", name="vic")
    status, _ = _post(client, [{"request_id": "o3", "outcome": {"name": "r", "value": 1}}], viewer)
    assert status == 403
    assert len(query_log(root, "churn", kind="outcomes")) == 2
