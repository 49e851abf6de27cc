"""A small window neither alerts on feature drift nor on performance from a few labels:
too few labels is "performance unknown", a signal of its own."""

from __future__ import annotations

from datetime import UTC, datetime

from shipyard.config import Config
from shipyard.monitoring.run import MonitorResult, _signals

BREACH = {"feature": "age", "method": "kl", "score": 0.4, "level": "retrain", "bands": None}
PERFORMANCE = {
    "labelled": 20,
    "metrics": {"accuracy": 0.5, "roc_auc": 0.8},
    "breaches": [{"name": "performance:accuracy", "score": 0.5, "level": "retrain"}],
}


def _result(rows: int, labelled: int) -> MonitorResult:
    return MonitorResult(
        model="loans",
        version="1",
        window="last 600",
        rows=rows,
        created_at=datetime.now(UTC),
        features=[BREACH],
        performance={**PERFORMANCE, "labelled": labelled},
    )


def test_too_few_rows_and_labels_raise_nothing() -> None:
    config = Config(monitoring={"min_rows": 200, "min_labelled": 50})
    signals = _signals(_result(rows=86, labelled=20), config)
    assert signals[0] == {
        "name": "feature:age",
        "method": "kl",
        "score": None,
        "level": "ok",
        "bands": None,
    }
    # No metric signal from 20 labels; performance is unknown, at the configured level.
    assert [(s["name"], s["level"], s["score"]) for s in signals[1:]] == [
        ("performance:unknown", "inspect", 20)
    ]


def test_enough_rows_and_labels_alert() -> None:
    config = Config(monitoring={"min_rows": 200, "min_labelled": 50})
    signals = _signals(_result(rows=600, labelled=80), config)
    levels = {s["name"]: s["level"] for s in signals}
    assert levels == {
        "feature:age": "retrain",
        "performance:unknown": "ok",
        "performance:accuracy": "retrain",
        "performance:roc_auc": "ok",  # within its floor: an ok signal resolves its alert
    }
