"""What flows through the prediction pipeline: a call in, a request through it, a reply out.

A :class:`Call` is the HTTP side of a prediction (path parameters, headers, body), as
the fast path read it. A protocol decodes it into a :class:`Request`, which every stage
after it sees, whatever the protocol: who asks, which model, the inputs once validated
and enriched, the role of the version that answers. A :class:`Reply` is the encoded
answer the fast path sends. A :class:`WireProtocol` does the decoding and encoding
(the three built in are in :mod:`shipyard.serving.wire`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from shipyard.models.served import Prediction, ServedModel
    from shipyard.models.signature import InputSpec
    from shipyard.project import Principal

__all__ = ["JSON", "Call", "Reply", "Request", "WireProtocol"]

JSON = "application/json"


@dataclass(slots=True)
class Call:
    """One prediction request as it arrived: path parameters, headers, body, request id."""

    params: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    request_id: str


@dataclass(slots=True)
class Request:
    """One prediction request on its way through the pipeline, whatever its protocol."""

    id: str  # the X-Request-ID echoed on the reply and written to the log
    protocol: WireProtocol
    headers: Mapping[str, str]
    body: bytes
    model: str | None = None  # the model the path names; None: the one served
    version: str | None = None  # a version the path pins; None: the router picks
    principal: Principal | None = None  # who asks, once authenticated
    role: str = "unknown"  # the answering version's role: champion, challenger, shadow
    spec: InputSpec | None = None  # what ``inputs`` were validated against
    inputs: np.ndarray | None = None  # validated and enriched, in ``spec``'s column order
    notes: Any = None  # what the protocol keeps from decoding for its reply


@dataclass(slots=True)
class Reply:
    """An encoded answer: the body, its type, who answered, and extra headers."""

    body: bytes
    version: str
    role: str
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


class WireProtocol(Protocol):
    """One prediction protocol: its routes, and how it decodes, reads and encodes."""

    name: str  # the ``protocol`` label of the request metrics
    paths: tuple[str, ...]  # the POST routes it answers

    def decode(self, call: Call) -> Request:
        """The request a call makes: which model (and version) it names, and its body."""
        ...

    def read(self, request: Request, spec: InputSpec) -> np.ndarray:
        """The request's inputs as a matrix in ``spec``'s column order (a 4xx if unfit)."""
        ...

    def encode(self, request: Request, model: ServedModel, prediction: Prediction) -> Reply:
        """The reply carrying ``model``'s prediction."""
        ...
