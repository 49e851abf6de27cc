"""One pipeline for every protocol: a step replaced once is replaced for all of them.

The steps are real objects handed to the service's constructor (through ``create_app``
for the HTTP tests, which call the app in process), never patched in.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.config import Config
from shipyard.errors import NotFoundError, RequestError
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import Prediction, ServedModel, load_served_model
from shipyard.models.signature import InputSpec
from shipyard.project import Principal
from shipyard.registry import Tracking
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import Lineup, ModelSlot
from shipyard.serving.pipeline import PredictionService
from shipyard.serving.request import Call, Request
from shipyard.serving.router import Decision, StickyKey
from shipyard.serving.stages import (
    AsSent,
    CountedPredict,
    Inputs,
    PredictStep,
    SignatureCheck,
    TrafficRouting,
    Unbatched,
)
from shipyard.serving.wire import KServeV1
from tests.support import in_process

PROTOCOLS = ["kserve_v1", "open_inference_v2", "open_inference_v2_pinned", "mlflow"]


@pytest.fixture(scope="module")
def served(trained_project: Config) -> ServedModel:
    return load_served_model(Tracking(trained_project).client, "churn", "1")


@pytest.fixture(scope="module")
def rows(trained_project: Config) -> pd.DataFrame:
    golden = pd.read_csv(trained_project.root / "data" / "golden.csv")
    return golden.head(4).drop(columns=["churned"])


def prediction_request(protocol: str, rows: pd.DataFrame) -> tuple[str, bytes, dict[str, str]]:
    """Path, body and headers asking for ``rows``' predictions in ``protocol``."""
    if protocol == "kserve_v1":
        body = json.dumps({"instances": rows.to_dict("records")})
        return "/v1/models/churn:predict", body.encode(), {}
    if protocol == "mlflow":
        body = json.dumps({"dataframe_split": rows.to_dict("split") | {"index": None}})
        return "/invocations", body.encode(), {"Content-Type": "application/json"}
    kinds = {"i": "INT64", "f": "FP64", "O": "BYTES"}
    inputs = [
        {
            "name": column,
            "shape": [len(rows)],
            "datatype": kinds[rows[column].dtype.kind],
            "data": rows[column].tolist(),
        }
        for column in rows.columns
    ]
    pinned = "/versions/1" if protocol.endswith("_pinned") else ""
    return f"/v2/models/churn{pinned}/infer", json.dumps({"inputs": inputs}).encode(), {}


def labels_of(protocol: str, payload: bytes) -> list[int]:
    answer = json.loads(payload)
    if protocol.startswith("open_inference_v2"):
        output = next(o for o in answer["outputs"] if o["name"] == "predict")
        return [int(v) for v in output["data"]]
    return [int(v) for v in answer["predictions"]]


# --------------------------------------------------------------------------- authenticate


class TokenCheck:
    """Lets in the bearer of one token, as alice; refuses everyone else with a 401."""

    def authenticate(self, request: Request) -> Principal | None:
        if request.headers.get("authorization") != "Bearer s3cret":
            raise RequestError("a valid bearer token is required", status=401)
        return Principal("alice", "token")


@dataclass
class PrincipalsSeen:
    """Enriches nothing; notes who each request's principal was, by protocol."""

    seen: list[tuple[str, Principal | None]]

    def enrich(self, request: Request, spec: InputSpec, inputs: np.ndarray) -> np.ndarray:
        self.seen.append((request.protocol.name, request.principal))
        return inputs


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_replaced_authenticate_guards_every_protocol(
    served: ServedModel, rows: pd.DataFrame, protocol: str
) -> None:
    later = PrincipalsSeen([])
    path, body, headers = prediction_request(protocol, rows)
    with in_process(create_app(served, authenticate=TokenCheck(), enrich=later)) as app:
        status, answer_headers, payload = app.call(path, body, headers | {"X-Request-ID": "r1"})
        assert status == 401, payload
        assert "bearer token" in json.loads(payload)["error"]
        assert answer_headers["x-request-id"] == "r1"
        assert "x-model-version" not in answer_headers
        assert later.seen == [], "a refused request went past authenticate"

        token = {"Authorization": "Bearer s3cret"}
        status, answer_headers, payload = app.call(path, body, headers | token)
    assert status == 200, payload
    assert answer_headers["x-model-version"] == "1"
    assert labels_of(protocol, payload) == [int(v) for v in served.model.predict(rows)]
    wire_name = protocol.removesuffix("_pinned")
    assert later.seen == [(wire_name, Principal("alice", "token"))]


