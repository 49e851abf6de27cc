"""Live traffic against the demo's real server: ``shipyard serve loans`` with two workers.

The module trains the demo workspace once (loans/1) and serves it as the demo does, in
its own processes, with the workspace's serving settings (two workers, logs rolled
every second). Pacing is checked as a property (never ahead of the schedule, the rate
within a generous factor of the one asked for), never as a speed the machine must hit.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from shipyard.config import Config
from shipyard.demo import (
    COLUMNS,
    LiveTraffic,
    RequestRecord,
    TrafficStream,
    Workspace,
    create_workspace,
    traffic_progress,
)
from shipyard.governance.tokens import issue_token
from shipyard.logs.reader import join_labels, query_log
from shipyard.training import train
from tests.support import (
    PATIENCE,
    ServeProcess,
    free_port,
    project_of,
    server_environment,
    wait_for,
)

# A slow machine may fall behind the schedule, never ahead of it: the achieved rate is
# at most the one asked for, and at least this share of it.
SLOWEST_SHARE = 0.2


@dataclass(frozen=True)
class Server:
    url: str
    config: Config
    token: str  # a labeller's, as the demo's application holds

    @property
    def logs(self) -> Path:
        return self.config.resolve(self.config.serving.logs)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return create_workspace(tmp_path_factory.mktemp("traffic") / "loans", rows=2000)


@pytest.fixture(scope="module")
def server(workspace: Workspace) -> Iterator[Server]:
    environ = server_environment()
    config = workspace.load_config(environ=environ)
    train(project_of(config))
    # The application's token: feedback needs labels:write, as in the demo.
    token = issue_token(project_of(config), name="loans-app", role="labeller").token
    workers = config.serving.workers  # the workspace's own settings, as the demo serves
    with ServeProcess(workspace.config_file, "loans", workers=workers, environ=environ) as serve:
        yield Server(serve.url, config, token)


def logged(server: Server, kind: str, prefix: str, count: int) -> pd.DataFrame:
    """The ``kind`` log rows of ``prefix`` requests, once ``count`` of them are in files."""
    sql = f"SELECT * FROM log WHERE request_id LIKE '{prefix}-%'"

    rows = [pd.DataFrame()]

    def arrived() -> bool:  # the server's processes write the files
        rows[0] = query_log(server.logs, "loans", kind=kind, sql=sql).to_pandas()
        return len(rows[0]) >= count

    wait_for(arrived, what=f"{count} {kind} rows of {prefix}-* requests", every=0.2)
    return rows[0]


def assert_paced(records: list[RequestRecord], since: float, rate: float) -> None:
    """Rows sent on a schedule at ``rate`` from the first of them, begun at ``since`` or later.

    None goes out ahead of its slot (a late one may be followed by a quick catch-up),
    and the rate achieved is not far below the one asked for.
    """
    sent = np.array([r.sent_at for r in records])
    rows = np.array([r.row for r in records])
    earliest = since + (rows - rows[0]) / rate
    assert (sent - earliest).min() > -0.02, "a request went out ahead of its slot"
    achieved = (len(sent) - 1) / (sent[-1] - sent[0])
    assert achieved >= SLOWEST_SHARE * rate, achieved


def test_a_paced_stream_is_answered_labelled_and_handed_over(server: Server) -> None:
    traffic = LiveTraffic(400, switch_at=200, seed=3, id_prefix="paced")
    batches: list[pd.DataFrame] = []
    rate = 100.0
    stream = TrafficStream(
        server.url,
        traffic,
        rate=rate,
        connections=4,
        label_delay=0.5,
        on_labelled=batches.append,
        labelled_batch=150,
        token=server.token,
    )
    assert stream.position_of_switch == 200 and stream.total == 400
    started = time.time()  # the schedule starts no earlier
    stream.start()
    assert stream.wait_until(200, timeout=PATIENCE)
    assert stream.snapshot().sent >= 200
    assert stream.wait_until(400, timeout=PATIENCE)
    assert stream.run_until(lambda s: s.labels_posted == 400, timeout=PATIENCE)
    final = stream.stop()

    assert (final.sent, final.ok, final.failed, final.errors) == (400, 400, 0, ())
    assert final.by_version == {"1": 400} and final.by_role == {"champion": 400}
    assert final.row == 400 and final.since_switch == 200 and final.done
    records = stream.records()
    assert [r.request_id for r in records] == [r.request_id for r in traffic]

    # Paced by absolute time: nothing goes out ahead of its slot; the rate is the one
    # asked for, or somewhat below it on a machine too busy to keep up.
    assert_paced(records, started, rate)
    assert final.rate > 0

    # The client sees the concept switch in the answers it gets.
    before = np.mean([bool(r.correct) for r in records if r.concept == traffic.before])
    after = np.mean([bool(r.correct) for r in records if r.concept == traffic.after])
    assert before > 0.88 and after < 0.7, (before, after)

    # Every label went to the server, no sooner than the delay after its prediction.
    assert final.labels_posted == 400 and final.label_errors == 0 and final.labels_pending == 0
    labels = logged(server, "labels", "paced", 400)
    assert sorted(labels["request_id"]) == sorted(r.request_id for r in traffic)
    truth = traffic.labels_for(labels["request_id"])
    assert [int(v) for v in labels["label"]] == list(truth.values())
    assert len(logged(server, "predictions", "paced", 400)) == 400
    joined = join_labels(server.logs, "loans").to_pandas()
    joined = joined[joined["request_id"].str.startswith("paced-")]
    assert len(joined) == 400 and joined["label"].notna().all()
    lag = (joined["label_time"] - joined["time"]).dt.total_seconds()
    assert lag.min() >= 0.45, lag.min()

    # The same rows, as training rows, in batches of 150 and the rest at stop().
    assert [len(b) for b in batches] == [150, 150, 100]
    handed = pd.concat(batches, ignore_index=True)
    assert list(handed.columns) == [c.name for c in COLUMNS]
    assert list(handed.dtypes.astype(str)) == [c.dtype for c in COLUMNS]
    expected = traffic.to_frame().drop(columns=["request_id", "concept"])
    by_id = expected.set_axis([r.request_id for r in traffic]).sort_index()
    assert final.labelled_handed == 400
    pd.testing.assert_frame_equal(
        handed.sort_values(list(handed.columns)).reset_index(drop=True),
        by_id.sort_values(list(by_id.columns)).reset_index(drop=True),
    )


def test_stop_posts_the_labels_still_waiting(server: Server) -> None:
    traffic = LiveTraffic(30, switch_at=30, seed=4, id_prefix="drain")
    batches: list[pd.DataFrame] = []
    stream = TrafficStream(
        server.url,
        traffic,
        rate=500,
        label_delay=600,
        on_labelled=batches.append,
        token=server.token,
    )
    stream.start()
    assert stream.wait_until(30, timeout=PATIENCE)
    assert stream.snapshot().labels_pending == 30  # ten minutes early
    final = stream.stop()
    assert final.labels_posted == 30 and final.labels_pending == 0
    assert [len(b) for b in batches] == [30]
    assert len(logged(server, "labels", "drain", 30)) == 30


def test_stop_without_draining_drops_waiting_labels(server: Server) -> None:
    traffic = LiveTraffic(10, switch_at=10, seed=5, id_prefix="nodrain")
    batches: list[pd.DataFrame] = []
    stream = TrafficStream(
        server.url, traffic, rate=500, label_delay=600, on_labelled=batches.append
    )
    stream.start()
    assert stream.wait_until(10, timeout=PATIENCE)
    final = stream.stop(drain=False)
    assert final.ok == 10 and final.labels_posted == 0 and batches == []


def test_run_until_feeds_a_progress_bar_and_rate_can_change(server: Server) -> None:
    traffic = LiveTraffic(200, switch_at=100, seed=6, id_prefix="progress")
    output = io.StringIO()
    progress = traffic_progress(Console(file=output, width=160, force_terminal=False))
    stream = TrafficStream(server.url, traffic, rate=200, start_row=50, end_row=150)
    task = progress.add_task("live traffic", total=stream.total)
    with progress, stream:
        assert stream.run_until(
            lambda s: s.sent >= 40,
            timeout=PATIENCE,
            on_tick=lambda s: progress.update(task, **s.progress_fields()),
        )
        changed = time.time()
        stream.rate = 50  # the rest at a quarter of the pace: the schedule starts again
        first = stream.snapshot().row  # from this row on, or an earlier one
        assert stream.run_until(lambda s: s.done, timeout=PATIENCE)
        progress.update(task, **stream.snapshot().progress_fields())
    records = stream.records()
    assert [r.row for r in records] == list(range(50, 150))
    assert_paced([r for r in records if r.row >= first], changed, 50)
    # Stopping before waiting on anything: nothing is left to wait for.
    assert not stream.run_until(lambda s: False, timeout=5)
    rendered = output.getvalue()
    assert "live traffic" in rendered and "100/100" in rendered
    assert "0 failed" in rendered and "champion 100%" in rendered


def test_failures_are_counted_with_their_reasons(server: Server) -> None:
    traffic = LiveTraffic(20, switch_at=20, seed=8, id_prefix="fail")
    unknown = TrafficStream(server.url, traffic, model="nope", rate=1000, label_delay=0)
    with unknown:
        assert unknown.wait_until(20, timeout=PATIENCE)
    final = unknown.snapshot()
    assert (final.ok, final.failed, final.labels_posted) == (0, 20, 0)
    assert len(final.errors) == 5 and "HTTP 404" in final.errors[0]

    closed = TrafficStream(f"http://127.0.0.1:{free_port()}", traffic, rate=1000, connections=2)
    with closed:
        assert closed.wait_until(20, timeout=PATIENCE)
    final = closed.snapshot()
    assert (final.ok, final.failed) == (0, 20)
    assert "ConnectionRefusedError" in final.errors[0]
    assert all(r.status == 0 and r.prediction is None for r in closed.records())


class _ClosesSilently(BaseHTTPRequestHandler):
    """Answers every predict, then drops the connection without saying so, as a server
    does when an idle keep-alive connection times out just as the client reuses it."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"predictions": [1]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Model-Version", "1")
        self.send_header("X-Model-Role", "champion")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_a_keep_alive_connection_the_server_dropped_is_retried_once() -> None:
    fake = ThreadingHTTPServer(("127.0.0.1", 0), _ClosesSilently)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        traffic = LiveTraffic(20, switch_at=20, seed=9, id_prefix="stale")
        stream = TrafficStream(
            f"http://127.0.0.1:{fake.server_address[1]}", traffic, rate=100, connections=1
        )
        with stream:
            assert stream.wait_until(20, timeout=PATIENCE)
        final = stream.snapshot()
    finally:
        fake.shutdown()
        fake.server_close()
    assert (final.ok, final.failed, final.errors) == (20, 0, ())
    assert final.labels_posted == 20  # the label poster's connection was dropped too
