"""What flows through the prediction pipeline: a call in, a request through it, a reply out.

A :class:`Call` is the HTTP side of a prediction (path parameters, headers, body), as
the fast path read it. A protocol decodes it into a :class:`Request`, which every stage
after it sees, whatever the protocol: who asks, which model, the inputs once validated
and enriched, the role of the version that answers. A :class:`Reply` is the encoded
answer the fast path sends. A :class:`WireProtocol` does the decoding and encoding
(the three built in are in :mod:`shipyard.serving.wire`).

Request ids: the server makes a new one (:func:`new_request_id`, random and
time-ordered, never a counter that repeats across workers or restarts) unless the
client sends ``X-Request-ID``, which must be at most 128 characters of
``[A-Za-z0-9._:-]`` (:func:`request_id_from`, else a 400 naming the header). The logs
keep each id *in its sender's namespace* (:func:`namespaced`): ``<principal>/<id>`` for
an authenticated principal, the bare id for anonymous callers. So the same
``X-Request-ID`` from two clients names two predictions, and a label from one client
never joins another's prediction.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from shipyard.errors import RequestError

if TYPE_CHECKING:
    import numpy as np

    from shipyard.models.served import Prediction, ServedModel
    from shipyard.models.signature import InputSpec
    from shipyard.project import Principal

__all__ = [
    "ANONYMOUS",
    "JSON",
    "MAX_REQUEST_ID_LENGTH",
    "REQUEST_ID_HEADER",
    "REQUEST_ID_PATTERN",
    "Call",
    "Reply",
    "Request",
    "ServedFeatures",
    "WireProtocol",
    "namespace_of",
    "namespaced",
    "new_request_id",
    "qualified",
    "request_id_from",
]

JSON = "application/json"
REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
ANONYMOUS = "anonymous"  # who sent a request when the server does not authenticate

# What a client may send; empty counts as none sent (the server makes one).
REQUEST_ID_PATTERN = rf"^[A-Za-z0-9._:-]{{0,{MAX_REQUEST_ID_LENGTH}}}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # base32 whose order is the bits' order
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # every 10 bits as 2 characters
_RANDOM_BYTES = 10  # 80 random bits per id
_POOL_BYTES = _RANDOM_BYTES * 400  # one os.urandom call per 400 ids


class _IdSource:
    """Random bytes read from the OS in bulk, and the current millisecond's id prefix.

    An id is 130 bits, 26 characters: 48-bit milliseconds, 80 random bits, 2 zero bits
    (base32 of the 16 bytes, as ULIDs are). Its first 9 characters (the milliseconds'
    top 45 bits) are kept as text while the millisecond lasts. A fork starts afresh:
    the parent's unused bytes would give the child the parent's next ids.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reseed()

    def reseed(self) -> None:
        self.pool = b""
        self.taken = 0
        self.head = (-1, "")  # (milliseconds, the id's first 9 characters): one tuple, for threads

    def random_bits(self) -> int:
        with self.lock:
            start = self.taken
            if start + _RANDOM_BYTES > len(self.pool):
                self.pool, start = os.urandom(_POOL_BYTES), 0
            self.taken = start + _RANDOM_BYTES
            return int.from_bytes(self.pool[start : start + _RANDOM_BYTES], "big")


_IDS = _IdSource()
os.register_at_fork(after_in_child=_IDS.reseed)


def new_request_id() -> str:
    """A new request id: 26 characters, ULID-like (48-bit milliseconds, 80 random bits).

    Unique across workers and restarts (no counter), and sorted by time as text
    (Crockford base32 keeps the bits' order). The random bits come from ``os.urandom``,
    read 400 ids at a time.
    """
    ids = _IDS
    ms = time.time_ns() // 1_000_000
    last, head = ids.head
    if ms != last:
        top = ms >> 3
        head = _CROCKFORD[top >> 40] + "".join(_PAIRS[(top >> s) & 0x3FF] for s in (30, 20, 10, 0))
        ids.head = (ms, head)
    tail = ((ms & 7) << 82) | (ids.random_bits() << 2)  # 85 bits: 17 characters
    p = _PAIRS
    return (
        f"{head}{_CROCKFORD[tail >> 80]}{p[(tail >> 70) & 0x3FF]}{p[(tail >> 60) & 0x3FF]}"
        f"{p[(tail >> 50) & 0x3FF]}{p[(tail >> 40) & 0x3FF]}{p[(tail >> 30) & 0x3FF]}"
        f"{p[(tail >> 20) & 0x3FF]}{p[(tail >> 10) & 0x3FF]}{p[tail & 0x3FF]}"
    )


def request_id_from(given: str | None) -> str:
    """The client's ``X-Request-ID`` when it is well formed; a new id when none was sent.

    A 400 naming the header when it is longer than 128 characters or holds anything but
    letters, digits and ``. _ : -``.
    """
    if not given:
        return new_request_id()
    if _REQUEST_ID.fullmatch(given) is None:
        if len(given) > MAX_REQUEST_ID_LENGTH:
            found = f"it is {len(given)} characters long"
        else:
            found = f"it holds {next(c for c in given if not _REQUEST_ID.fullmatch(c))!r}"
        raise RequestError(
            f"The {REQUEST_ID_HEADER} header must be 1 to {MAX_REQUEST_ID_LENGTH} characters "
            f"of letters, digits and . _ : - but {found}; send a plain id like order-1234, "
            "or none and use the one the server returns."
        )
    return given


def namespace_of(principal: Principal | None) -> str | None:
    """The namespace of a sender's request ids: its name, or None for anonymous callers."""
    return None if principal is None else principal.name


def namespaced(request_id: str, principal: Principal | None) -> str:
    """``request_id`` as the logs keep it: ``<principal>/<id>``, or bare when anonymous."""
    return qualified(request_id, namespace_of(principal))


def qualified(request_id: str, namespace: str | None) -> str:
    """``<namespace>/<request_id>`` (the name escaped so it holds no "/"), or the bare id."""
    if namespace is None:
        return request_id
    return f"{quote(namespace, safe='@._-:')}/{request_id}"


@dataclass(slots=True)
class Call:
    """One prediction request as it arrived: path parameters, headers, body, request id."""

    params: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    request_id: str


@dataclass(frozen=True, slots=True)
class ServedFeatures:
    """What the log keeps beside a request's inputs for ``spec``: entity keys, event times.

    Filled by the enrich step of a model served from entity keys
    (:mod:`shipyard.serving.features`); the live log adds ``columns`` after the model's.
    """

    spec: InputSpec
    columns: tuple[str, ...]
    matrix: np.ndarray

    def beside(
        self, columns: tuple[str, ...], inputs: np.ndarray
    ) -> tuple[tuple[str, ...], np.ndarray]:
        """``inputs`` (in ``columns``) with these columns after them, as the log keeps them
        (object when the two kinds differ)."""
        import numpy as np

        if inputs.dtype == self.matrix.dtype:
            return (*columns, *self.columns), np.hstack((inputs, self.matrix))
        return (*columns, *self.columns), np.hstack(
            (inputs.astype(object), self.matrix.astype(object))
        )


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
    features: ServedFeatures | None = None  # what enrich looked up, logged beside the inputs

    @property
    def log_id(self) -> str:
        """The id the logs keep: :attr:`id` in the principal's namespace (see the module)."""
        return namespaced(self.id, self.principal)


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