# --------------------------------------------------------------------------- enrich


def without(spec: InputSpec, column: str) -> InputSpec:
    """``spec`` less one column: what a client sends when the server looks that one up."""
    keep = [i for i, name in enumerate(spec.columns) if name != column]
    return InputSpec(
        tuple(spec.columns[i] for i in keep),
        tuple(spec.dtypes[i] for i in keep),
        tuple(spec.allow_nan[i] for i in keep),
        spec.max_abs,
    )


@dataclass
class SentWithout:
    """Validates the body against the model's signature less ``column``."""

    column: str

    def validate(self, request: Request, spec: InputSpec) -> np.ndarray:
        return request.protocol.read(request, without(spec, self.column))


@dataclass
class LookUp:
    """Adds ``column`` to each row, looked up in ``table`` by the row's ``key`` column."""

    column: str
    key: str
    table: dict[str, float]

    def enrich(self, request: Request, spec: InputSpec, inputs: np.ndarray) -> np.ndarray:
        keys = inputs[:, without(spec, self.column).columns.index(self.key)]
        values = np.array([self.table[k] for k in keys], dtype=object)
        return np.insert(inputs, spec.columns.index(self.column), values, axis=1)


CHARGES = {"west": 20.0, "south": 115.0, "east": 60.0, "north": 90.0}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_replaced_enrich_adds_a_column_on_every_protocol(
    served: ServedModel, rows: pd.DataFrame, protocol: str, tmp_path: Path
) -> None:
    sent = rows.drop(columns=["monthly_charges"])
    looked_up = rows.assign(monthly_charges=rows["region"].map(CHARGES))
    assert not looked_up["monthly_charges"].isna().any()
    with PredictionLogWriter(tmp_path, roll_seconds=0.2) as log:
        app = create_app(
            served,
            log=log,
            validate=SentWithout("monthly_charges"),
            enrich=LookUp("monthly_charges", "region", CHARGES),
        )
        with in_process(app) as client:
            path, body, headers = prediction_request(protocol, sent)
            status, _, payload = client.call(path, body, headers | {"X-Request-ID": "e1"})
            assert status == 200, payload
            want = [int(v) for v in served.model.predict(looked_up)]
            assert labels_of(protocol, payload) == want

            path, body, headers = prediction_request(protocol, rows)  # the looked-up column too
            status, _, payload = client.call(path, body, headers)
            assert status == 400 and "monthly_charges" in json.loads(payload)["error"]
        log.flush()
    logged = query_log(tmp_path, "churn", sql="SELECT request_id, inputs FROM log ORDER BY 1")
    charges = [record["inputs"]["monthly_charges"] for record in logged.to_pylist()]
    assert charges == [float(v) for v in looked_up["monthly_charges"]]


# --------------------------------------------------------------------------- the service


