"""Who may reach which route of the server: bearer tokens, verified once, remembered briefly.

Every route that is not health or readiness asks :class:`ServerAccess` first; the
prediction routes ask it through the pipeline's authenticate stage
(:class:`~shipyard.serving.stages.BearerAuthentication`), the others through their
route guard (:mod:`shipyard.serving.routes`). The rules, from ``serving.auth`` and
``serving.metrics_auth``::

    route                                   auth off        auth required
    health, readiness, /version, /v2        open            open
    predictions (V1, V2, /invocations)      open            serve:invoke on the model
    model metadata, /v1/models, openapi     open            models:read on the model
    /metrics                                open, or models:read with metrics_auth: required
    POST /v1/feedback                       labels:write on the model, always

A token is checked against the control-plane database once (:class:`BearerTokens`);
the answer, a principal or a refusal, is kept for ``ttl`` seconds under the SHA-256 of
the ``Authorization`` header, never the token itself, with the (scope, model) checks it
passed, so the hot path costs a hash and two lookups (about 2 µs). A revoked or expired
token is refused within ``ttl`` (the server uses ``2 × serving.poll_seconds``, one
second by default).

A token never leaves this module in a message: refusals say *why* (no token, not a
bearer token, malformed, unknown, expired, revoked), never *what* was sent.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.access import Principal, Scope
from shipyard.errors import DatabaseError, ShipyardError, Unauthenticated

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.store import Store

__all__ = [
    "PRINCIPAL_KEY",
    "BearerTokens",
    "ServerAccess",
    "auth_required",
]

logger = logging.getLogger(__name__)

# Where a Starlette route finds the principal its guard authenticated: request.scope[KEY].
PRINCIPAL_KEY = "shipyard.principal"
_HINT = "Send the header Authorization: Bearer <token>; `shipyard tokens create` makes one."


def auth_required(config: Config) -> bool:
    """Whether predictions need a token: ``serving.auth``, where auto means a shared database."""
    mode = config.serving.auth
    return mode == "required" or (mode == "auto" and config.shared_database)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What checking one token said, and until when the server may believe it."""

    until: float  # a ``clock()`` reading
    principal: Principal | None
    refusal: tuple[str, str | None] = ("", None)  # the Unauthenticated's message and hint
    allowed: set[tuple[Scope, str]] = field(default_factory=set)  # checks it passed


_MAX_ALLOWED = 64  # (scope, model) checks remembered per answer


