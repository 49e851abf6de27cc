"""Every exception a Shipyard user can see.

Each error carries a stable ``code``, the CLI ``exit_code`` and the ``http_status`` it
maps to, and a ``hint`` that says what to do next. The CLI renders them without a
traceback; the HTTP API returns them as ``{"error": message, "code": code}``.

    ShipyardError
    ├── ConfigError            shipyard.yaml missing, unparsable or invalid
    ├── EntrypointError        train entrypoint "module:function" cannot be loaded
    ├── DataError              data missing, unreadable or unusable
    │   └── ValidationFailed   data does not satisfy its schema
    ├── DatabaseError          control-plane / tracking database unreachable
    ├── StorageError           a bucket or folder cannot be reached, read or written
    ├── FeatureStoreUnavailable the online feature store (SQLite, Redis) cannot be read
    ├── NotFoundError          unknown model, version, alias, run or snapshot
    ├── TrainingFailed         the user's training function raised
    ├── NotReproducible        a retrain did not reproduce the recorded version
    ├── EvaluationError        a version cannot be evaluated (no golden set, bad metric …)
    ├── PromotionRefused       a promotion, approval or rollback is not allowed
    ├── SigningError           keys missing, or a signature does not verify
    ├── DemoFailed             `shipyard demo` could not reach a step it needs
    ├── Unauthenticated        no token, or one that is malformed, unknown, expired or revoked
    ├── Forbidden              the token lacks the scope, grant or role an action needs
    ├── AuditFailed            the audit log does not verify: a row was changed or lost
    ├── PortInUse              the server's address is taken: nothing was started
    ├── ProviderError          an LLM provider refused, failed or timed out (its status, 504)
    ├── CapExceeded            a tenant is over its request or cost cap (429, Retry-After)
    └── RequestError           an inference request the client must fix (4xx)
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    code = "shipyard_error"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ConfigError(ShipyardError):
    """Configuration is missing, unparsable or invalid."""

    code = "config_error"
    exit_code = 2
    http_status = 500


class EntrypointError(ShipyardError):
    """A ``module:function`` reference cannot be imported or called."""

    code = "entrypoint_error"
    exit_code = 2
    http_status = 500


class DataError(ShipyardError):
    """Data is missing, unreadable or unusable."""

    code = "data_error"
    exit_code = 4
    http_status = 422


class ValidationFailed(DataError):
    """Data does not satisfy its schema; ``report`` lists every failed check."""

    code = "validation_failed"
    exit_code = 1
    http_status = 422

    def __init__(self, message: str, report: object, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.report = report


class DatabaseError(ShipyardError):
    """The control-plane or tracking database cannot be reached or migrated."""

    code = "database_error"
    exit_code = 5
    http_status = 503


class StorageError(ShipyardError):
    """A bucket or folder holding the project's files cannot be reached, read or written.

    The message names the bucket (or folder) and the hint what to check: the endpoint,
    the credentials in the environment or profile, or the permission that was denied.
    """

    code = "storage_error"
    exit_code = 5
    http_status = 503


class FeatureStoreUnavailable(ShipyardError):
    """The online feature store cannot be read or written (Redis down, file unreadable).

    A request that needs online features gets 503 with the reason; the server retries
    the store on the next request, so it recovers by itself when the store returns.
    """

    code = "feature_store_unavailable"
    exit_code = 5
    http_status = 503


class NotFoundError(ShipyardError):
    """An unknown model, version, alias, run or snapshot was named."""

    code = "not_found"
    exit_code = 3
    http_status = 404


class TrainingFailed(ShipyardError):
    """The user's training function raised; nothing was registered."""

    code = "training_failed"
    exit_code = 1
    http_status = 500


class NotReproducible(ShipyardError):
    """A retrain from the recorded lineage did not reproduce the version."""

    code = "not_reproducible"
    exit_code = 1
    http_status = 409


class EvaluationError(ShipyardError):
    """A version cannot be evaluated: no golden set, unknown metric, bad slice …"""

    code = "evaluation_error"
    exit_code = 2
    http_status = 422


class PromotionRefused(ShipyardError):
    """A promotion, approval or rollback is not allowed; the message says which rule."""

    code = "promotion_refused"
    exit_code = 1
    http_status = 409


class SigningError(ShipyardError):
    """Signing keys are missing or unreadable, or a signature does not verify."""

    code = "signing_error"
    exit_code = 1
    http_status = 422


class DemoFailed(ShipyardError):
    """``shipyard demo`` could not reach a step it needs (the server did not start, say)."""

    code = "demo_failed"
    exit_code = 1
    http_status = 500


class Unauthenticated(ShipyardError):
    """No valid credentials: no token, or a malformed, unknown, expired or revoked one."""

    code = "unauthenticated"
    exit_code = 6
    http_status = 401


class Forbidden(ShipyardError):
    """The principal is known but lacks the scope, grant or role the action needs."""

    code = "forbidden"
    exit_code = 6
    http_status = 403


class AuditFailed(ShipyardError):
    """The audit log does not verify; the message names the first row that fails."""

    code = "audit_failed"
    exit_code = 7
    http_status = 500


class PortInUse(ShipyardError):
    """The server cannot listen: its host and port are taken (or not allowed)."""

    code = "port_in_use"
    exit_code = 8
    http_status = 503


class ProviderError(ShipyardError):
    """An LLM provider answered with an error, or not in time, after retries and fallback.

    ``status`` is the provider's own HTTP status passed on (429, 500, 503 …), 504 for a
    timeout, and 502 for an answer that is not OpenAI-shaped or a stream cut short.
    """

    code = "provider_error"
    exit_code = 5
    http_status = 502

    def __init__(
        self, message: str, status: int = 502, hint: str | None = None, provider: str = ""
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.http_status = status
        self.provider = provider
        self.code = "provider_timeout" if status == 504 else "provider_error"


class CapExceeded(ShipyardError):
    """A tenant is over a request or cost cap: 429, with when to retry.

    ``retry_after`` is whole seconds until the window frees enough room; ``headers`` are
    the rate-limit headers the answer carries (``Retry-After`` included).
    """

    code = "cap_exceeded"
    exit_code = 1
    http_status = 429

    def __init__(
        self,
        message: str,
        retry_after: int,
        headers: dict[str, str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after), **(headers or {})}


_REQUEST_CODES = {
    400: "bad_request",
    404: "not_found",
    413: "payload_too_large",
    415: "unsupported_media",
}


class RequestError(ShipyardError):
    """An inference request the client must fix; ``message`` names the offending field.

    Its ``status`` is 400 (malformed or invalid body), 404 (unknown model or output), 413
    (body too large) or 415 (unsupported content type).
    """

    code = "bad_request"
    exit_code = 2
    http_status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        # Per instance, so one handler can read ``http_status`` for every ShipyardError.
        self.http_status = status
        self.code = _REQUEST_CODES.get(status, "bad_request")
