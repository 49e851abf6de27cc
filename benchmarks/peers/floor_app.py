"""The raw floor: uvicorn (httptools, uvloop) and a bare ASGI callable, no framework.

Parses the V1 body ``{"instances": [[...]]}`` with orjson, calls ``predict_proba`` on the
joblib-loaded estimator and answers ``{"predictions": [[...]]}``. Any GET answers 200
(readiness). Configured by environment: SHIPYARD_BENCH_MODEL (joblib file) and
SHIPYARD_BENCH_PORT. Runs in its own venv (see peers/__init__.py), not the project's.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import joblib
import numpy as np
import orjson
import uvicorn

# Fitted on a DataFrame, called with an array: every peer silences the same warning.
warnings.filterwarnings("ignore", message="X does not have valid feature names")
MODEL = joblib.load(os.environ["SHIPYARD_BENCH_MODEL"])
JSON = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """One request: read the body, predict, answer."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        out = b'{"ready":true}'
    else:
        rows = np.asarray(orjson.loads(body)["instances"], dtype=np.float64)
        proba = MODEL.predict_proba(rows)
        out = orjson.dumps({"predictions": proba}, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = [*JSON, (b"content-length", str(len(out)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["SHIPYARD_BENCH_PORT"]),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
