"""Who may reach which route of the server: bearer tokens, scopes and grants, named.

The tokens are real: issued through ``shipyard.governance.tokens`` into a copy of the
trained churn project, and checked against its token table. The app is called in
process (``tests.support.in_process``); one test runs ``shipyard serve`` for the issue's
finding (anonymous feedback re-labelled predictions).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.access import Principal, Scope
from shipyard.config import Config
from shipyard.errors import Unauthenticated
from shipyard.governance.tokens import authenticate, revoke_token
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel, load_served_model
from shipyard.models.signature import InputSpec
from shipyard.project import Project
from shipyard.serving.app import create_app
from shipyard.serving.auth import BearerTokens, ServerAccess, auth_required
from shipyard.serving.request import Request
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
    wait_for,
)

Answer = tuple[int, dict[str, str], bytes]

# Every prediction route: (protocol, path), with the churn model's body for it.
PREDICTIONS = [
    ("kserve_v1", "/v1/models/churn:predict"),
    ("open_inference_v2", "/v2/models/churn/infer"),
    ("open_inference_v2", "/v2/models/churn/versions/1/infer"),
    ("mlflow", "/invocations"),
]
OPEN_ALWAYS = [
    "/",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/churn/ready",
    "/v2/models/churn/versions/1/ready",
    "/v1/models/churn",
    "/ping",
    "/health",
    "/version",
    "/v2",
]
METADATA = ["/v1/models", "/v2/models/churn", "/v2/models/churn/versions/1", "/openapi.json"]


@dataclass(frozen=True)
class Tokens:
    """The tokens the tests present, by what they may do."""

    labeller: str  # serve:invoke and labels:write on every model
    viewer: str  # models:read only
    churn_only: str  # a labeller granted churn* only
    fraud_only: str  # a labeller granted fraud* only
    expired: str
    revoked: str


@pytest.fixture(scope="module")
def project(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    project = project_of(trained_examples.copy(tmp_path_factory.mktemp("auth") / "churn", {}))
    yield project
    project.close()


@pytest.fixture(scope="module")
def served(project: Project) -> ServedModel:
    return load_served_model(project.client, "churn", "1")


@pytest.fixture(scope="module")
def tokens(project: Project) -> Tokens:
    revoked = token_for(project, "labeller", name="gone")
    revoke_token(project, token_id(revoked))
    long_ago = datetime.now(UTC) - timedelta(days=30)
    return Tokens(
        labeller=token_for(project, "labeller", name="labeller-bot"),
        viewer=token_for(project, "viewer"),
        churn_only=token_for(project, "labeller", name="churn-team", models=["churn*"]),
        fraud_only=token_for(project, "labeller", name="fraud-team", models=["fraud*"]),
        expired=token_for(project, "labeller", name="old", expires=timedelta(days=1), now=long_ago),
        revoked=revoked,
    )


@pytest.fixture(scope="module")
def rows(project: Project) -> pd.DataFrame:
    golden = pd.read_csv(project.config.root / "data" / "golden.csv")
    return golden.head(3).drop(columns=["churned"])


def bodies(rows: pd.DataFrame) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Each protocol's prediction body for ``rows``, with the headers it needs."""
    kinds = {"i": "INT64", "f": "FP64", "O": "BYTES"}
    tensors = [
        {
            "name": column,
            "shape": [len(rows)],
            "datatype": kinds[rows[column].dtype.kind],
            "data": rows[column].tolist(),
        }
        for column in rows.columns
    ]
    split = {"dataframe_split": rows.to_dict("split") | {"index": None}}
    return {
        "kserve_v1": (json.dumps({"instances": rows.to_dict("records")}).encode(), {}),
        "open_inference_v2": (json.dumps({"inputs": tensors}).encode(), {}),
        "mlflow": (json.dumps(split).encode(), {"Content-Type": "application/json"}),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def never(token: str) -> Principal:
    """A token check for servers that, in the test, are never asked to check one."""
    raise AssertionError("no token should have been checked")


def access_of(
    project: Project,
    *,
    predictions: bool = True,
    metadata: bool = True,
    metrics: bool = False,
    ttl: float = 1.0,
) -> ServerAccess:
    """The access rules a server of ``project`` would have, with its real token table."""
    tokens = BearerTokens.of_store(lambda: project.store, ttl=ttl)
    return ServerAccess(tokens, predictions=predictions, metadata=metadata, metrics=metrics)


def refused(answer: Answer, status: int, *fragments: str) -> str:
    """Assert ``answer`` is a refusal in the server's error shape; return its message."""
    code, headers, body = answer
    assert code == status, body
    assert headers["content-type"] == "application/json"
    assert set(json.loads(body)) == {"error"}, body
    message: str = json.loads(body)["error"]
    for fragment in fragments:
        assert fragment in message, message
    challenge = headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert ('error="insufficient_scope"' in challenge) == (status == 403), challenge
    assert "x-model-version" not in headers
    return message


@dataclass
class Seen:
    """An enrich step that notes who each request's principal was (the stages after it)."""

    principals: list[Principal | None]

    def enrich(self, request: Request, spec: InputSpec, inputs: np.ndarray) -> np.ndarray:
        self.principals.append(request.principal)
        return inputs


@pytest.fixture(scope="module")
def guarded(project: Project, served: ServedModel) -> Iterator[tuple[AppClient, Seen]]:
    """An app with serving.auth required (metrics open), and who its stages saw."""
    seen = Seen([])
    with in_process(create_app(served, access=access_of(project), enrich=seen)) as client:
        yield client, seen


# --------------------------------------------------------------------------- predictions


@pytest.mark.parametrize(("protocol", "path"), PREDICTIONS)
def test_anonymous_predictions_are_401_on_every_protocol(
    guarded: tuple[AppClient, Seen], rows: pd.DataFrame, protocol: str, path: str
) -> None:
    client, seen = guarded
    body, headers = bodies(rows)[protocol]
    before = len(seen.principals)
    answer = client.call(path, body, headers | {"X-Request-ID": "anon-1"})
    refused(answer, 401, "No token", "serve:invoke", "Authorization: Bearer")
    assert answer[1]["x-request-id"] == "anon-1"
    assert len(seen.principals) == before, "a refused request went past authenticate"
    not_bearer = client.call(path, body, headers | {"Authorization": "Basic dXNlcjpwdw=="})
    refused(not_bearer, 401, "does not hold a bearer token")


@pytest.mark.parametrize(("protocol", "path"), PREDICTIONS)
def test_a_labeller_predicts_and_later_stages_see_who(
    guarded: tuple[AppClient, Seen],
    tokens: Tokens,
    rows: pd.DataFrame,
    served: ServedModel,
    protocol: str,
    path: str,
) -> None:
    client, seen = guarded
    body, headers = bodies(rows)[protocol]
    status, answer_headers, payload = client.call(path, body, headers | bearer(tokens.labeller))
    assert status == 200, payload
    assert answer_headers["x-model-version"] == "1"
    principal = seen.principals[-1]
    assert principal is not None and principal.name == "labeller-bot"
    assert principal.via == "token" and principal.role == "labeller"
    # A token granted churn* predicts churn as well.
    status, _, payload = client.call(path, body, headers | bearer(tokens.churn_only))
    assert status == 200, payload


@pytest.mark.parametrize(("protocol", "path"), PREDICTIONS)
def test_a_viewer_is_403_naming_serve_invoke(
    guarded: tuple[AppClient, Seen], tokens: Tokens, rows: pd.DataFrame, protocol: str, path: str
) -> None:
    client, _ = guarded
    body, headers = bodies(rows)[protocol]
    answer = client.call(path, body, headers | bearer(tokens.viewer))
    message = refused(answer, 403, "viewer", "lacks the scope serve:invoke")
    assert "labeller" in message  # the roles that hold it are named


@pytest.mark.parametrize(("protocol", "path"), PREDICTIONS)
def test_a_grant_on_other_models_is_403_naming_the_model(
    guarded: tuple[AppClient, Seen], tokens: Tokens, rows: pd.DataFrame, protocol: str, path: str
) -> None:
    client, _ = guarded
    body, headers = bodies(rows)[protocol]
    answer = client.call(path, body, headers | bearer(tokens.fraud_only))
    refused(answer, 403, "no grant on model 'churn'", "model:fraud*:USE")


def test_a_churn_grant_does_not_reach_another_model(
    guarded: tuple[AppClient, Seen], tokens: Tokens, rows: pd.DataFrame
) -> None:
    client, _ = guarded
    body, _ = bodies(rows)["kserve_v1"]
    answer = client.call("/v1/models/fraud:predict", body, bearer(tokens.churn_only))
    refused(answer, 403, "no grant on model 'fraud'", "model:churn*:USE")
    # Whoever may call it learns only that it is not served here.
    status, _, payload = client.call("/v1/models/fraud:predict", body, bearer(tokens.labeller))
    assert status == 404, payload


@pytest.mark.parametrize(
    ("which", "fragment"),
    [
        ("expired", "expired on"),
        ("revoked", "was revoked on"),
        ("mistyped", "checksum does not match"),
        ("malformed", "malformed"),
    ],
)
@pytest.mark.parametrize(("protocol", "path"), PREDICTIONS)
def test_bad_tokens_are_401_saying_why(
    guarded: tuple[AppClient, Seen],
    tokens: Tokens,
    rows: pd.DataFrame,
    protocol: str,
    path: str,
    which: str,
    fragment: str,
) -> None:
    client, _ = guarded
    body, headers = bodies(rows)[protocol]
    good = tokens.labeller
    token = {
        "expired": tokens.expired,
        "revoked": tokens.revoked,
        "mistyped": good[:-8] + ("A" if good[-8] != "A" else "B") + good[-7:],
        "malformed": "not-a-token",
    }[which]
    message = refused(client.call(path, body, headers | bearer(token)), 401, fragment)
    assert token not in message


# --------------------------------------------------------------------------- other routes


def test_health_and_readiness_stay_open(guarded: tuple[AppClient, Seen]) -> None:
    client, _ = guarded
    for path in OPEN_ALWAYS:
        status, _, payload = client.call(path)
        assert status == 200, (path, payload)


def test_model_metadata_needs_models_read_when_auth_is_required(
    guarded: tuple[AppClient, Seen], tokens: Tokens
) -> None:
    client, _ = guarded
    for path in METADATA:
        refused(client.call(path), 401, "No token", "models:read")
        status, _, payload = client.call(path, headers=bearer(tokens.viewer))
        assert status == 200, (path, payload)
    refused(client.call("/v2/models/churn", headers=bearer(tokens.fraud_only)), 403, "'churn'")


def test_metadata_and_metrics_are_open_when_auth_is_off(
    project: Project, served: ServedModel
) -> None:
    access = ServerAccess.of_config(project.config, BearerTokens(never))
    assert not (access.predictions or access.metadata or access.metrics) and access.feedback
    with in_process(create_app(served, access=access)) as client:
        for path in [*METADATA, "/metrics", *OPEN_ALWAYS]:
            status, _, payload = client.call(path)
            assert status == 200, (path, payload)


def test_metrics_need_models_read_when_metrics_auth_is_required(
    project: Project, served: ServedModel, tokens: Tokens
) -> None:
    access = access_of(project, predictions=False, metadata=False, metrics=True)
    with in_process(create_app(served, access=access)) as client:
        refused(client.call("/metrics"), 401, "No token", "models:read")
        status, headers, payload = client.call("/metrics", headers=bearer(tokens.viewer))
    assert status == 200 and b"shipyard_requests_total" in payload
    assert headers["content-type"].startswith("text/plain")


# --------------------------------------------------------------------------- feedback


@pytest.fixture
def labels(tmp_path: Path) -> Iterator[PredictionLogWriter]:
    writer = PredictionLogWriter(tmp_path / "logs", kind="labels", roll_seconds=0.1)
    writer.start()
    yield writer
    writer.close()


def test_feedback_needs_labels_write_even_with_auth_off(
    project: Project, served: ServedModel, tokens: Tokens, labels: PredictionLogWriter
) -> None:
    """The laptop default (SQLite, serving.auth auto): predictions open, feedback not."""
    assert not auth_required(project.config)
    tokens_of_project = BearerTokens.of_store(lambda: project.store, ttl=1.0)
    access = ServerAccess.of_config(project.config, tokens_of_project)
    feedback = json.dumps([{"request_id": "r-1", "label": 1}]).encode()
    with in_process(create_app(served, labels=labels, access=access)) as client:
        refused(client.call("/v1/feedback", feedback), 401, "No token", "labels:write")
        refused(
            client.call("/v1/feedback", feedback, bearer(tokens.viewer)),
            403,
            "lacks the scope labels:write",
        )
        refused(
            client.call("/v1/feedback", feedback, bearer(tokens.fraud_only)),
            403,
            "no grant on model 'churn'",
        )
        refused(client.call("/v1/feedback", feedback, bearer(tokens.revoked)), 401, "revoked")
        status, _, payload = client.call("/v1/feedback", feedback, bearer(tokens.labeller))
        assert status == 200, payload
        assert json.loads(payload) == {"accepted": 1, "dropped": 0}


# --------------------------------------------------------------------------- revocation, cache


def test_a_revoked_token_is_refused_once_its_answer_is_stale(
    project: Project, served: ServedModel, rows: pd.DataFrame
) -> None:
    issued = token_for(project, "labeller", name="soon-gone")
    body, _ = bodies(rows)["kserve_v1"]
    path = "/v1/models/churn:predict"
    with in_process(create_app(served, access=access_of(project, ttl=0.5))) as client:
        status, _, payload = client.call(path, body, bearer(issued))
        assert status == 200, payload
        revoke_token(project, token_id(issued))

        def refused_now() -> Answer | None:
            answer = client.call(path, body, bearer(issued))
            return answer if answer[0] != 200 else None

        answer = wait_for(refused_now, what="the revoked token to be refused")
    assert answer is not None
    refused(answer, 401, "was revoked on")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting(verify: Callable[[str], Principal], calls: list[str]) -> Callable[[str], Principal]:
    def counted(token: str) -> Principal:
        calls.append(token)
        return verify(token)

    return counted


def test_each_answer_is_believed_for_the_ttl_and_no_longer(project: Project) -> None:
    """Verified once per ``ttl``: the hot path is a hash and a dict lookup; revocation waits."""
    issued = token_for(project, "labeller", name="cached")
    calls: list[str] = []
    clock = Clock()
    bearer_tokens = BearerTokens(
        counting(lambda token: authenticate(project.store, token), calls), ttl=1.0, clock=clock
    )
    header = f"Bearer {issued}"
    for _ in range(50):
        assert bearer_tokens.principal(header, Scope.SERVE_INVOKE).name == "cached"
    assert len(calls) == 1
    revoke_token(project, token_id(issued))
    clock.now += 0.999
    assert bearer_tokens.principal(header, Scope.SERVE_INVOKE).name == "cached"  # still believed
    clock.now += 0.001
    with pytest.raises(Unauthenticated, match="revoked"):
        bearer_tokens.principal(header, Scope.SERVE_INVOKE)
    # Refusals are remembered too: a client retrying a dead token does not reach the database.
    for _ in range(10):
        with pytest.raises(Unauthenticated, match="revoked"):
            bearer_tokens.principal(header, Scope.SERVE_INVOKE)
    assert len(calls) == 2


def test_a_failing_token_check_is_a_503_that_does_not_quote_the_token(
    served: ServedModel, tokens: Tokens, rows: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(token: str) -> Principal:
        raise RuntimeError(f"connection lost while looking up {token}")

    access = ServerAccess(BearerTokens(broken, ttl=1.0), predictions=True)
    body, _ = bodies(rows)["kserve_v1"]
    with caplog.at_level(logging.DEBUG), in_process(create_app(served, access=access)) as client:
        status, _, payload = client.call("/v1/models/churn:predict", body, bearer(tokens.labeller))
    assert status == 503, payload
    assert "could not be checked" in json.loads(payload)["error"]
    assert tokens.labeller not in payload.decode()
    assert "RuntimeError" in caplog.text and tokens.labeller not in caplog.text


def test_serving_auth_follows_the_database(project: Project) -> None:
    config = project.config
    tokens = BearerTokens(never)

    def with_settings(database: str | None = None, **serving: str) -> Config:
        settings = config.serving.model_copy(update=serving)
        return config.model_copy(update={"serving": settings, "database_url": database})

    laptop = ServerAccess.of_config(with_settings(), tokens)
    assert (laptop.predictions, laptop.metadata, laptop.metrics, laptop.feedback) == (
        False,
        False,
        False,
        True,
    )
    shared = with_settings("postgresql+psycopg://shipyard@db.internal/ml")
    assert ServerAccess.of_config(shared, tokens).predictions
    assert not ServerAccess.of_config(
        with_settings("postgresql+psycopg://x@h/db", auth="off"), tokens
    ).predictions
    required = ServerAccess.of_config(with_settings(auth="required"), tokens)
    assert required.predictions and required.metadata and not required.metrics
    assert ServerAccess.of_config(with_settings(metrics_auth="required"), tokens).metrics
    with pytest.raises(ValueError, match="needs the tokens"):
        ServerAccess(None, predictions=True)


# --------------------------------------------------------------------------- the finding


def test_anonymous_feedback_no_longer_relabels_predictions(
    trained_copy: Config, tmp_path: Path
) -> None:
    """Issue 12: an anonymous client re-labelled 400 predictions through POST /v1/feedback.

    The laptop default (SQLite, serving.auth auto): predictions stay open, feedback needs
    a token with labels:write.
    """
    project = project_of(trained_copy)
    labeller = token_for(project, "labeller", name="labeller-bot")
    project.close()
    logs = tmp_path / "logs"
    environ = server_environment(
        SHIPYARD_SERVING__LOGS=str(logs), SHIPYARD_SERVING__LOG_ROLL_SECONDS="0.2"
    )
    golden = pd.read_csv(trained_copy.root / "data" / "golden.csv").head(40)
    ids = [f"p{i}" for i in range(len(golden))]
    config_file = trained_copy.root / "shipyard.yaml"
    args = ("--workers", "2")  # each worker checks tokens on its own
    with ServeProcess(config_file, "churn", workers=2, args=args, environ=environ) as server:
        for request_id, (_, row) in zip(ids, golden.iterrows(), strict=True):
            body = json.dumps({"instances": [row.drop("churned").to_dict()]}).encode()
            status, _, payload = call(
                f"{server.url}/v1/models/churn:predict", body, {"X-Request-ID": request_id}
            )
            assert status == 200, payload  # predictions are open on the laptop default
        flipped = [
            {"request_id": request_id, "label": 1 - int(label)}
            for request_id, label in zip(ids, golden["churned"], strict=True)
        ]
        answer = call(f"{server.url}/v1/feedback", json.dumps(flipped).encode())
        refused(answer, 401, "No token", "labels:write")
        truth = [
            {"request_id": request_id, "label": int(label)}
            for request_id, label in zip(ids, golden["churned"], strict=True)
        ]
        status, _, payload = call(
            f"{server.url}/v1/feedback", json.dumps(truth).encode(), bearer(labeller)
        )
        assert status == 200, payload
        assert json.loads(payload)["accepted"] == len(ids)
        assert server.stop() == 0, server.text
    stored = query_log(logs, "churn", kind="labels").to_pandas()
    assert len(stored) == len(ids)  # only the labeller's labels
    assert sorted(stored["label"].astype(int)) == sorted(int(v) for v in golden["churned"])
