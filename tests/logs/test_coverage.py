"""Coverage: what a window's log lost, read by monitoring windows, label joins and guardrails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from shipyard.config import DeliverySettings
from shipyard.delivery.guardrails import evaluate_guardrails
from shipyard.delivery.rollout import Rollout
from shipyard.logs.losses import LossRecord, append_losses, log_coverage, read_losses
from shipyard.logs.reader import join_labels, joined_coverage
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.monitoring.log_window import WindowSpec, load_window

SINCE = datetime.now(UTC) - timedelta(minutes=5)


def log(root: Path, version: str, count: int, *, prefix: str, failed_every: int = 0) -> None:
    with PredictionLogWriter(root) as writer:
        for i in range(count):
            fail = failed_every and i % failed_every == 0
            writer.log(
                PredictionBatch(
                    request_id=f"{prefix}{i}",
                    time=datetime.now(UTC),
                    model="churn",
                    version=version,
                    role="live",
                    columns=("x",),
                    matrix=np.array([[float(i)]]),
                    labels=None if fail else np.array([0]),
                    probabilities=None,
                    latency_ms=10.0,
                    status="error" if fail else "ok",
                )
            )


def lose(root: Path, version: str, rows: int, at: datetime | None = None) -> None:
    when = at or datetime.now(UTC)
    append_losses(root, "predictions", [LossRecord(when, "churn", version, rows, "ENOSPC")])


def rollout() -> Rollout:
    return Rollout(
        id=7,
        model="churn",
        candidate="2",
        champion="1",
        strategy="canary",
        steps=(10.0, 50.0, 100.0),
        step_index=0,
        step_seconds=0.0,
        min_requests=0,
        state="running",
        reason="",
        step_started_at=SINCE,
        history=({"at": SINCE.isoformat(), "to": "running", "evidence": {}},),
    )


def test_losses_are_read_by_window_version_and_role(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    lose(tmp_path, "1", 5, now - timedelta(hours=2))
    lose(tmp_path, "1", 7, now)
    lose(tmp_path, "2", 11, now)
    with (tmp_path / "predictions" / "model=churn" / "losses.ndjson").open("ab") as sidecar:
        sidecar.write(b'{"cut')  # a writer killed mid-line: skipped
    assert [loss.rows for loss in read_losses(tmp_path, "churn")] == [5, 7, 11]
    hour = now - timedelta(hours=1)
    assert log_coverage(tmp_path, "churn", 100, since=hour).lost == 18
    assert log_coverage(tmp_path, "churn", 100, since=hour, versions=["1"]).lost == 7
    assert log_coverage(tmp_path, "churn", 100, since=hour, roles=["shadow"]).lost == 0
    empty = log_coverage(tmp_path, "fraud", 0)
    assert (empty.ratio, empty.complete, empty.enough(0.99)) == (1.0, True, True)


def test_a_monitoring_window_and_a_label_join_carry_their_coverage(tmp_path: Path) -> None:
    log(tmp_path, "1", 95, prefix="r")
    lose(tmp_path, "1", 5)
    window = load_window(tmp_path, "churn", WindowSpec.parse("last:95"), version="1")
    assert window.coverage is not None
    assert (window.coverage.logged, window.coverage.lost) == (95, 5)
    assert window.coverage.ratio == 0.95 and not window.coverage.enough(0.99)
    assert "5 were lost" in window.coverage.describe()
    other = load_window(tmp_path, "churn", WindowSpec.parse("last:95"), version="2")
    assert other.coverage is not None and other.coverage.lost == 0  # another version's window

    joined = join_labels(tmp_path, "churn", since=SINCE)
    coverage = joined_coverage(joined)
    assert coverage is not None and (coverage.logged, coverage.lost) == (95, 5)


def test_a_guardrail_breach_on_an_incomplete_window_does_not_act(tmp_path: Path) -> None:
    log(tmp_path, "1", 600, prefix="c")
    log(tmp_path, "2", 300, prefix="k", failed_every=4)  # 25 % errors: a clear breach
    settings = DeliverySettings.model_validate({})
    report = evaluate_guardrails(tmp_path, rollout(), since=SINCE, settings=settings)
    assert report.verdict == "breach" and "log_coverage" not in report.evidence()

    lose(tmp_path, "2", 5)  # 5 of 905: 99.4 % coverage, above the minimum: acts, and says so
    report = evaluate_guardrails(tmp_path, rollout(), since=SINCE, settings=settings)
    assert report.verdict == "breach" and "5 were lost" in report.reason
    assert report.evidence()["log_coverage"]["lost"] == 5

    lose(tmp_path, "2", 95)  # 100 of 1,000 lost: 90 %
    report = evaluate_guardrails(tmp_path, rollout(), since=SINCE, settings=settings)
    assert report.verdict == "continue"
    assert "incomplete" in report.reason and "errors: candidate" in report.reason
    assert report.evidence()["log_coverage"] == {"logged": 900, "lost": 100, "ratio": 0.9}
    lenient = evaluate_guardrails(
        tmp_path, rollout(), since=SINCE, settings=settings, min_log_coverage=0.8
    )
    assert lenient.verdict == "breach"
