"""LitServe: a ``LitAPI`` around the estimator, one inference worker on the CPU.

POST ``/predict`` with ``{"instances": [[...]]}``; answers ``predict_proba``. With
SHIPYARD_BENCH_BATCH > 1, LitServe's batching is on (``max_batch_size`` that many,
``batch_timeout`` SHIPYARD_BENCH_BATCH_WAIT_MS). Configured by environment:
SHIPYARD_BENCH_MODEL, SHIPYARD_BENCH_PORT. Runs in its own venv.
"""

import os
import warnings
from typing import Any

import joblib
import litserve as ls
import numpy as np

warnings.filterwarnings("ignore", message="X does not have valid feature names")


class GBM(ls.LitAPI):
    """decode → (batch) → predict_proba → (unbatch) → encode."""

    def setup(self, device: str) -> None:
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        self.estimator = joblib.load(os.environ["SHIPYARD_BENCH_MODEL"])

    def decode_request(self, request: dict) -> np.ndarray:  # dict: FastAPI reads a JSON body
        return np.asarray(request["instances"], dtype=np.float64)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(x)

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray) -> dict[str, Any]:
        return {"predictions": np.atleast_2d(output).tolist()}


if __name__ == "__main__":
    size = int(os.environ.get("SHIPYARD_BENCH_BATCH", "1"))
    wait = float(os.environ.get("SHIPYARD_BENCH_BATCH_WAIT_MS", "2")) / 1000
    api = GBM(max_batch_size=size, batch_timeout=wait) if size > 1 else GBM()
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=1)
    server.run(
        host="127.0.0.1",
        port=int(os.environ["SHIPYARD_BENCH_PORT"]),
        num_api_servers=1,
        generate_client_file=False,
        log_level="warning",
    )
