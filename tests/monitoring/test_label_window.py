"""The performance window: labelled predictions chosen by label arrival, on constructed logs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shipyard.errors import ConfigError
from shipyard.logs.writer import LabelRecord, PredictionBatch, PredictionLogWriter
from shipyard.monitoring.label_window import LabelWindowSpec, load_label_window
from shipyard.monitoring.log_window import WindowSpec, load_window
from shipyard.monitoring.performance import label_coverage, label_lag

NOW = datetime.now(UTC)


def predict(
    root: Path,
    ids: Sequence[str],
    times: Sequence[datetime],
    *,
    version: str = "1",
    role: str = "live",
) -> None:
    """Log one single-row prediction per id, at its time, as a server would."""
    with PredictionLogWriter(root) as writer:
        for i, (rid, at) in enumerate(zip(ids, times, strict=True)):
            writer.log(
                PredictionBatch(
                    request_id=rid,
                    time=at,
                    model="m",
                    version=version,
                    role=role,
                    columns=("x",),
                    matrix=np.array([[float(i)]]),
                    labels=np.array([i % 2]),
                    probabilities=np.array([[0.4, 0.6]]),
                    latency_ms=1.0,
                    status="ok",
                )
            )


def label(
    root: Path,
    ids: Sequence[str],
    arrived: Sequence[datetime],
    values: Sequence[int] | None = None,
    *,
    dated: Sequence[datetime] | None = None,
) -> None:
    """Log labels that the server took at ``arrived``, dated ``dated`` (default: the same)."""
    values = values if values is not None else [i % 2 for i in range(len(ids))]
    dated = dated if dated is not None else arrived
    with PredictionLogWriter(root, kind="labels") as writer:
        for rid, at, value, when in zip(ids, arrived, values, dated, strict=True):
            writer.log(
                LabelRecord(request_id=rid, time=when, model="m", label=value, received_at=at)
            )


def test_labels_that_lag_past_the_feature_window_are_in_the_performance_window(
    tmp_path: Path,
) -> None:
    # 3,000 predictions 10 s apart; each label arrives 1,000 predictions (10,000 s) late.
    start = NOW - timedelta(hours=9)
    times = [start + timedelta(seconds=10 * i) for i in range(3000)]
    ids = [f"r{i}" for i in range(3000)]
    predict(tmp_path, ids, times)
    label(tmp_path, ids[:2000], times[1000:3000])

    features = load_window(tmp_path, "m", WindowSpec.parse("last:1000"), version="1")
    assert features.rows == 1000 and not features.labelled.any()  # what the old code measured
    window = load_label_window(tmp_path, "m", LabelWindowSpec.parse("last:500"), version="1")
    assert window.rows == 500 and window.total == 2000
    assert list(window.request_ids) == ids[1500:2000]  # the newest labelled, oldest first
    assert window.labels == [i % 2 for i in range(1500, 2000)]
    lag = label_lag(window.times, window.label_times)
    assert (lag.p50, lag.max, lag.negative) == (10_000.0, 10_000.0, 0)
    assert window.spanned == 500  # every prediction in its span is labelled
    assert window.last_arrival == times[2999]


def test_since_picks_labels_by_arrival_not_prediction_time(tmp_path: Path) -> None:
    old = [f"old{i}" for i in range(100)]  # predicted 10 days ago, labelled an hour ago
    mid = [f"mid{i}" for i in range(100)]  # predicted 3 h ago, labelled 2.5 h ago
    new = [f"new{i}" for i in range(100)]  # predicted 30 min ago, not labelled yet
    predict(tmp_path, old, [NOW - timedelta(days=10, seconds=i) for i in range(100)])
    predict(tmp_path, mid, [NOW - timedelta(hours=3, seconds=i) for i in range(100)])
    predict(tmp_path, new, [NOW - timedelta(minutes=30, seconds=i) for i in range(100)])
    # The old labels are dated when their outcome happened (10 days ago), but arrived now.
    label(
        tmp_path,
        old,
        [NOW - timedelta(hours=1)] * 100,
        dated=[NOW - timedelta(days=10)] * 100,
    )
    label(tmp_path, mid, [NOW - timedelta(hours=2, minutes=30)] * 100)

    recent = load_label_window(tmp_path, "m", LabelWindowSpec.parse("since:2h", now=NOW))
    assert sorted(recent.request_ids) == sorted(old)
    wider = load_label_window(tmp_path, "m", LabelWindowSpec.parse("since:3h", now=NOW))
    assert sorted(wider.request_ids) == sorted(old + mid)
    # A predicate on prediction time picks the opposite rows, and finds no label.
    by_prediction = load_window(tmp_path, "m", WindowSpec.parse("since:2h", now=NOW))
    assert set(by_prediction.request_ids) == set(new) and not by_prediction.labelled.any()
    # Nothing arrived in the last 10 minutes, but labels did arrive before: it says when.
    quiet = load_label_window(tmp_path, "m", LabelWindowSpec.parse("since:10m", now=NOW))
    assert quiet.rows == 0 and quiet.total == 200
    assert quiet.last_arrival == NOW - timedelta(hours=1)


def test_coverage_and_lag_equal_hand_computed_values(tmp_path: Path) -> None:
    t0 = NOW - timedelta(hours=1)
    times = [t0 + timedelta(minutes=i) for i in range(10)]
    ids = [f"p{i}" for i in range(10)]
    predict(tmp_path, ids, times)
    # Rows of another version and a shadow row, labelled, in the same minutes: not counted.
    predict(tmp_path, ["v2-a", "v2-b"], [times[3], times[6]], version="2")
    predict(tmp_path, ["shadow"], [times[5]], role="shadow")
    label(tmp_path, ["v2-a", "v2-b", "shadow"], [NOW, NOW, NOW])
    # p1, p3, p4, p8 labelled 10 s × their index late; p8 relabelled: the latest label wins.
    labelled = [1, 3, 4, 8]
    label(
        tmp_path,
        [ids[i] for i in labelled],
        [times[i] + timedelta(seconds=10 * i) for i in labelled],
        [1, 0, 1, 0],
    )
    label(tmp_path, ["p8"], [times[8] + timedelta(seconds=20)], [1])  # an earlier one
    label(tmp_path, ["p8"], [times[8] + timedelta(seconds=90)], [1])  # the latest

    window = load_label_window(tmp_path, "m", LabelWindowSpec.parse("last:3"), version="1")
    assert list(window.request_ids) == ["p3", "p4", "p8"] and window.labels == [0, 1, 1]
    # Its span is p3 … p8: six predictions of version 1 (live), three labelled.
    coverage = label_coverage(window.spanned, window.rows)
    assert (coverage.predictions, coverage.labelled, coverage.share) == (6, 3, 0.5)
    lag = label_lag(window.times, window.label_times)
    # Lags 30, 40, 90 s: median 40; 95th percentile 40 + 0.9 × (90 − 40) = 85 (linear).
    assert (lag.n, lag.p50, lag.max) == (3, 40.0, 90.0)
    assert lag.p95 == pytest.approx(85.0)
    assert window.total == 4 and window.last_arrival == times[8] + timedelta(seconds=90)
    # The feature window of the last 5 predictions (p5 … p9) holds one labelled: p8.
    features = load_window(tmp_path, "m", WindowSpec.parse("last:5"), version="1")
    share = label_coverage(features.rows, int(features.labelled.sum())).share
    assert share == pytest.approx(1 / 5)
    shadow = load_label_window(
        tmp_path, "m", LabelWindowSpec.parse("last:100"), include_shadow=True
    )
    assert set(shadow.request_ids) == {"p1", "p3", "p4", "p8", "v2-a", "v2-b", "shadow"}


def test_an_unlabelled_log_gives_an_empty_window(tmp_path: Path) -> None:
    predict(tmp_path, ["a", "b"], [NOW - timedelta(minutes=2), NOW - timedelta(minutes=1)])
    for text in ("last:10", "since:1d"):
        window = load_label_window(tmp_path, "m", LabelWindowSpec.parse(text))
        assert (window.rows, window.spanned, window.total, window.last_arrival) == (0, 0, 0, None)


def test_performance_window_specs() -> None:
    assert LabelWindowSpec.parse("last:2000") == LabelWindowSpec("last", count=2000)
    rolling = LabelWindowSpec.parse("since:7d", now=NOW)
    assert rolling.start == NOW - timedelta(days=7) and rolling.span == timedelta(days=7)
    fixed = LabelWindowSpec.parse("since:2026-11-24T09:00:00+00:00")
    assert fixed.span is None and fixed.describe() == "labels since 2026-11-24 09:00"
    assert LabelWindowSpec.parse("last:50").describe() == "last 50 labelled"
    for bad in ("last:0", "range:2026-11-01/2026-11-02", "since:soon", "7d"):
        with pytest.raises(ConfigError) as caught:
            LabelWindowSpec.parse(bad)
        assert "monitoring.performance_window" in str(caught.value.hint)
