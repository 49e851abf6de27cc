"""The micro-batcher: adaptive coalescing, latency bound, failure isolation, draining."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from shipyard.errors import ConfigError
from shipyard.serving.batcher import BatchSettings, MicroBatcher, split_rows


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray
    probabilities: np.ndarray | None


class RecordingModel:
    """A row-wise model that records the size, dtype and start time of every call."""

    def __init__(self, predict: Callable[[np.ndarray], Any]) -> None:
        self._predict = predict
        self.sizes: list[int] = []
        self.dtypes: list[np.dtype[Any]] = []
        self.started: list[float] = []

    def __call__(self, matrix: np.ndarray) -> Any:
        self.started.append(time.perf_counter())
        self.sizes.append(len(matrix))
        self.dtypes.append(matrix.dtype)
        return self._predict(matrix)


def scores(matrix: np.ndarray) -> np.ndarray:
    return matrix * 2.0 + matrix.sum(axis=1, keepdims=True)


def labels(matrix: np.ndarray) -> Prediction:
    joined = np.array(["|".join(map(str, row)) for row in matrix], dtype=object)
    return Prediction(joined, None)


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(main(), timeout=5))


def random_requests(seed: int, kind: str, count: int = 200) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    requests = []
    for _ in range(count):
        rows = int(rng.integers(1, 6))
        if kind == "float":
            requests.append(rng.normal(size=(rows, 3)))
        else:
            words = rng.choice(np.array(["a", "bb", "ccc", None, 7], dtype=object), size=(rows, 2))
            requests.append(np.asarray(words, dtype=object))
    return requests


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("kind", "predict"), [("float", scores), ("object", labels)])
def test_batched_results_equal_unbatched_ones(
    seed: int, kind: str, predict: Callable[[np.ndarray], Any]
) -> None:
    requests = random_requests(seed, kind)
    model = RecordingModel(predict)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=32, max_wait_ms=5))

    async def main() -> list[Any]:
        results = await asyncio.gather(*(batcher.submit(m) for m in requests))
        await batcher.close()
        return results

    results = run(main)
    for matrix, result in zip(requests, results, strict=True):
        expected = predict(matrix)
        if kind == "float":
            np.testing.assert_array_equal(result, expected)
        else:
            assert result.labels.dtype == object
            assert result.labels.tolist() == expected.labels.tolist()
            assert result.probabilities is None
    assert set(model.dtypes) == {requests[0].dtype}
    assert batcher.batches == len(model.sizes) < len(requests)
    assert batcher.rows == sum(len(m) for m in requests)
    assert max(model.sizes) <= 32


def test_concurrent_single_rows_are_coalesced() -> None:
    model = RecordingModel(scores)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=16, max_wait_ms=50))

    async def main() -> None:
        await asyncio.gather(*(batcher.submit(np.ones((1, 4))) for _ in range(64)))
        await batcher.close()

    run(main)
    assert sum(model.sizes) == 64
    assert len(model.sizes) <= 8
    assert max(model.sizes) <= 16
    assert list(batcher.last_batch_sizes) == model.sizes


def test_a_lone_request_does_not_wait_for_company() -> None:
    model = RecordingModel(scores)
    # A deadline far beyond the test's own timeout: only the adaptive decision can pass.
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=64, max_wait_ms=60_000))

    async def main() -> list[np.ndarray]:
        results = [await batcher.submit(np.full((1, 2), float(i))) for i in range(5)]
        await batcher.close()
        return results

    results = run(main)
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, scores(np.full((1, 2), float(i))))
    assert model.sizes == [1] * 5
    assert [(d.reason, d.held, d.expected) for d in batcher.last_decisions] == [
        ("alone", False, 1)
    ] * 5


def test_closed_loop_clients_are_coalesced_without_waiting_out_the_deadline() -> None:
    model = RecordingModel(scores)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=64, max_wait_ms=60_000))

    async def client(number: int) -> list[np.ndarray]:
        rows = [np.full((1, 3), float(number * 100 + i)) for i in range(20)]
        return [await batcher.submit(row) for row in rows]

    async def main() -> list[list[np.ndarray]]:
        answers = await asyncio.gather(*(client(n) for n in range(16)))
        await batcher.close()
        return answers

    answers = run(main)
    for number, results in enumerate(answers):
        for i, result in enumerate(results):
            np.testing.assert_array_equal(result, scores(np.full((1, 3), float(number * 100 + i))))
    assert model.sizes == [16] * 20
    decisions = list(batcher.last_decisions)
    assert {d.reason for d in decisions} == {"expected"}
    # After the first batch, each batch's early arrivals were held until the 16th came.
    assert all(d.held and d.expected == 16 for d in decisions[1:])


def test_a_held_request_is_flushed_after_max_wait() -> None:
    model = RecordingModel(scores)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=64, max_wait_ms=20))

    async def main() -> tuple[float, np.ndarray]:
        await asyncio.gather(*(batcher.submit(np.ones((1, 2))) for _ in range(8)))
        submitted = time.perf_counter()
        result = await batcher.submit(np.ones((1, 2)))  # 8 were expected; 1 came
        await batcher.close()
        return model.started[-1] - submitted, result

    waited, result = run(main)
    np.testing.assert_array_equal(result, scores(np.ones((1, 2))))
    assert model.sizes == [8, 1]
    last = batcher.last_decisions[-1]
    assert (last.reason, last.held, last.expected) == ("deadline", True, 8)
    assert batcher.expected == 1  # the next lone request will not wait
    assert waited >= 0.019  # not before max_wait


def test_an_oversized_request_runs_alone_and_whole() -> None:
    model = RecordingModel(scores)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=8, max_wait_ms=5))
    big = np.arange(60.0).reshape(20, 3)
    small = [np.full((1, 3), float(i)) for i in range(10)]

    async def main() -> list[np.ndarray]:
        results = await asyncio.gather(*(batcher.submit(m) for m in [*small[:5], big, *small[5:]]))
        await batcher.close()
        return results

    results = run(main)
    np.testing.assert_array_equal(results[5], scores(big))
    for matrix, result in zip(small, results[:5] + results[6:], strict=True):
        np.testing.assert_array_equal(result, scores(matrix))
    assert 20 in model.sizes
    assert all(size <= 8 for size in model.sizes if size != 20)


def test_a_cancelled_request_does_not_break_its_batch() -> None:
    release = threading.Event()
    model = RecordingModel(lambda m: (release.wait(5), scores(m))[1])
    # A thread runs predict here, so requests can queue and be cancelled while it runs.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=64, max_wait_ms=1), executor=pool)

    async def main() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit(np.zeros((1, 2))))
        while not model.sizes:  # the first batch is now blocked inside predict
            await asyncio.sleep(0.001)
        queued = [asyncio.ensure_future(batcher.submit(np.full((1, 2), i))) for i in range(4)]
        await asyncio.sleep(0)
        queued[1].cancel()  # cancelled while queued
        first.cancel()  # cancelled while its predict runs
        release.set()
        outcomes = await asyncio.gather(first, *queued, return_exceptions=True)
        await batcher.close()
        return outcomes

    outcomes = run(main)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert isinstance(outcomes[2], asyncio.CancelledError)
    for i in (0, 2, 3):
        np.testing.assert_array_equal(outcomes[i + 1], scores(np.full((1, 2), i)))
    assert model.sizes == [1, 3]


def test_disabled_mode_calls_predict_once_per_request() -> None:
    model = RecordingModel(scores)
    batcher = MicroBatcher(model, BatchSettings(enabled=False))
    requests = [np.full((i, 2), float(i)) for i in range(1, 11)]

    async def main() -> list[np.ndarray]:
        results = await asyncio.gather(*(batcher.submit(m) for m in requests))
        await batcher.close()
        return results

    results = run(main)
    assert sorted(model.sizes) == list(range(1, 11))
    for matrix, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result, scores(matrix))


def test_close_drains_queued_requests_then_refuses_new_ones() -> None:
    model = RecordingModel(scores)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=8, max_wait_ms=10_000))

    async def main() -> list[np.ndarray]:
        tasks = [asyncio.ensure_future(batcher.submit(np.full((1, 2), i))) for i in range(3)]
        await asyncio.sleep(0)  # queued, but far from full and far from the deadline
        await batcher.close()
        assert all(task.done() for task in tasks)
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.submit(np.ones((1, 2)))
        return [task.result() for task in tasks]

    results = run(main)
    assert model.sizes == [3]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, scores(np.full((1, 2), i)))


def test_mixed_dtypes_are_promoted_or_kept_as_objects() -> None:
    model = RecordingModel(lambda m: m.copy())
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=64, max_wait_ms=5))
    ints, floats = np.ones((1, 2), dtype=np.int64), np.full((1, 2), 0.5)
    words = np.array([["a", "b"]])

    async def main() -> list[Any]:
        numeric = await asyncio.gather(batcher.submit(ints), batcher.submit(floats))
        mixed = await asyncio.gather(batcher.submit(floats), batcher.submit(words))
        await batcher.close()
        return [*numeric, *mixed]

    results = run(main)
    assert model.dtypes == [np.dtype(np.float64), np.dtype(object)]
    assert results[0].tolist() == [[1.0, 1.0]]
    assert results[3].tolist() == [["a", "b"]]


def test_split_rows_slices_dataclass_fields_and_refuses_unknown_results() -> None:
    batch = Prediction(np.arange(5), np.arange(10.0).reshape(5, 2))
    parts = split_rows(batch, [2, 3])
    assert [p.labels.tolist() for p in parts] == [[0, 1], [2, 3, 4]]
    assert parts[1].probabilities.tolist() == [[4.0, 5.0], [6.0, 7.0], [8.0, 9.0]]
    with pytest.raises(ValueError, match="5 rows"):
        split_rows(np.arange(4), [2, 3])
    with pytest.raises(TypeError, match="split="):
        split_rows({"labels": [1, 2]}, [1, 1])


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError):
        BatchSettings(max_batch_size=0)
    with pytest.raises(ConfigError):
        BatchSettings(max_wait_ms=-1)


def test_one_bad_request_does_not_fail_its_batch() -> None:
    def picky(matrix: np.ndarray) -> np.ndarray:
        if np.isnan(matrix).any():
            raise ValueError("Input X contains NaN.")
        return scores(matrix)

    model = RecordingModel(picky)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=64, max_wait_ms=50))
    requests = [np.full((1, 2), 1.0), np.full((1, 2), np.nan), np.full((2, 2), 3.0)]

    async def main() -> list[Any]:
        outcomes = await asyncio.gather(
            *(batcher.submit(m) for m in requests), return_exceptions=True
        )
        await batcher.close()
        return outcomes

    good, bad, other = run(main)
    np.testing.assert_array_equal(good, scores(requests[0]))
    np.testing.assert_array_equal(other, scores(requests[2]))
    assert isinstance(bad, ValueError)
    # The batch of 4 rows failed; each request was then tried alone.
    assert model.sizes == [4, 1, 1, 2]


def test_a_lone_request_gets_the_model_result_itself_not_a_split_copy() -> None:
    answers: list[Prediction] = []

    def predict(matrix: np.ndarray) -> Prediction:
        answers.append(Prediction(matrix[:, 0].copy(), matrix * 0.5))
        return answers[-1]

    batcher = MicroBatcher(predict, BatchSettings(max_batch_size=64, max_wait_ms=60_000))
    unbatched = MicroBatcher(predict, BatchSettings(enabled=False))

    async def main() -> list[Prediction]:
        results = [await batcher.submit(np.ones((2, 3))), await unbatched.submit(np.ones((1, 3)))]
        together = await asyncio.gather(*(batcher.submit(np.full((1, 3), i)) for i in range(3)))
        await batcher.close()
        return [*results, *together]

    lone, alone_unbatched, *together = run(main)
    assert lone is answers[0] and alone_unbatched is answers[1]
    # Requests that shared a batch get their own rows of it.
    assert [t.labels.tolist() for t in together] == [[0.0], [1.0], [2.0]]
    assert all(t is not answers[2] for t in together)


def test_requests_arriving_while_a_lone_one_yields_are_batched_with_it() -> None:
    model = RecordingModel(scores)
    batcher = MicroBatcher(model, BatchSettings(max_batch_size=64, max_wait_ms=60_000))

    async def main() -> list[np.ndarray]:
        first = await batcher.submit(np.zeros((1, 2)))  # starts the consumer; alone
        second = await batcher.submit(np.ones((1, 2)))  # alone again: run by its caller
        # Three at once: the first looks alone, yields once, and finds the others queued.
        rest = await asyncio.gather(*(batcher.submit(np.full((1, 2), i)) for i in range(3)))
        await batcher.close()
        return [first, second, *rest]

    results = run(main)
    expected = [np.zeros((1, 2)), np.ones((1, 2)), *(np.full((1, 2), i) for i in range(3))]
    for result, matrix in zip(results, expected, strict=True):
        np.testing.assert_array_equal(result, scores(matrix))
    assert model.sizes == [1, 1, 3]
    assert [(d.reason, d.requests) for d in batcher.last_decisions] == [
        ("alone", 1),
        ("alone", 1),
        ("expected", 3),
    ]
