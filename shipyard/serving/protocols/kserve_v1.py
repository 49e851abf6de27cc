"""KServe V1 prediction bodies: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out.

Each instance is an object (column → value) or an array of values in column order;
KServe's ``{"inputs": [...]}`` spelling is accepted too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.errors import RequestError
from shipyard.models.signature import InputSpec, decode_rows, dump_json, load_json

_KEYS = ("instances", "inputs")


def decode_v1(body: bytes, spec: InputSpec) -> np.ndarray:
    """Decode a V1 ``:predict`` body into the model's input matrix."""
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise RequestError('the body must be a JSON object like {"instances": [...]}')
    present = [key for key in _KEYS if key in payload]
    if len(present) != 1:
        raise RequestError(
            'the body must have exactly one of "instances" or "inputs"'
            + (", not both" if present else "")
        )
    instances = payload[present[0]]
    if not isinstance(instances, list):
        raise RequestError(f'"{present[0]}" must be an array of instances')
    return decode_rows(instances, spec)


def encode_v1(predictions: Any) -> bytes:
    """Encode model output (array or list) as ``{"predictions": [...]}``."""
    return dump_json({"predictions": predictions})
