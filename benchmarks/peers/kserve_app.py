"""KServe's Python ModelServer (kserve 0.21) with a custom ``kserve.Model``: V1 and V2.

V1 ``/v1/models/bc-gbm:predict`` takes ``{"instances": [[...]]}``; V2
``/v2/models/bc-gbm/infer`` takes one FP64 tensor of shape [n, 30]. Both answer
``predict_proba``. One uvicorn worker, no gRPC, no per-request log lines (started with
``--enable_latency_logging false --configure_logging false``; the root logger at WARNING
keeps uvicorn's access log quiet, as Shipyard's is). Configured by environment:
SHIPYARD_BENCH_MODEL (joblib file), SHIPYARD_BENCH_PORT. Runs in its own venv.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import joblib
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

warnings.filterwarnings("ignore", message="X does not have valid feature names")


class GBM(Model):
    """The benchmark's estimator behind KServe's V1 and V2 handlers."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.estimator: Any = None
        self.load()

    def load(self) -> bool:
        self.estimator = joblib.load(self.path)
        self.ready = True
        return True

    def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        if isinstance(payload, InferRequest):
            proba = self.estimator.predict_proba(payload.inputs[0].as_numpy())
            output = InferOutput("predict_proba", list(proba.shape), "FP64", proba)
            return InferResponse(payload.id or "", self.name, [output])
        rows = np.asarray(payload["instances"], dtype=np.float64)
        return {"predictions": self.estimator.predict_proba(rows).tolist()}


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    model = GBM("bc-gbm", os.environ["SHIPYARD_BENCH_MODEL"])
    ModelServer(
        http_port=int(os.environ["SHIPYARD_BENCH_PORT"]),
        workers=1,
        enable_grpc=False,
        enable_latency_logging=False,
    ).start([model])
