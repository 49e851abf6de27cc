"""Performance on the labels that exist: late labels measured, and "unknown" with an ETA."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from shipyard.cli import run
from shipyard.config import AlertRoute, Config
from shipyard.levels import rank
from shipyard.logs.writer import LabelRecord, PredictionBatch, PredictionLogWriter
from shipyard.models.served import load_served_model
from shipyard.monitoring.performance import (
    LabelArrival,
    label_arrival,
    labels_expected,
)
from shipyard.monitoring.run import run_monitor
from shipyard.registry.aliases import move_alias
from tests.support import AlertReceiver, project_of


class ChurnLog:
    """The churn champion's predictions and labels, written with chosen times."""

    def __init__(self, config: Config) -> None:
        project = project_of(config)
        move_alias(project.store, project.client, "churn", "champion", "1", action="promote")
        self.config = config
        self.root = config.resolve(config.serving.logs)
        self.model = load_served_model(project.client, "churn", "1")
        self.golden = pd.read_csv(config.root / "data" / "golden.csv")

    def predict(self, times: Sequence[datetime], prefix: str) -> tuple[list[int], np.ndarray]:
        """Log the model's real predictions of golden rows, one request per time; return
        the rows' truths and P(churn)."""
        rows = self.golden.iloc[np.arange(len(times)) % len(self.golden)]
        columns = self.model.spec.columns
        matrix = rows[list(columns)].to_numpy(dtype=object)
        found = self.model.predict(rows[list(columns)])
        classes, probabilities = self.model.classes, found.probabilities
        assert classes is not None and list(classes) == [0, 1] and probabilities is not None
        with PredictionLogWriter(self.root) as writer:
            for i, at in enumerate(times):
                writer.log(
                    PredictionBatch(
                        request_id=f"{prefix}{i}",
                        time=at,
                        model="churn",
                        version="1",
                        role="live",
                        columns=tuple(columns),
                        matrix=matrix[[i]],
                        labels=found.labels[[i]],
                        probabilities=probabilities[[i]],
                        latency_ms=1.0,
                        status="ok",
                    )
                )
        return [int(value) for value in rows["churned"]], probabilities[:, 1]

    def label(self, ids: Sequence[str], truths: Sequence[int], arrived: Sequence[datetime]) -> None:
        """Log labels as the server takes them, at ``arrived``."""
        with PredictionLogWriter(self.root, kind="labels") as writer:
            for rid, truth, at in zip(ids, truths, arrived, strict=True):
                writer.log(
                    LabelRecord(request_id=rid, time=at, model="churn", label=truth, received_at=at)
                )


def with_webhook(config: Config, url: str) -> Config:
    route = AlertRoute(kind="webhook", url=url, routing_key=None, min_level="inspect")
    settings = config.monitoring.model_copy(update={"routes": [route]})
    return config.model_copy(update={"monitoring": settings})


def test_labels_later_than_the_feature_window_are_measured(trained_copy: Config) -> None:
    log = ChurnLog(trained_copy)
    now = datetime.now(UTC)
    # 3,000 predictions 10 s apart; each label arrives 1,000 predictions late.
    times = [now - timedelta(seconds=10 * (3000 - i)) for i in range(3000)]
    truths, scores = log.predict(times, "late-")
    log.label([f"late-{i}" for i in range(2000)], truths[:2000], times[1000:])

    result = run_monitor(
        project_of(trained_copy),
        "churn",
        window="last:1000",
        performance_window="last:2000",
        alerts=False,
        report=False,
    )
    performance = result.performance or {}
    # The feature window holds no label (all that the old monitor looked at) …
    assert performance["feature_window"] == {"predictions": 1000, "labelled": 0, "share": 0.0}
    assert performance["coverage"] == 0.0
    # … the performance window holds the 2,000 labelled predictions before it, measured.
    assert performance["labelled"] == 2000 and performance["status"] == "measured"
    assert performance["performance_window"]["share"] == 1.0
    auc = roc_auc_score(truths[:2000], scores[:2000])  # the scorecard's unsliced metric
    assert performance["metrics"] == {"roc_auc": pytest.approx(auc)}
    assert performance["lag_seconds"]["p50"] == pytest.approx(10_000, abs=1e-3)
    assert performance["lag_seconds"]["max"] == pytest.approx(10_000, abs=1e-3)
    signals = {s["name"]: s for s in result.signals}
    assert signals["performance:unknown"]["level"] == "ok"
    assert signals["performance:roc_auc"]["score"] == pytest.approx(auc)


