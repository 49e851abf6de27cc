"""The prediction protocols, as the two ends of the pipeline: decode a call, encode a reply.

Each protocol is one class with the paths it answers (``POST``, ``{param}`` placeholders
as in Starlette), a ``name`` for the metrics, and three steps: ``decode`` a call into a
:class:`~shipyard.serving.request.Request`; ``read`` its body against a model's input
spec (the validate stage calls it, once per spec the request meets); ``encode`` the
prediction. The wire formats themselves are the pure functions of
:mod:`shipyard.serving.protocols`. A new protocol is one class here, added to
:data:`PROTOCOLS`; the pipeline between decode and encode is the same for all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import RequestError
from shipyard.serving.protocols import (
    V2Request,
    decode_invocations,
    decode_v1,
    decode_v2,
    encode_invocations,
    encode_v1,
    encode_v2,
    select_outputs,
)
from shipyard.serving.request import JSON, Call, Reply, Request, WireProtocol

if TYPE_CHECKING:
    import numpy as np

    from shipyard.models.served import Prediction, ServedModel
    from shipyard.models.signature import InputSpec

__all__ = [
    "PROTOCOLS",
    "KServeV1",
    "MlflowInvocations",
    "OpenInferenceV2",
    "WireProtocol",
    "check_content_type",
]


def check_content_type(request: Request, accepted: tuple[str, ...]) -> None:
    """Refuse a body whose Content-Type the route cannot read (415 naming the header).

    No Content-Type means JSON (tritonclient sends none); parameters such as
    ``charset`` are ignored, and any ``application/…+json`` type is JSON. So is
    ``application/x-www-form-urlencoded``: ``curl -d`` and Python's urllib send it by
    default, and a body that is not JSON still gets a 400 saying so.
    """
    given = request.headers.get("content-type")
    if not given:
        return
    media = given.split(";", 1)[0].strip().lower()
    if (
        media in accepted
        or media == _FORM
        or (media.startswith("application/") and media.endswith("+json"))
    ):
        return
    shown = given if len(given) <= 60 else given[:57] + "..."
    raise RequestError(
        f"Content-Type {shown!r} is not accepted on this route: send {' or '.join(accepted)} "
        "(or no Content-Type, which means JSON)",
        status=415,
    )


_FORM = "application/x-www-form-urlencoded"
_V1_TYPES = (JSON,)
_V2_TYPES = (JSON, "application/octet-stream")  # octet-stream: the binary tensor extension


class KServeV1:
    """KServe V1 ``:predict``: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out."""

    name: str = "kserve_v1"
    paths: tuple[str, ...] = ("/v1/models/{name}:predict",)

    def decode(self, call: Call) -> Request:
        """The model named in the path; the body is read later (JSON only: else a 415)."""
        request = Request(call.request_id, self, call.headers, call.body, call.params["name"])
        check_content_type(request, _V1_TYPES)
        return request

    def read(self, request: Request, spec: InputSpec) -> np.ndarray:
        """The instances as a matrix."""
        return decode_v1(request.body, spec)

    def encode(self, request: Request, model: ServedModel, prediction: Prediction) -> Reply:
        """``{"predictions": [...]}``."""
        return Reply(encode_v1(prediction.labels), model.version, request.role)


class OpenInferenceV2:
    """Open Inference (V2) ``infer``, JSON or binary tensors, on the model or a pinned version."""

    name: str = "open_inference_v2"
    paths: tuple[str, ...] = (
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    )

    def decode(self, call: Call) -> Request:
        """The model and the pinned version (if any) named in the path; JSON or binary."""
        params = call.params
        request = Request(
            call.request_id, self, call.headers, call.body, params["name"], params.get("version")
        )
        check_content_type(request, _V2_TYPES)
        return request

    def read(self, request: Request, spec: InputSpec) -> np.ndarray:
        """The input tensors as a matrix; the id and outputs asked for are kept for the reply."""
        decoded = decode_v2(request.body, request.headers, spec)
        request.notes = decoded
        return decoded.matrix

    def encode(self, request: Request, model: ServedModel, prediction: Prediction) -> Reply:
        """The outputs asked for (all by default), as JSON or binary tensors."""
        notes = request.notes
        decoded = notes if isinstance(notes, V2Request) else None
        outputs: dict[str, Any] = {"predict": prediction.labels}
        if prediction.probabilities is not None:
            outputs["predict_proba"] = prediction.probabilities
        if decoded is not None:
            outputs = select_outputs(outputs, decoded.requested_outputs)
        payload, headers = encode_v2(
            model.name,
            model.version,
            (decoded.id if decoded is not None else None) or request.id,
            outputs,
            _binary_outputs(decoded),
        )
        content_type = headers.pop("Content-Type", JSON)
        return Reply(payload, model.version, request.role, content_type, headers)


class MlflowInvocations:
    """MLflow's scoring server ``/invocations``: JSON or CSV in, ``{"predictions": …}`` out."""

    name: str = "mlflow"
    paths: tuple[str, ...] = ("/invocations",)

    def decode(self, call: Call) -> Request:
        """No model in the path: the served one answers."""
        return Request(call.request_id, self, call.headers, call.body)

    def read(self, request: Request, spec: InputSpec) -> np.ndarray:
        """The body, by its content type, as a matrix."""
        return decode_invocations(request.body, request.headers.get("content-type"), spec)

    def encode(self, request: Request, model: ServedModel, prediction: Prediction) -> Reply:
        """``{"predictions": [...]}``."""
        return Reply(encode_invocations(prediction.labels), model.version, request.role)


def _binary_outputs(decoded: V2Request | None) -> bool | frozenset[str]:
    """Which outputs the answer sends binary: all, none, or the ones named (``binary_data``)."""
    if decoded is None:
        return False
    return decoded.binary_outputs if decoded.binary is None else decoded.binary


PROTOCOLS: tuple[WireProtocol, ...] = (KServeV1(), OpenInferenceV2(), MlflowInvocations())
