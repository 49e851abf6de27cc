"""Live traffic for the demo: paced requests to a running server, and their delayed labels.

    stream = TrafficStream("http://127.0.0.1:8080", LiveTraffic(6000, switch_at=3000),
                           rate=50, label_delay=2.0, on_labelled=workspace.append_labelled)
    with traffic_progress() as progress:
        task = progress.add_task("live traffic", total=stream.total)
        stream.start()
        stream.run_until(lambda s: s.row >= 3000,
                         on_tick=lambda s: progress.update(task, **s.progress_fields()))
    stream.stop()                                  # posts the labels still waiting

Each of ``connections`` threads keeps one HTTP/1.1 keep-alive connection and sends one
row per request (``POST /v1/models/NAME:predict``, the row's request id as
``X-Request-ID``). Row ``i`` is due at ``start + i / rate`` on the monotonic clock, so
the pace never drifts: a request that runs late delays none after it, and a stall is
caught up with as fast as the connections allow. A request that fails is recorded
(status 0 for a connection error), never retried, except once on a fresh connection
when a reused keep-alive connection turns out to have been closed by the server.

Labels arrive ``label_delay`` seconds after each answer: one thread posts every label
that is due to ``POST /v1/feedback`` as one batch, at most every ``label_interval``
seconds, and hands the same rows (features and ``approved``) to ``on_labelled`` once
``labelled_batch`` of them have gathered. Only answered requests are labelled: a
failed one has no prediction to join.
"""

from __future__ import annotations

import heapq
import http.client
import json
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from shipyard.demo.agrawal import LiveTraffic, _frame
from shipyard.errors import ConfigError

__all__ = [
    "RequestRecord",
    "TrafficColumn",
    "TrafficSnapshot",
    "TrafficStream",
    "traffic_progress",
]

