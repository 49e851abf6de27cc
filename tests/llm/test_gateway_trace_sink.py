"""The gateway's trace sink: traces queued on the request path, recorded on a thread.

Real :class:`~shipyard.llm.traces.Trace` objects, consumers that keep what they get;
no server and no provider.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from shipyard.llm.trace_sink import TraceSink
from shipyard.llm.traces import Trace
from shipyard.logs.traces import TraceRecord
from tests.support import wait_for


def finished(request_id: str) -> Trace:
    trace = Trace(request_id=request_id, model="assistant", version="1")
    root = trace.start("gateway", "CHAIN")
    trace.start("provider.call", "LLM", parent=root).set(output="hello").end()
    root.end()
    return trace


def test_traces_are_recorded_in_order_and_drained_on_close() -> None:
    got: list[list[TraceRecord]] = []
    sink = TraceSink([lambda records: got.append(list(records))])
    for number in range(50):
        sink(finished(f"r-{number}"))
    sink.close()
    assert [records[0].request_id for records in got] == [f"r-{n}" for n in range(50)]
    assert all([r.name for r in records] == ["gateway", "provider.call"] for records in got)
    assert sink.recorded == 50 and sink.dropped == 0
    sink(finished("late"))  # after close: dropped, counted, never recorded
    assert sink.dropped == 1 and len(got) == 50


def test_a_full_queue_drops_and_counts_instead_of_growing() -> None:
    gate = threading.Event()
    got: list[Sequence[TraceRecord]] = []

    def slow(records: Sequence[TraceRecord]) -> None:
        gate.wait()
        got.append(records)

    sink = TraceSink([slow], capacity=3)
    sink(finished("first"))
    wait_for(lambda: sink.queued == 0, what="the thread to take the first trace")
    for number in range(5):
        sink(finished(f"r-{number}"))
    assert sink.queued == 3 and sink.dropped == 2
    gate.set()
    sink.close()
    assert len(got) == 4 and sink.recorded == 4


def test_a_failing_consumer_does_not_stop_the_others() -> None:
    kept: list[str] = []

    def broken(records: Sequence[TraceRecord]) -> None:
        if records[0].request_id == "bad":
            raise RuntimeError("disk full")
        kept.append(records[0].request_id)

    sink = TraceSink([broken])
    for name in ("a", "bad", "b"):
        sink(finished(name))
    sink.close()
    assert kept == ["a", "b"] and sink.failed == 1 and sink.recorded == 2
