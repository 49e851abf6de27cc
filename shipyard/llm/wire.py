"""The OpenAI wire format of the gateway: chat and embeddings bodies in, errors out.

:func:`parse_chat` and :func:`parse_embeddings` read a request body once (orjson, plain
dicts, no per-request models) and check what a provider would refuse anyway, so the
client hears it at once, in OpenAI's words and shape::

    {"error": {"message": "...", "type": "invalid_request_error",
               "param": "messages[1].role", "code": "invalid_value"}}

A missing or empty ``messages``, a role that is not one of OpenAI's, content of the
wrong type, a parameter out of range or unknown: 400 naming the ``param``. A ``model``
that is not the served one (or ``name/version`` of a version it does not serve): 404
(the gateway checks that, with :func:`model_pin`). :func:`error_of` turns any error
the gateway meets (a provider's, a cap's, a token's) into that shape and its status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shipyard.errors import (
    CapExceeded,
    Forbidden,
    ProviderError,
    RequestError,
    ShipyardError,
    Unauthenticated,
)
from shipyard.jsonable import dump_json

__all__ = [
    "CHAT_PARAMS",
    "ROLES",
    "ChatRequest",
    "EmbeddingRequest",
    "OpenAIError",
    "error_of",
    "model_pin",
    "parse_chat",
    "parse_embeddings",
]

ROLES = frozenset(("system", "developer", "user", "assistant", "tool", "function"))

# OpenAI chat parameters passed on to the provider, with how each is checked:
# (kind, low, high); kind "number", "int", "bool", "stop", "object", "list", "string", "any".
CHAT_PARAMS: dict[str, tuple[str, float | None, float | None]] = {
    "temperature": ("number", 0.0, 2.0),
    "top_p": ("number", 0.0, 1.0),
    "max_tokens": ("int", 1, None),
    "max_completion_tokens": ("int", 1, None),
    "n": ("int", 1, 1),  # one choice: what the cache, traces and costs count
    "stop": ("stop", None, None),
    "presence_penalty": ("number", -2.0, 2.0),
    "frequency_penalty": ("number", -2.0, 2.0),
    "seed": ("int", None, None),
    "logit_bias": ("object", None, None),
    "logprobs": ("bool", None, None),
    "top_logprobs": ("int", 0, 20),
    "response_format": ("object", None, None),
    "tools": ("list", None, None),
    "tool_choice": ("any", None, None),
    "parallel_tool_calls": ("bool", None, None),
    "functions": ("list", None, None),
    "function_call": ("any", None, None),
    "metadata": ("object", None, None),
    "store": ("bool", None, None),
    "service_tier": ("string", None, None),
    "reasoning_effort": ("string", None, None),
    "modalities": ("list", None, None),
    "prediction": ("object", None, None),
    "verbosity": ("string", None, None),
}
# Read by the gateway itself, never passed on as such.
_OWN = frozenset(("model", "messages", "stream", "stream_options", "user", "variables"))
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIError(RequestError):
    """A request the client must fix, in OpenAI's error shape: ``status``, ``param``, ``code``."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.param = param
        self.openai_code = code

    def body(self) -> bytes:
        """``{"error": {"message", "type", "param", "code"}}`` as JSON bytes."""
        return _error_body(self.status, self.message, self.param, self.openai_code)


def _error_body(status: int, message: str, param: str | None, code: str | None) -> bytes:
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return dump_json({"error": {"message": message, "type": kind, "param": param, "code": code}})


def error_of(error: Exception, request_id: str = "") -> tuple[int, bytes, dict[str, str]]:
    """Any error as the gateway answers it: status, OpenAI-shaped body, extra headers.

    A provider's error keeps its status (504 for a timeout); a cap's is a 429 with its
    ``Retry-After`` and rate-limit headers; a token's a 401/403 with a Bearer challenge.
    Anything that is not a Shipyard error is a 500 that names only the request id.
    """
    if isinstance(error, OpenAIError):
        return error.status, error.body(), {}
    if isinstance(error, ShipyardError):
        status = error.http_status
        text = f"{error.message} {error.hint}" if error.hint else error.message
        headers: dict[str, str] = {}
        code: str | None = error.code
        if isinstance(error, CapExceeded):
            headers = dict(error.headers)
            code = "rate_limit_exceeded"
        elif isinstance(error, ProviderError):
            code = "provider_timeout" if status == 504 else "provider_error"
        elif isinstance(error, Unauthenticated):
            headers = {"WWW-Authenticate": 'Bearer realm="shipyard"'}
            code = "invalid_api_key"
        elif isinstance(error, Forbidden):
            headers = {"WWW-Authenticate": 'Bearer realm="shipyard", error="insufficient_scope"'}
            code = "insufficient_scope"
        elif status == 404:
            code = "model_not_found"
        return status, _error_body(status, text, None, code), headers
    message = f"internal error; the server log has the details (request {request_id})"
    return 500, _error_body(500, message, None, "internal_error"), {}


