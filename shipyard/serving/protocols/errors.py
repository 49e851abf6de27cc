"""The one error a protocol decoder raises: a request the client must fix.

``RequestError`` is a :class:`~shipyard.errors.ShipyardError`, so the server's single
exception-handler table renders it; its ``status`` is 400 (malformed or invalid body),
404 (unknown model or output), 413 (body too large) or 415 (unsupported content type).
"""

from __future__ import annotations

from shipyard.errors import ShipyardError

_CODES = {400: "bad_request", 404: "not_found", 413: "payload_too_large", 415: "unsupported_media"}


class RequestError(ShipyardError):
    """An inference request the client must fix; ``message`` names the offending field."""

    code = "bad_request"
    exit_code = 2
    http_status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        # Per instance, so one handler can read ``http_status`` for every ShipyardError.
        self.http_status = status
        self.code = _CODES.get(status, "bad_request")


def check_size(length: int | None, limit: int) -> None:
    """Refuse a body of ``length`` bytes (``None`` = unknown, allowed) above ``limit``."""
    if length is not None and length > limit:
        raise RequestError(
            f"request body is {length} bytes, over the limit of {limit} bytes; "
            "send fewer rows per request",
            status=413,
        )
