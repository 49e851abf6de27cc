"""KServe V1 ``:predict`` bodies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shipyard.serving.protocols import InputSpec, RequestError, decode_v1, encode_v1


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_objects_and_arrays_round_trip(mixed_spec: InputSpec, key: str) -> None:
    objects = {
        key: [{"age": 30, "city": "oslo", "income": 1.5}, {"income": 2, "age": 40, "city": "rome"}]
    }
    arrays = {key: [[30, "oslo", 1.5], [40, "rome", 2]]}
    for body in (objects, arrays):
        matrix = decode_v1(json.dumps(body).encode(), mixed_spec)
        assert matrix.tolist() == [[30, "oslo", 1.5], [40, "rome", 2.0]]


def test_encode_predictions() -> None:
    assert json.loads(encode_v1(np.array([1, 0]))) == {"predictions": [1, 0]}
    assert json.loads(encode_v1(np.array(["yes"], dtype=object))) == {"predictions": ["yes"]}
    assert json.loads(encode_v1(np.array([[0.25, 0.75]]))) == {"predictions": [[0.25, 0.75]]}
    # A transposed (non-contiguous) array goes through orjson's fallback.
    assert json.loads(encode_v1(np.array([[0.25, 0.75]]).T)) == {"predictions": [[0.25], [0.75]]}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", ["not valid JSON"]),
        (b"[1, 2]", ["instances"]),
        (b'{"instances": [], "inputs": []}', ["not both"]),
        (b'{"rows": []}', ["instances", "inputs"]),
        (b'{"instances": {"age": 1}}', ["array"]),
        (b'{"instances": []}', ["empty"]),
        (b'{"instances": [{"age": 1, "city": "x"}]}', ["missing", "income"]),
        (b'{"instances": [[1, 2, 3]]}', ["'city'", "string"]),
    ],
)
def test_invalid_bodies_are_400(mixed_spec: InputSpec, body: bytes, words: list[str]) -> None:
    with pytest.raises(RequestError) as info:
        decode_v1(body, mixed_spec)
    assert info.value.status == 400
    assert all(word in info.value.message for word in words), info.value.message
