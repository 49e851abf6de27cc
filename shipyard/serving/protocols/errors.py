"""The one error a protocol decoder raises: a request the client must fix.

``RequestError`` is a :class:`~shipyard.errors.ShipyardError`, so the server's single
exception-handler table renders it; its ``status`` is 400 (malformed or invalid body),
404 (unknown model or output), 413 (body too large) or 415 (unsupported content type).
"""

from __future__ import annotations

from shipyard.errors import RequestError

__all__ = ["RequestError", "check_size"]


def check_size(length: int | None, limit: int) -> None:
    """Refuse a body of ``length`` bytes (``None`` = unknown, allowed) above ``limit``."""
    if length is not None and length > limit:
        raise RequestError(
            f"request body is {length} bytes, over the limit of {limit} bytes; "
            "send fewer rows per request",
            status=413,
        )