class BearerTokens:
    """Turns an ``Authorization`` header into a principal, or an :class:`Unauthenticated`.

    ``verify`` checks one token (for a server, against the project's token table) and
    raises :class:`Unauthenticated` saying why it refuses. Each answer, principal or
    refusal, is remembered for ``ttl`` seconds keyed by the header's SHA-256. Refusals are
    remembered too: an unknown, expired, revoked or malformed token never becomes valid,
    so a client retrying one does not reach the database each time. At most ``capacity``
    answers are kept.
    """

    def __init__(
        self,
        verify: Callable[[str], Principal],
        *,
        ttl: float = 1.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must be at least 0 seconds, not {ttl}")
        self.verify = verify
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._answers: dict[bytes, _Answer] = {}

    @classmethod
    def of_store(cls, store: Callable[[], Store], *, ttl: float) -> BearerTokens:
        """Tokens checked against the token table of the store ``store()`` returns."""
        from shipyard.governance.tokens import authenticate

        return cls(lambda token: authenticate(store(), token), ttl=ttl)

    def principal(self, authorization: str | None, scope: Scope) -> Principal:
        """Who the header's bearer token names; 401 naming what is wrong with it.

        ``scope`` is what the route needs: the refusal of a request without a token says so.
        """
        answer = self._answer(authorization, scope)
        if answer.principal is None:
            message, hint = answer.refusal
            raise Unauthenticated(message, hint=hint)
        return answer.principal

    def authorize(self, authorization: str | None, scope: Scope, model: str) -> Principal:
        """:meth:`principal`, if it holds ``scope`` on ``model`` (else 403 naming what lacks)."""
        answer = self._answer(authorization, scope)
        principal = answer.principal
        if principal is None:
            message, hint = answer.refusal
            raise Unauthenticated(message, hint=hint)
        if (scope, model) not in answer.allowed:
            principal.require(scope, model)
            if len(answer.allowed) < _MAX_ALLOWED:
                answer.allowed.add((scope, model))
        return principal

    def _answer(self, authorization: str | None, scope: Scope) -> _Answer:
        if not authorization:
            raise Unauthenticated(f"No token: this route needs a token with {scope.value}.", _HINT)
        key = hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).digest()
        now = self.clock()
        answer = self._answers.get(key)
        if answer is None or answer.until <= now:
            answer = self._check(authorization, now)
            if len(self._answers) >= self.capacity:
                self._forget_old(now)
            self._answers[key] = answer
        return answer

    def _check(self, authorization: str, now: float) -> _Answer:
        until = now + self.ttl
        try:
            token = _bearer(authorization)
        except Unauthenticated as refused:
            return _Answer(until, None, (refused.message, refused.hint))
        try:
            return _Answer(until, self.verify(token))
        except Unauthenticated as refused:
            return _Answer(until, None, (refused.message, refused.hint))
        except ShipyardError:
            raise  # e.g. DatabaseError (503): not an answer about the token, not remembered
        except Exception as exc:
            # The message may quote what the database was sent: never the token.
            text = str(exc).replace(token, "<token>")
            logger.error("checking a bearer token failed: %s: %s", type(exc).__name__, text)
            raise DatabaseError(
                "The token could not be checked: the control-plane database did not answer.",
                hint="Try again; the server log has the details.",
            ) from None

    def _forget_old(self, now: float) -> None:
        answers = self._answers
        for key in [key for key, answer in answers.items() if answer.until <= now]:
            del answers[key]
        if len(answers) >= self.capacity:  # a flood of distinct tokens: start afresh
            answers.clear()


def _bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750), or a 401."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated("The Authorization header does not hold a bearer token.", _HINT)
    token = token.strip()
    if not token or any(char.isspace() for char in token):
        raise Unauthenticated("The bearer token is malformed: it is empty or has spaces.", _HINT)
    return token


@dataclass(frozen=True)
class ServerAccess:
    """Which routes need a token, and the tokens the server accepts.

    ``predictions``: serve:invoke on the prediction routes; ``metadata``: models:read on
    the model metadata routes; ``metrics``: models:read on ``/metrics``; ``feedback``:
    labels:write on ``POST /v1/feedback``. Each needs ``tokens``. :meth:`of_config` is what
    ``shipyard serve`` uses (feedback always guarded); :meth:`open` trusts every caller,
    for an app mounted behind authentication of its own, and for tests.
    """

    tokens: BearerTokens | None
    predictions: bool = False
    metadata: bool = False
    metrics: bool = False
    feedback: bool = True

    def __post_init__(self) -> None:
        guarded = self.predictions or self.metadata or self.metrics or self.feedback
        if guarded and self.tokens is None:
            raise ValueError("a server that guards a route needs the tokens it accepts")

    @classmethod
    def open(cls) -> ServerAccess:
        """Every route open to anyone: nothing is checked, nobody is identified."""
        return cls(None, feedback=False)

    @classmethod
    def of_config(cls, config: Config, tokens: BearerTokens) -> ServerAccess:
        """The rules ``serving.auth`` and ``serving.metrics_auth`` set; feedback always."""
        required = auth_required(config)
        return cls(
            tokens,
            predictions=required,
            metadata=required,
            metrics=config.serving.metrics_auth == "required",
            feedback=True,
        )

    def require(self, authorization: str | None, scope: Scope, model: str) -> Principal:
        """The header's principal if it holds ``scope`` on ``model``; else 401 or 403."""
        if self.tokens is None:
            raise Unauthenticated(
                f"This server checks no tokens, so nobody can show {scope.value}.",
                hint="Serve with `shipyard serve`, which checks the project's tokens.",
            )
        return self.tokens.authorize(authorization, scope, model)