LabelledCallback = Callable[[pd.DataFrame], Any]
MAX_ERRORS_KEPT = 5
MAX_LABELS_PER_POST = 5000  # the server takes up to 10,000 per request
# Errors on a reused keep-alive connection that mean the server closed it while idle.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class RequestRecord:
    """What happened to one live request.

    ``status`` is the HTTP status, 0 when no answer came (``error`` says why);
    ``sent_at`` is wall-clock time (seconds since the epoch), to line up with the logs.
    """

    row: int
    request_id: str
    sent_at: float
    latency: float
    label: int
    concept: int
    status: int
    version: str | None = None
    role: str | None = None
    prediction: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the server answered 200."""
        return self.status == 200

    @property
    def correct(self) -> bool | None:
        """Whether the prediction matched the true label (``None`` without one)."""
        return None if self.prediction is None else self.prediction == self.label


@dataclass(frozen=True)
class TrafficSnapshot:
    """The stream's counters at one moment (a consistent copy; safe to keep)."""

    total: int  # rows the stream will send
    row: int  # rows handed to a connection so far (the next row to send)
    sent: int  # requests finished, answered or failed
    ok: int
    failed: int
    errors: tuple[str, ...]  # the first few failures, for the console
    by_version: dict[str, int]
    by_role: dict[str, int]
    recent_roles: dict[str, float]  # role → share of the newest answered requests
    recent_accuracy: float | None  # share of the newest answered requests that were right
    labels_posted: int
    labels_pending: int
    label_errors: int
    labelled_handed: int  # rows handed to on_labelled
    switch_at: int
    elapsed: float
    rate: float  # requests sent per second, over the newest ``recent`` requests
    stopped: bool  # stop() was called

    @property
    def since_switch(self) -> int:
        """Rows sent past the concept switch (negative before it)."""
        return self.row - self.switch_at

    @property
    def done(self) -> bool:
        """Whether every row has been sent and answered (or failed)."""
        return self.sent >= self.total

    def progress_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``Progress.update`` of a :func:`traffic_progress` task."""
        return {
            "completed": self.sent,
            "rate": self.rate,
            "failed": self.failed,
            "champion": self.recent_roles.get("champion", 0.0),
            "candidate": self.recent_roles.get("challenger", 0.0),
            "accuracy": self.recent_accuracy,
        }


class TrafficStream:
    """Sends a :class:`LiveTraffic` to a server at ``rate`` requests/s and posts its labels.

    Rows ``start_row`` to ``end_row`` (default: all) are sent; ``recent`` is how many of
    the newest answers the rate, role shares and accuracy of a snapshot cover.
    """

    def __init__(
        self,
        base_url: str,
        traffic: LiveTraffic,
        *,
        model: str = "loans",
        rate: float = 50.0,
        connections: int = 4,
        label_delay: float = 2.0,
        label_interval: float = 0.25,
        on_labelled: LabelledCallback | None = None,
        labelled_batch: int = 250,
        start_row: int = 0,
        end_row: int | None = None,
        recent: int = 200,
        timeout: float = 10.0,
        token: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ConfigError(
                f"{base_url!r} is not an http:// server URL.",
                hint="Pass the server's base URL, e.g. http://127.0.0.1:8080.",
            )
        end = len(traffic) if end_row is None else end_row
        if not 0 <= start_row <= end <= len(traffic):
            raise ConfigError(
                f"Rows {start_row} to {end} are not within the {len(traffic)} live rows.",
                hint="Choose 0 ≤ start_row ≤ end_row ≤ len(traffic).",
            )
        if rate <= 0 or connections < 1 or labelled_batch < 1 or recent < 1:
            raise ConfigError(
                "rate must be positive; connections, labelled_batch and recent at least 1.",
                hint="E.g. rate=50, connections=4, labelled_batch=250, recent=200.",
            )
        if label_delay < 0 or label_interval < 0:
            raise ConfigError(
                "label_delay and label_interval must not be negative.",
                hint="E.g. label_delay=2.0 (seconds after the answer), label_interval=0.25.",
            )
        self.traffic = traffic
        self.model = model
        # The application's own token (a labeller's): sent as Authorization on every call.
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.connections = connections
        self.label_delay = label_delay
        self.label_interval = label_interval
        self.on_labelled = on_labelled
        self.labelled_batch = labelled_batch
        self.timeout = timeout
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._prefix = parsed.path.rstrip("/")
        self._start_row = start_row
        self._end_row = end
        self._rate = float(rate)
        self._changed = threading.Condition()  # guards everything below
        self._anchor = (0.0, start_row)  # (monotonic time, row) the schedule counts from
        self._next_row = start_row
        self._records: dict[int, RequestRecord] = {}
        self._recent: deque[RequestRecord] = deque(maxlen=recent)
        self._by_version: Counter[str] = Counter()
        self._by_role: Counter[str] = Counter()
        self._ok = 0
        self._failed = 0
        self._errors: list[str] = []
        self._due: list[tuple[float, int]] = []  # heap of (label due time, row)
        self._labelled_rows: list[int] = []  # labelled, not yet handed to on_labelled
        self._labels_posted = 0
        self._label_errors = 0
        self._handed = 0
        self._stopping = False
        self._draining = False
        self._started_at: float | None = None
        self._senders: list[threading.Thread] = []
        self._poster: threading.Thread | None = None

    # -- control -------------------------------------------------------------------

    @property
    def total(self) -> int:
        """How many rows the stream sends."""
        return self._end_row - self._start_row

    @property
    def position_of_switch(self) -> int:
        """The row at which the traffic's concept switches (``LiveTraffic.switch_at``)."""
        return self.traffic.switch_at

    @property
    def rate(self) -> float:
        """Target requests per second."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        """Change the pace from the next row on (the schedule re-anchors at now)."""
        if value <= 0:
            raise ConfigError(f"rate {value} is not positive.", hint="E.g. 50 requests/s.")
        with self._changed:
            if self._started_at is not None:
                self._anchor = (time.monotonic(), self._next_row)
            self._rate = float(value)
            self._changed.notify_all()

    def start(self) -> None:
        """Start sending (and posting labels) in background threads; returns at once."""
        with self._changed:
            if self._started_at is not None:
                raise RuntimeError("this TrafficStream has already been started")
            self._started_at = time.monotonic()
            self._anchor = (self._started_at, self._start_row)
        self._senders = [
            threading.Thread(target=self._send_loop, name=f"traffic-{i}", daemon=True)
            for i in range(self.connections)
        ]
        self._poster = threading.Thread(target=self._label_loop, name="labels", daemon=True)
        for thread in (*self._senders, self._poster):
            thread.start()

    def stop(self, *, drain: bool = True, timeout: float = 30.0) -> TrafficSnapshot:
        """Stop sending, wait for requests in flight, and post labels; the final counters.

        With ``drain`` every label still waiting for its delay is posted now, and the
        remaining labelled rows (fewer than ``labelled_batch``) go to ``on_labelled``;
        without it they are dropped.
        """
        with self._changed:
            self._stopping = True
            self._draining = drain
            self._changed.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._senders:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._changed:
            self._changed.notify_all()  # the poster may drain now every sender is done
        if self._poster is not None:
            self._poster.join(max(0.0, deadline - time.monotonic()))
        return self.snapshot()

    def __enter__(self) -> TrafficStream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- waiting -------------------------------------------------------------------

    def wait_until(self, row: int, timeout: float | None = None) -> bool:
        """Block until the requests before ``row`` have finished; whether they have.

        Returns early (``False``) when the stream stops or ``row`` is beyond its last row.
        """
        target = row - self._start_row
        reachable = min(target, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self._finished() >= reachable or self._stopping, timeout)
            return self._finished() >= target

    def run_until(
        self,
        predicate: Callable[[TrafficSnapshot], bool],
        *,
        timeout: float | None = None,
        poll: float = 0.1,
        on_tick: Callable[[TrafficSnapshot], None] | None = None,
    ) -> bool:
        """Block until ``predicate(snapshot)`` holds; whether it did before ``timeout``.

        The predicate is checked when a request finishes and at least every ``poll``
        seconds (it may depend on the outside world, e.g. a promotion), and ``on_tick``
        gets each snapshot, e.g. to update a progress bar. Gives up (``False``) at
        ``timeout``, after :meth:`stop`, or when the stream is idle (every row answered,
        every label posted) and the predicate still fails.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if on_tick is not None:
                on_tick(snap)
            if predicate(snap):
                return True
            if snap.stopped or (snap.done and snap.labels_pending == 0):
                return False
            left = poll if deadline is None else min(poll, deadline - time.monotonic())
            if left <= 0:
                return False
            with self._changed:
                self._changed.wait(left)

    # -- what happened ---------------------------------------------------------------

    def snapshot(self) -> TrafficSnapshot:
        """The counters now."""
        with self._changed:
            recent = [r for r in self._recent if r.ok]
            roles = Counter(r.role or "unknown" for r in recent)
            right = [r.correct for r in recent if r.correct is not None]
            elapsed = 0.0 if self._started_at is None else time.monotonic() - self._started_at
            finished = self._finished()
            sent_times = [r.sent_at for r in self._recent]
            span = max(sent_times) - min(sent_times) if len(sent_times) > 1 else 0.0
            return TrafficSnapshot(
                total=self.total,
                row=self._next_row,
                sent=finished,
                ok=self._ok,
                failed=self._failed,
                errors=tuple(self._errors),
                by_version=dict(self._by_version),
                by_role=dict(self._by_role),
                recent_roles={role: n / len(recent) for role, n in roles.items()},
                recent_accuracy=sum(right) / len(right) if right else None,
                labels_posted=self._labels_posted,
                labels_pending=len(self._due),
                label_errors=self._label_errors,
                labelled_handed=self._handed,
                switch_at=self.traffic.switch_at,
                elapsed=elapsed,
                rate=(len(sent_times) - 1) / span if span > 0 else 0.0,
                stopped=self._stopping,
            )

    def records(self) -> list[RequestRecord]:
        """Every finished request so far, in row order."""
        with self._changed:
            return [self._records[row] for row in sorted(self._records)]

    # -- sending ---------------------------------------------------------------------

    def _finished(self) -> int:
        return self._ok + self._failed

    def _claim(self) -> tuple[int, float] | None:
        """The next row and when it is due, or ``None`` when there is none left."""
        with self._changed:
            if self._stopping or self._next_row >= self._end_row:
                return None
            row = self._next_row
            self._next_row += 1
            anchor_time, anchor_row = self._anchor
            return row, anchor_time + (row - anchor_row) / self._rate

    def _send_loop(self) -> None:
        client = _Client(self._host, self._port, self.timeout)
        path = f"{self._prefix}/v1/models/{self.model}:predict"
        try:
            while (claimed := self._claim()) is not None:
                row, due = claimed
                with self._changed:
                    # Sleep until due, but wake for stop().
                    self._changed.wait_for(lambda: self._stopping, max(0.0, due - time.monotonic()))
                    if self._stopping:
                        # Claimed but never sent: give it back, so counts stay exact.
                        self._next_row = min(self._next_row, row)
                        return
                self._finish(self._send(client, path, row))
        finally:
            client.close()

    def _send(self, client: _Client, path: str, row: int) -> RequestRecord:
        request = self.traffic[row]
        body = json.dumps({"instances": [request.features]}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Request-ID": request.request_id,
            **self._auth,
        }
        sent_at, started = time.time(), time.perf_counter()
        answer: dict[str, Any] = {"status": 0}
        try:
            status, response_headers, payload = client.post(path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            answer["error"] = f"{type(exc).__name__}: {exc}"
        else:
            if status != 200:
                text = payload[:200].decode("utf-8", "replace")
                answer.update(status=status, error=f"HTTP {status}: {text}")
            else:
                try:
                    prediction = int(json.loads(payload)["predictions"][0])
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    answer["error"] = f"unreadable answer {payload[:200]!r}: {exc!r}"
                else:
                    answer.update(
                        status=200,
                        version=response_headers.get("X-Model-Version"),
                        role=response_headers.get("X-Model-Role"),
                        prediction=prediction,
                    )
        return RequestRecord(
            row=row,
            request_id=request.request_id,
            sent_at=sent_at,
            latency=time.perf_counter() - started,
            label=request.label,
            concept=request.concept,
            **answer,
        )

    def _finish(self, record: RequestRecord) -> None:
        with self._changed:
            self._records[record.row] = record
            self._recent.append(record)
            if record.ok:
                self._ok += 1
                self._by_version[record.version or "unknown"] += 1
                self._by_role[record.role or "unknown"] += 1
                due = time.monotonic() + self.label_delay
                heapq.heappush(self._due, (due, record.row))
            else:
                self._failed += 1
                self._keep_error(f"row {record.row}: {record.error}")
            self._changed.notify_all()

    def _keep_error(self, message: str) -> None:
        # Called with the lock held.
        if len(self._errors) < MAX_ERRORS_KEPT:
            self._errors.append(message)

    # -- labels ----------------------------------------------------------------------

    def _label_loop(self) -> None:
        client = _Client(self._host, self._port, self.timeout)
        try:
            while True:
                rows, final = self._next_labels()
                for first in range(0, len(rows), MAX_LABELS_PER_POST):
                    chunk = rows[first : first + MAX_LABELS_PER_POST]
                    self._post_labels(client, chunk)
                    self._hand_over(chunk, final=False)
                if final:
                    self._hand_over([], final=self._draining)
                    return
                with self._changed:
                    # Let labels gather, unless stop() wants them now.
                    self._changed.wait_for(lambda: self._stopping, self.label_interval)
        finally:
            client.close()

    def _next_labels(self) -> tuple[list[int], bool]:
        """The rows whose labels are due (all of them when draining), and whether to finish."""
        with self._changed:
            while True:
                senders_done = self._stopping and not any(t.is_alive() for t in self._senders)
                if self._stopping and self._draining and senders_done:
                    rows = [row for _, row in sorted(self._due)]
                    self._due.clear()
                    return rows, True
                if self._stopping and not self._draining:
                    self._due.clear()
                    return [], True
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    rows = []
                    while self._due and self._due[0][0] <= now:
                        rows.append(heapq.heappop(self._due)[1])
                    return rows, False
                # Senders notify on every answer, and stop() once it has joined them.
                self._changed.wait(self._due[0][0] - now if self._due else None)

    def _post_labels(self, client: _Client, rows: list[int]) -> None:
        items = [
            {"request_id": self.traffic[row].request_id, "label": self.traffic[row].label}
            for row in rows
        ]
        error: str | None = None
        try:
            status, _, payload = client.post(
                f"{self._prefix}/v1/feedback",
                json.dumps(items).encode(),
                {"Content-Type": "application/json", **self._auth},
            )
        except (OSError, http.client.HTTPException) as exc:
            error = f"feedback: {type(exc).__name__}: {exc}"
        else:
            if status != 200:
                error = f"feedback: HTTP {status}: {payload[:200].decode('utf-8', 'replace')}"
        with self._changed:
            if error is None:
                self._labels_posted += len(rows)
            else:
                self._label_errors += len(rows)
                self._keep_error(error)
            self._changed.notify_all()

    def _hand_over(self, rows: list[int], *, final: bool) -> None:
        """Give ``on_labelled`` each full batch of labelled rows (and the rest when final)."""
        if self.on_labelled is None:
            return
        with self._changed:
            self._labelled_rows.extend(rows)
            batches: list[list[int]] = []
            while len(self._labelled_rows) >= self.labelled_batch:
                batches.append(self._labelled_rows[: self.labelled_batch])
                del self._labelled_rows[: self.labelled_batch]
            if final and self._labelled_rows:
                batches.append(self._labelled_rows[:])
                self._labelled_rows.clear()
        for batch in batches:
            try:
                self.on_labelled(self._labelled_frame(batch))
            except Exception as exc:  # the stream goes on; the console shows what broke
                with self._changed:
                    self._keep_error(f"on_labelled: {type(exc).__name__}: {exc}")
                continue
            with self._changed:
                self._handed += len(batch)
                self._changed.notify_all()

    def _labelled_frame(self, rows: list[int]) -> pd.DataFrame:
        requests = [self.traffic[row] for row in rows]
        return _frame(([r.features for r in requests], [r.label for r in requests]))


class _Client:
    """One keep-alive HTTP/1.1 connection, opened on first use and after an error."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._address = (host, port)
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """POST ``body``: status, headers and body of the answer; raises when none came.

        A reused connection the server has meanwhile closed (it closes idle keep-alive
        connections after a few seconds) is retried once on a fresh one: the request
        never reached the server.
        """
        for attempt in (1, 2):
            reused = self._connection is not None
            if self._connection is None:
                self._connection = http.client.HTTPConnection(*self._address, timeout=self._timeout)
            try:
                self._connection.request("POST", path, body, headers)
                response = self._connection.getresponse()
                return response.status, response.headers, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if not (reused and attempt == 1 and isinstance(exc, _STALE)):
                    raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def traffic_progress(console: Console | None = None, *, transient: bool = False) -> Progress:
    """A Rich progress display for live traffic; update its task with ``progress_fields()``.

    Columns: description, bar, requests done / total, then the sending rate, failures,
    the champion's and the candidate's (challenger's) share of the newest answers and
    their accuracy against the true labels, and the time elapsed.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TrafficColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


class TrafficColumn(ProgressColumn):
    """Rate, failures, champion / candidate share and accuracy, from a task's fields."""

    def render(self, task: Task) -> Text:
        """The column's text (fields missing before the first update show as blanks)."""
        fields = task.fields
        failed = int(fields.get("failed", 0))
        accuracy = fields.get("accuracy")
        text = Text(f"{float(fields.get('rate', 0.0)):5.1f} req/s  ")
        text.append(f"{failed} failed", style="bold red" if failed else "dim")
        text.append(f"  champion {float(fields.get('champion', 0.0)):4.0%}", style="green")
        text.append(f"  candidate {float(fields.get('candidate', 0.0)):4.0%}", style="cyan")
        text.append("  accuracy " + ("  – " if accuracy is None else f"{accuracy:4.0%}"))
        return text
