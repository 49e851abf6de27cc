"""BentoML 1.4: one service, one worker, two endpoints on the same estimator.

``/predict`` runs each request alone; ``/predict_batched`` is BentoML's adaptive batching
(``batchable=True``, up to SHIPYARD_BENCH_BATCH rows). Both take ``{"input": [[...]]}`` and
answer ``predict_proba``. Started with ``bentoml serve bentoml_service:GBM``; the model
path comes from SHIPYARD_BENCH_MODEL. Runs in its own venv.
"""

from __future__ import annotations

import os
import warnings

import bentoml
import joblib
import numpy as np

warnings.filterwarnings("ignore", message="X does not have valid feature names")
BATCH = int(os.environ.get("SHIPYARD_BENCH_BATCH", "64"))


# No access log line per request: Shipyard and the other servers write none either.
@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class GBM:
    """The benchmark's estimator."""

    def __init__(self) -> None:
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        self.estimator = joblib.load(os.environ["SHIPYARD_BENCH_MODEL"])

    @bentoml.api
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(input)

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=BATCH, max_latency_ms=10_000)
    def predict_batched(self, input: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(input)