@dataclass
class Steps:
    """Every step of the default pipeline, each noting its name when it runs."""

    ran: list[str]
    sticky: StickyKey | None = None
    fail: bool = False
    logged: list[tuple[str, Prediction | None]] | None = None

    def authenticate(self, request: Request) -> Principal | None:
        self.ran.append("authenticate")
        return None

    def validate(self, request: Request, spec: InputSpec) -> np.ndarray:
        self.ran.append("validate")
        return SignatureCheck().validate(request, spec)

    def enrich(self, request: Request, spec: InputSpec, inputs: np.ndarray) -> np.ndarray:
        self.ran.append("enrich")
        return AsSent().enrich(request, spec, inputs)

    def route(self, request: Request, lineup: Lineup, inputs: Inputs) -> Decision:
        decision = TrafficRouting(self.sticky).route(request, lineup, inputs)
        self.ran.append("route")  # once decided: deciding may need the inputs
        return decision

    async def submit(
        self, model: ServedModel, inputs: np.ndarray, predict: PredictStep
    ) -> Prediction:
        self.ran.append("batch")
        return await Unbatched().submit(model, inputs, predict)

    def predict(self, model: ServedModel, inputs: np.ndarray) -> Prediction:
        self.ran.append("predict")
        if self.fail:
            raise RuntimeError("the model broke")
        return CountedPredict().predict(model, inputs)

    def log(
        self,
        request: Request,
        model: ServedModel,
        inputs: np.ndarray,
        prediction: Prediction | None,
        started: float,
    ) -> None:
        self.ran.append("log")
        if self.logged is not None:
            self.logged.append((request.id, prediction))


def service_of(served: ServedModel, steps: Steps) -> PredictionService:
    return PredictionService(
        ModelSlot(served),
        authenticate=steps,
        validate=steps,
        enrich=steps,
        route=steps,
        batch=steps,
        predict=steps,
        log=steps,
    )


def v1_call(rows: pd.DataFrame, request_id: str = "s1") -> Call:
    body = json.dumps({"instances": rows.to_dict("records")}).encode()
    return Call({"name": "churn"}, {}, body, request_id)


@pytest.mark.parametrize(
    ("sticky", "order"),
    [
        # The route needs the champion's inputs to read the key: they come first.
        ("input:tenure_months", ["validate", "enrich", "route"]),
        # Otherwise the inputs are read for the version the route picked.
        (None, ["route", "validate", "enrich"]),
    ],
)
def test_the_service_runs_each_step_once_in_order(
    served: ServedModel, rows: pd.DataFrame, sticky: str | None, order: list[str]
) -> None:
    steps = Steps([], sticky=StickyKey.parse(sticky) if sticky else None)
    reply = asyncio.run(service_of(served, steps).serve(v1_call(rows), KServeV1()))
    assert json.loads(reply.body)["predictions"] == [int(v) for v in served.model.predict(rows)]
    assert (reply.version, reply.role) == ("1", "champion")
    assert steps.ran == ["authenticate", *order, "batch", "predict", "log"]


def test_a_failed_prediction_is_logged_then_raised(served: ServedModel, rows: pd.DataFrame) -> None:
    steps = Steps([], fail=True, logged=[])
    with pytest.raises(RuntimeError, match="the model broke"):
        asyncio.run(service_of(served, steps).serve(v1_call(rows, "broken-1"), KServeV1()))
    assert steps.logged == [("broken-1", None)]


def test_a_request_that_fails_validation_reaches_no_model(
    served: ServedModel, rows: pd.DataFrame
) -> None:
    steps = Steps([])
    bad = Call({"name": "churn"}, {}, b'{"instances": [{"tenure_months": 1}]}', "bad-1")
    with pytest.raises(RequestError, match="monthly_charges"):
        asyncio.run(service_of(served, steps).serve(bad, KServeV1()))
    assert steps.ran == ["authenticate", "route", "validate"]


def test_another_model_name_is_a_404_before_any_step_after_authenticate(
    served: ServedModel,
) -> None:
    steps = Steps([])
    other = Call({"name": "other"}, {}, b"{}", "n1")
    with pytest.raises(NotFoundError, match="'other' is not served here"):
        asyncio.run(service_of(served, steps).serve(other, KServeV1()))
    assert steps.ran == ["authenticate"]
