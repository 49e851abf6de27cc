"""Reading the dashboard's forms: from this site only, small, URL-encoded (or JSON).

A browser's form from another site is refused by its ``Origin`` (besides the session's
CSRF value, :mod:`shipyard.ui.auth`); a script with a bearer header may send JSON.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from shipyard.errors import Forbidden, RequestError

__all__ = ["MAX_FORM_BYTES", "read_form", "safe_next", "same_site"]

MAX_FORM_BYTES = 64 * 1024


def same_site(request: Request) -> None:
    """Refuse (403) a form a browser sent from another site (its ``Origin`` says so)."""
    origin = request.headers.get("origin")
    if not origin or (origin == "null" and request.headers.get("authorization")):
        return  # not a browser's cross-site form, or a script with its own credential
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden(
            "This form was sent from another site.",
            hint="Open the dashboard itself and submit the form there.",
        )


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded (or JSON) form body, at most 64 KiB, sent from this site."""
    same_site(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise RequestError("The form is too large (64 KiB at most).", 413)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            raise RequestError("The body is not valid JSON.", 400) from None
        if not isinstance(parsed, dict):
            raise RequestError("The body must be a JSON object of form fields.", 400)
        return {str(k): str(v) for k, v in parsed.items() if v is not None}
    if kind not in ("", "application/x-www-form-urlencoded"):
        raise RequestError("Send the form as application/x-www-form-urlencoded.", 415)
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise RequestError("The form is not UTF-8 text.", 400) from None


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