def test_too_few_labels_is_unknown_with_an_eta_until_enough_arrive(
    trained_copy: Config,
    alert_receiver: Callable[..., AlertReceiver],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver = alert_receiver("webhook")
    config = with_webhook(trained_copy, receiver.url)
    assert config.monitoring.min_labelled == 50
    log = ChurnLog(config)
    now = datetime.now(UTC)
    # 300 predictions over the last 2.5 hours; 30 labels arrived one a minute until now.
    times = [now - timedelta(hours=3) + timedelta(seconds=30 * i) for i in range(300)]
    truths, _ = log.predict(times, "eta-")
    first = now - timedelta(minutes=30)
    arrivals = [first + timedelta(minutes=k) for k in range(30)]
    log.label([f"eta-{i}" for i in range(30)], truths[:30], arrivals)

    result = run_monitor(project_of(config), "churn", window="last:300", report=False)
    performance = result.performance or {}
    assert (performance["labelled"], performance["needed"]) == (30, 50)
    assert performance["status"] == "unknown"
    # 30 labels over the 30 minutes since the first: 60 an hour, so 20 more in 20 minutes.
    elapsed = (result.created_at - first).total_seconds()
    expected = performance["expected"]
    assert expected["seconds"] == pytest.approx(20 * elapsed / 30, rel=1e-6)
    assert expected["seconds"] == pytest.approx(1200, rel=0.05)  # the run takes < 90 s
    assert performance["arrival"]["per_hour"] == pytest.approx(60, rel=0.05)
    assert result.to_dict()["performance"]["expected"] == expected  # what --json prints
    unknown = {s["name"]: s for s in result.signals}["performance:unknown"]
    assert (unknown["level"], unknown["score"]) == ("inspect", 30)
    assert not any(s["name"] == "performance:roc_auc" for s in result.signals)
    assert rank(result.level) >= rank("inspect")  # never a silent "ok"
    assert "performance:unknown" in (result.alerts or {})["opened"]
    opened = [b for b in receiver.received if b["signal"] == "performance:unknown"]
    assert [(b["status"], b["level"]) for b in opened] == [("opened", "inspect")]
    assert opened[0]["evidence"]["expected"]["needed"] == 50

    # The CLI says it too, with the time (its --json prints result.to_dict()).
    monkeypatch.chdir(config.root)
    assert run(["monitor", "run", "churn", "--window", "last:300", "--no-alerts"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    said = "Performance UNKNOWN: 30 labelled predictions in the performance window (last 2000"
    assert said in out
    assert re.search(r"20 more labels expected in about 2\d min at (59|60)\S* labels per hour", out)
    assert "Label coverage: feature window 10.0% (30 of 300)" in out

    # 40 more labels arrive: enough, so the signal is ok and the alert resolves.
    log.label([f"eta-{i}" for i in range(30, 70)], truths[30:70], [datetime.now(UTC)] * 40)
    result = run_monitor(project_of(config), "churn", window="last:300", report=False)
    performance = result.performance or {}
    assert performance["labelled"] == 70 and performance["status"] == "measured"
    unknown = {s["name"]: s for s in result.signals}["performance:unknown"]
    assert unknown["level"] == "ok"
    assert "performance:unknown" in (result.alerts or {})["resolved"]
    events = [b["status"] for b in receiver.received if b["signal"] == "performance:unknown"]
    assert events == ["opened", "resolved"]


def test_no_label_ever_is_unknown_and_says_so(trained_copy: Config) -> None:
    log = ChurnLog(trained_copy)
    now = datetime.now(UTC)
    log.predict([now - timedelta(seconds=300 - i) for i in range(250)], "none-")
    result = run_monitor(
        project_of(trained_copy), "churn", window="last:250", alerts=False, report=True
    )
    performance = result.performance or {}
    assert performance["labelled"] == 0 and performance["metrics"] == {}
    assert performance["expected"]["seconds"] is None
    assert "no label has arrived for this version yet" in performance["expected"]["reason"]
    assert {s["name"]: s["level"] for s in result.signals}["performance:unknown"] == "inspect"
    report = Path(result.report_path or "").read_text(encoding="utf-8")
    assert "Performance UNKNOWN: 0 labelled predictions" in report


def test_eta_from_a_known_arrival_rate() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    every_minute = [now - timedelta(minutes=k) for k in range(1, 31)]
    arrival = label_arrival(every_minute, now=now)
    assert arrival.per_hour == pytest.approx(60.0)
    assert labels_expected(30, 50, arrival).seconds == pytest.approx(1200.0)
    assert labels_expected(60, 50, arrival).seconds == 0.0
    # A last:40 window never holds 50; a rolling 30-minute window holds about 30.
    assert labels_expected(30, 50, arrival, capacity=40).seconds is None
    rolling = labels_expected(30, 50, arrival, span=timedelta(minutes=30))
    assert rolling.seconds is None and "holds about 30" in rolling.reason
    # Over a since: period the rate counts from the period's start, not the first label.
    since = label_arrival(every_minute, now=now, start=now - timedelta(hours=1))
    assert since.per_hour == pytest.approx(30.0)
    quiet = label_arrival([], now=now, start=now - timedelta(hours=1), last_at=every_minute[-1])
    assert quiet == LabelArrival(0, 3600.0, every_minute[-1])
    assert "the last one at 2026-12-01 11:30 UTC" in labels_expected(0, 50, quiet).reason


def test_the_arrival_rate_holds_on_poisson_arrivals() -> None:
    # Labels arriving as a Poisson process at 120 an hour: the rate of the 30 newest, to
    # now, is Gamma-distributed around 30/29 × 120; its median over 1,000 replicates is
    # within 3 % of the true rate, for any seed (the sampling error is about 0.5 %).
    rng = np.random.default_rng(16)
    rate, n, replicates = 120 / 3600, 30, 1000
    gaps = rng.exponential(1 / rate, size=(replicates, n))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    # Each row: time back from now to the newest arrival, then between arrivals.
    back = np.cumsum(gaps, axis=1)
    estimates = [label_arrival(now.timestamp() - row, now=now).per_hour / 3600 for row in back]
    assert np.median(estimates) == pytest.approx(rate, rel=0.03)
    etas = np.array(
        [
            labels_expected(n, 50, label_arrival(now.timestamp() - r, now=now)).seconds
            for r in back[:200]
        ],
        dtype=float,
    )
    assert np.median(etas) == pytest.approx(20 / rate, rel=0.1)