@dataclass(slots=True)
class ChatRequest:
    """One chat completion request, checked: what the gateway routes, renders and sends."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    variables: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # OpenAI parameters to pass on
    user: str | None = None

    @property
    def last_user_text(self) -> str:
        """The text of the last user message: what the cache looks up."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""


@dataclass(slots=True)
class EmbeddingRequest:
    """One embeddings request: the texts (or token arrays) and how to encode the vectors."""

    model: str
    input: str | list[Any]
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None

    def provider_body(self) -> dict[str, Any]:
        """What to send the provider: always floats (the gateway encodes base64 itself)."""
        body: dict[str, Any] = {"model": self.model, "input": self.input}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        if self.user is not None:
            body["user"] = self.user
        return body


def _object(body: bytes) -> dict[str, Any]:
    if not body:
        raise OpenAIError(
            400, "The request body is empty: send a JSON object.", None, "invalid_json"
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OpenAIError(
            400, f"The request body is not valid JSON: {exc}.", None, "invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise OpenAIError(
            400,
            f"The request body must be a JSON object, not {_kind(data)}.",
            None,
            "invalid_type",
        )
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _model(data: Mapping[str, Any]) -> str:
    model = data.get("model")
    if model is None:
        raise OpenAIError(400, "You must provide a model parameter.", "model", "missing_required")
    if not isinstance(model, str) or not model:
        raise OpenAIError(
            400, f"'model' must be a non-empty string, not {_kind(model)}.", "model", "invalid_type"
        )
    return model


def parse_chat(body: bytes) -> ChatRequest:
    """The checked chat request of ``body``; an :class:`OpenAIError` (400) naming the field."""
    data = _object(body)
    model = _model(data)
    messages = _messages(data.get("messages"))
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise OpenAIError(
            400, f"'stream' must be a boolean, not {_kind(stream)}.", "stream", "invalid_type"
        )
    include_usage = False
    options = data.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise OpenAIError(
                400, "'stream_options' must be an object.", "stream_options", "invalid_type"
            )
        if not stream:
            raise OpenAIError(
                400,
                "'stream_options' is only allowed when 'stream' is true.",
                "stream_options",
                "invalid_value",
            )
        usage = options.get("include_usage", False)
        if not isinstance(usage, bool):
            raise OpenAIError(
                400,
                "'stream_options.include_usage' must be a boolean.",
                "stream_options.include_usage",
                "invalid_type",
            )
        include_usage = usage
    variables = data.get("variables")
    if variables is None:
        variables = {}
    elif not isinstance(variables, dict):
        raise OpenAIError(
            400,
            f"'variables' must be an object of template variables, not {_kind(variables)}.",
            "variables",
            "invalid_type",
        )
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise OpenAIError(400, "'user' must be a string.", "user", "invalid_type")
    params: dict[str, Any] = {}
    for key, value in data.items():
        if key in _OWN:
            continue
        rule = CHAT_PARAMS.get(key)
        if rule is None:
            raise OpenAIError(
                400, f"Unrecognized request argument supplied: {key}", key, "unknown_parameter"
            )
        if value is None:
            continue
        _check_param(key, value, rule)
        params[key] = value
    return ChatRequest(model, messages, stream, include_usage, variables, params, user)


def _messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise OpenAIError(
            400, "Missing required parameter: 'messages'.", "messages", "missing_required"
        )
    if not isinstance(messages, list):
        raise OpenAIError(
            400,
            f"'messages' must be an array of messages, not {_kind(messages)}.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise OpenAIError(
            400,
            "'messages' must hold at least one message.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise OpenAIError(
                400, f"{where} must be an object, not {_kind(message)}.", where, "invalid_type"
            )
        role = message.get("role")
        if role not in ROLES:
            shown = "missing" if role is None else repr(role)
            raise OpenAIError(
                400,
                f"{where}.role is {shown}; it must be one of "
                "'system', 'developer', 'user', 'assistant', 'tool'.",
                f"{where}.role",
                "invalid_value",
            )
        content = message.get("content")
        if content is None:
            if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
                continue
            raise OpenAIError(
                400,
                f"{where}.content is missing: a {role} message needs a string or an array "
                "of content parts.",
                f"{where}.content",
                "missing_required",
            )
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise OpenAIError(
                400,
                f"{where}.content must be a string or an array of content parts, "
                f"not {_kind(content)}.",
                f"{where}.content",
                "invalid_type",
            )
        for number, part in enumerate(content):
            spot = f"{where}.content[{number}]"
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise OpenAIError(
                    400,
                    f"{spot} must be a content part object with a 'type'.",
                    spot,
                    "invalid_type",
                )
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise OpenAIError(
                    400, f"{spot}.text must be a string.", f"{spot}.text", "invalid_type"
                )
    return messages


def _check_param(key: str, value: Any, rule: tuple[str, float | None, float | None]) -> None:
    kind, low, high = rule
    wrong = None
    if kind in ("number", "int"):
        number_like = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_like or (kind == "int" and not isinstance(value, int)):
            wrong = f"must be {'an integer' if kind == 'int' else 'a number'}, not {_kind(value)}"
        elif not math.isfinite(value):
            wrong = "must be a finite number"
        elif key == "n" and value != 1:
            raise OpenAIError(
                400,
                f"'n' is {value!r}; the gateway answers one choice per request (n = 1): "
                "send n requests instead.",
                key,
                "invalid_value",
            )
        elif (low is not None and value < low) or (high is not None and value > high):
            bounds = (
                f"between {low:g} and {high:g}"
                if low is not None and high is not None
                else (f"at least {low:g}" if low is not None else f"at most {high:g}")
            )
            raise OpenAIError(
                400, f"'{key}' is {value!r}; it must be {bounds}.", key, "invalid_value"
            )
    elif kind == "bool" and not isinstance(value, bool):
        wrong = f"must be a boolean, not {_kind(value)}"
    elif kind == "string" and not isinstance(value, str):
        wrong = f"must be a string, not {_kind(value)}"
    elif kind == "object" and not isinstance(value, dict):
        wrong = f"must be an object, not {_kind(value)}"
    elif kind == "list" and not isinstance(value, list):
        wrong = f"must be an array, not {_kind(value)}"
    elif kind == "stop" and not (
        isinstance(value, str)
        or (
            isinstance(value, list)
            and len(value) <= 4
            and all(isinstance(item, str) for item in value)
        )
    ):
        wrong = "must be a string or an array of at most 4 strings"
    if wrong is not None:
        raise OpenAIError(400, f"'{key}' {wrong}.", key, "invalid_type")


def parse_embeddings(body: bytes) -> EmbeddingRequest:
    """The checked embeddings request of ``body``; an :class:`OpenAIError` naming the field."""
    data = _object(body)
    model = _model(data)
    given = data.get("input")
    if given is None:
        raise OpenAIError(400, "Missing required parameter: 'input'.", "input", "missing_required")
    if isinstance(given, str):
        if not given:
            raise OpenAIError(400, "'input' must not be empty.", "input", "invalid_value")
    elif isinstance(given, list):
        if not given:
            raise OpenAIError(400, "'input' must not be an empty array.", "input", "invalid_value")
        fine = all(isinstance(item, str) for item in given) or all(
            isinstance(item, int) and not isinstance(item, bool) for item in given
        )
        fine = fine or all(
            isinstance(item, list) and all(isinstance(t, int) for t in item) for item in given
        )
        if not fine:
            raise OpenAIError(
                400,
                "'input' must be a string, an array of strings, or token arrays.",
                "input",
                "invalid_type",
            )
    else:
        raise OpenAIError(
            400,
            f"'input' must be a string or an array of strings, not {_kind(given)}.",
            "input",
            "invalid_type",
        )
    encoding = data.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise OpenAIError(
            400,
            f"'encoding_format' is {encoding!r}; it must be 'float' or 'base64'.",
            "encoding_format",
            "invalid_value",
        )
    dimensions = data.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise OpenAIError(
            400, "'dimensions' must be a positive integer.", "dimensions", "invalid_value"
        )
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise OpenAIError(400, "'user' must be a string.", "user", "invalid_type")
    unknown = set(data) - {"model", "input", "encoding_format", "dimensions", "user"}
    if unknown:
        key = sorted(unknown)[0]
        raise OpenAIError(
            400, f"Unrecognized request argument supplied: {key}", key, "unknown_parameter"
        )
    return EmbeddingRequest(model, given, encoding, dimensions, user)


def model_pin(requested: str, served: str) -> str | None:
    """The version ``requested`` pins (``name/version``), None for the served name; else 404."""
    if requested == served:
        return None
    name, slash, version = requested.rpartition("/")
    if slash and name == served and version:
        return version
    raise OpenAIError(
        404,
        f"The model '{requested}' does not exist here: this gateway serves '{served}' "
        f"(or '{served}/<version>' to pin a version).",
        "model",
        "model_not_found",
    )


def _text_of(content: Any) -> str:
    """A message's text: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""
