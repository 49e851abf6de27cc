"""Request decoding against the floor: orjson + ``np.asarray`` of the same rows.

    python benchmarks/decode.py                  # 30 float64 columns, 1 row
    python benchmarks/decode.py --columns 30 --rows 100 --repeat 7

Each decoder turns the same logical request (``--rows`` rows of ``--columns`` float64
features, the common tabular case) into the model's input matrix, from the body's
bytes: KServe V1 rows as arrays and as objects, Open Inference V2 as one ``[n, k]``
JSON tensor, as ``k`` JSON tensors of shape ``[n]``, and as one binary FP32 tensor. The
floor parses the V1 body with orjson and calls ``np.asarray`` on the rows, with no
checks at all. Each time is the best of ``--repeat`` timeit runs (µs per call); the
table gives each decoder's ratio to the floor, and, where the decoders take
``fast=False``, the per-column path's time for comparison (the path every request took
before the one-pass decode). Run it on an idle machine: on a busy one, compare ratios.
"""

from __future__ import annotations

import argparse
import inspect
import json
import timeit
from collections.abc import Callable
from functools import partial

import numpy as np
import orjson

from shipyard.models.signature import InputSpec
from shipyard.serving.protocols import decode_v1, decode_v2

HEADER_LENGTH = "Inference-Header-Content-Length"


def _best(call: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in µs per call (each run about 0.2 s)."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat, number)) / number * 1e6


def _cases(columns: int, rows: int) -> dict[str, tuple[bytes, dict[str, str], str]]:
    """Each case's body, headers and protocol ("v1" or "v2")."""
    names = [f"f{i}" for i in range(columns)]
    generator = np.random.default_rng(13)
    table = generator.normal(50.0, 20.0, size=(rows, columns)).round(3)
    values = table.tolist()
    head = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, columns],
                    "parameters": {"binary_data_size": rows * columns * 4}}]
    }  # fmt: skip
    head_bytes = json.dumps(head).encode()
    return {
        "V1 rows as arrays": (orjson.dumps({"instances": values}), {}, "v1"),
        "V1 rows as objects": (
            orjson.dumps({"instances": [dict(zip(names, row, strict=True)) for row in values]}),
            {},
            "v1",
        ),
        "V2 one [n, k] JSON tensor": (
            orjson.dumps(
                {
                    "inputs": [
                        {
                            "name": "x",
                            "datatype": "FP64",
                            "shape": [rows, columns],
                            "data": table.ravel().tolist(),
                        }
                    ]
                }
            ),
            {},
            "v2",
        ),
        "V2 k [n] JSON tensors": (
            orjson.dumps(
                {
                    "inputs": [
                        {
                            "name": name,
                            "datatype": "FP64",
                            "shape": [rows],
                            "data": table[:, i].tolist(),
                        }
                        for i, name in enumerate(names)
                    ]
                }
            ),
            {},
            "v2",
        ),
        "V2 one [n, k] binary FP32": (
            head_bytes + table.astype("<f4").tobytes(),
            {HEADER_LENGTH: str(len(head_bytes))},
            "v2",
        ),
    }


def main() -> None:
    """Time every decoder and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    spec = InputSpec.from_columns([(f"f{i}", "double") for i in range(options.columns)])
    cases = _cases(options.columns, options.rows)
    floor_body = cases["V1 rows as arrays"][0]
    floor = _best(lambda: np.asarray(orjson.loads(floor_body)["instances"]), options.repeat)
    has_fast = "fast" in inspect.signature(decode_v1).parameters or (
        "fast" in inspect.signature(decode_v2).parameters
    )
    print(f"{options.rows} row(s) × {options.columns} float64 columns, best of {options.repeat}")
    print(f"{'decoder':<28} {'µs':>8} {'× floor':>8} {'per-column µs':>14} {'speed-up':>9}")
    print(f"{'orjson + np.asarray (floor)':<28} {floor:8.1f} {1.0:8.2f}")
    for name, (body, headers, protocol) in cases.items():
        if protocol == "v1":
            decode: Callable[..., np.ndarray] = partial(_v1, body, spec)
        else:
            decode = partial(_v2, body, headers, spec)
        reference = np.asarray(decode())
        assert reference.shape == (options.rows, options.columns), name
        took = _best(decode, options.repeat)
        line = f"{name:<28} {took:8.1f} {took / floor:8.2f}"
        if has_fast:
            slow = _best(partial(decode, fast=False), options.repeat)
            line += f" {slow:14.1f} {slow / took:8.1f}×"
        print(line)


def _v1(body: bytes, spec: InputSpec, fast: bool = True) -> np.ndarray:
    if fast:
        return decode_v1(body, spec)
    from shipyard.models.signature import decode_rows, load_json

    payload = load_json(body)
    return decode_rows(payload["instances"], spec, fast=False)  # type: ignore[call-arg,unused-ignore]


def _v2(body: bytes, headers: dict[str, str], spec: InputSpec, fast: bool = True) -> np.ndarray:
    if fast:
        return decode_v2(body, headers, spec).matrix
    return decode_v2(body, headers, spec, fast=False).matrix  # type: ignore[call-arg,unused-ignore]


if __name__ == "__main__":
    main()
