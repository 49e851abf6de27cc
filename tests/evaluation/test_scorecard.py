"""compare(): every kind of criterion, passing and failing, and the result's round trip."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console

from shipyard.config import Scorecard
from shipyard.errors import EvaluationError
from shipyard.evaluation import CriterionResult, Measurements, ScorecardResult, compare
from tests.support.synthetic import binary_frame, card, logistic, measured

WEST = {"column": "region", "value": "west"}
YOUNG = {"query": "x1 < 0"}
# Everything the cases below compare on, measured once per model.
FULL = card(
    primary={"metric": "roc_auc"},
    metrics=[
        {"metric": "recall", "slice": WEST},
        {"metric": "accuracy", "slice": YOUNG},
        {"metric": "log_loss"},
    ],
    calibration={"max_ece": 1.0},
    fairness=[{"metric": "recall", "column": "region", "max_gap": 1.0}],
    latency={"batch_size": 32, "repeats": 10},
)


@pytest.fixture(scope="module")
def strong() -> Measurements:
    frame = binary_frame()
    return measured(logistic(frame, load_seconds=0.5, size_bytes=4_000_000), frame, FULL)


@pytest.fixture(scope="module")
def weak() -> Measurements:
    frame = binary_frame()
    return measured(logistic(frame, ["x3"]), frame, FULL)


def _only(result: ScorecardResult) -> CriterionResult:
    assert len(result.rows) == 1, result.rows
    row = result.rows[0]
    assert result.passed == row.passed
    return row


Case = Callable[[Measurements, float], dict[str, Any]]


def _value(m: Measurements, metric: str, label: str | None = None) -> float:
    found = m.value(metric, label)
    assert found is not None
    return found


CASES: dict[str, tuple[Case, str, str]] = {
    "primary floor": (
        lambda m, d: {"primary": {"metric": "roc_auc", "min": _value(m, "roc_auc") + d}},
        "roc_auc",
        "primary",
    ),
    "primary ceiling (lower is better)": (
        lambda m, d: {"primary": {"metric": "log_loss", "max": _value(m, "log_loss") - d}},
        "log_loss",
        "primary",
    ),
    "secondary metric on a column slice": (
        lambda m, d: {
            "metrics": [
                {
                    "metric": "recall",
                    "slice": WEST,
                    "min": _value(m, "recall", "region == 'west'") + d,
                }
            ]
        },
        "recall on region == 'west'",
        "metric",
    ),
    "secondary metric on a query slice": (
        lambda m, d: {
            "metrics": [
                {"metric": "accuracy", "slice": YOUNG, "min": _value(m, "accuracy", "x1 < 0") + d}
            ]
        },
        "accuracy on x1 < 0",
        "metric",
    ),
    "calibration": (
        lambda m, d: {"calibration": {"max_ece": _value(m, "ece") - d}},
        "ece",
        "calibration",
    ),
    "fairness": (
        lambda m, d: {
            "fairness": [
                {
                    "metric": "recall",
                    "column": "region",
                    "max_gap": m.fairness["recall gap across region"].gap - d,  # type: ignore[operator]
                }
            ]
        },
        "recall gap across region",
        "fairness",
    ),
    "p50 latency": (
        lambda m, d: {"latency": {"max_p50_ms": 1e6 if d < 0 else 1e-6}},
        "p50 latency, 1 row",
        "latency",
    ),
    "p95 latency": (
        lambda m, d: {"latency": {"max_p95_ms": 1e6 if d < 0 else 1e-6}},
        "p95 latency, 1 row",
        "latency",
    ),
    "p99 latency": (
        lambda m, d: {"latency": {"max_p99_ms": 1e6 if d < 0 else 1e-6}},
        "p99 latency, 1 row",
        "latency",
    ),
    "batch p99 latency": (
        lambda m, d: {"latency": {"batch_size": 32, "max_batch_p99_ms": 1e6 if d < 0 else 1e-6}},
        "p99 latency, 32 rows",
        "latency",
    ),
    "load time": (
        lambda m, d: {"latency": {"max_load_seconds": 0.5 - d}},
        "load time",
        "load",
    ),
    "size": (lambda m, d: {"max_size_mb": 4.0 - d}, "size", "size"),
}


@pytest.mark.parametrize("passing", [True, False], ids=["pass", "fail"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_criterion_passes_and_fails(
    case: str, passing: bool, strong: Measurements, weak: Measurements
) -> None:
    build, name, kind = CASES[case]
    # Bounds 0.01 on the lenient side pass, 0.01 on the strict side fail.
    scorecard = card(**build(strong, -0.01 if passing else 0.01))
    row = _only(compare(scorecard, strong, weak))
    assert (row.name, row.kind, row.passed) == (name, kind, passing)
    assert row.candidate is not None and row.champion is not None
    assert row.delta == pytest.approx(row.candidate - row.champion)


def _margin(metric: str, margin: float) -> Scorecard:
    return card(primary={"metric": metric, "min_margin": margin})


def test_margin_over_the_champion_higher_is_better(
    strong: Measurements, weak: Measurements
) -> None:
    row = _only(compare(_margin("roc_auc", 0.005), strong, weak))
    assert (row.name, row.kind, row.bound, row.passed) == (
        "roc_auc vs champion", "margin", "≥ champion + 0.005", True
    )  # fmt: skip
    assert row.delta == pytest.approx(_value(strong, "roc_auc") - _value(weak, "roc_auc"))
    assert not _only(compare(_margin("roc_auc", 0.005), weak, strong)).passed
    # A negative margin tolerates a small regression, and no more.
    gap = _value(strong, "roc_auc") - _value(weak, "roc_auc")
    tolerant = _only(compare(_margin("roc_auc", -(gap + 0.001)), weak, strong))
    assert tolerant.passed and tolerant.bound.startswith("≥ champion − ")
    assert not _only(compare(_margin("roc_auc", -(gap - 0.001)), weak, strong)).passed
    # Equal to the champion passes a margin of 0.
    assert _only(compare(_margin("roc_auc", 0.0), strong, strong)).passed


def test_margin_over_the_champion_lower_is_better(strong: Measurements, weak: Measurements) -> None:
    assert _value(strong, "log_loss") < _value(weak, "log_loss")
    row = _only(compare(_margin("log_loss", 0.01), strong, weak))
    assert (row.bound, row.passed) == ("≤ champion − 0.01", True)
    assert row.delta is not None and row.delta < 0
    assert not _only(compare(_margin("log_loss", 0.01), weak, strong)).passed
    assert _only(compare(_margin("log_loss", -1.0), weak, strong)).bound == "≤ champion + 1"


def test_floor_and_margin_are_separate_rows(strong: Measurements) -> None:
    scorecard = card(primary={"metric": "roc_auc", "min": 0.99, "min_margin": 0.005})
    result = compare(scorecard, strong, None)
    assert [(r.name, r.bound, r.passed) for r in result.rows] == [
        ("roc_auc", "≥ 0.99", False),
        ("roc_auc vs champion", "≥ champion + 0.005", True),
    ]
    assert result.rows[1].detail == "no champion"
    assert result.rows[1].champion is None and result.rows[1].delta is None
    assert not result.passed
    assert [row.name for row in result.failing] == ["roc_auc"]


def test_undefined_and_unmeasured_values_fail(strong: Measurements) -> None:
    lonely = card(
        fairness=[{"metric": "recall", "column": "region", "max_gap": 1.0, "min_rows": 50}]
    )
    frame = binary_frame(rows=100)  # every group below min_rows
    few = measured(logistic(frame), frame, lonely)
    row = _only(compare(lonely, few, None))
    assert not row.passed and row.candidate is None
    assert "fewer than two groups" in row.detail
    no_latency = measured(logistic(frame), frame, card())
    latency = _only(compare(card(latency={"max_p99_ms": 1e6}), no_latency, None))
    assert not latency.passed and "could not be measured" in latency.detail
    with pytest.raises(EvaluationError, match="measured without the criterion"):
        compare(lonely, no_latency, None)


def test_result_round_trips_exactly_through_json(strong: Measurements, weak: Measurements) -> None:
    scorecard = FULL.model_copy(
        update={
            "primary": card(primary={"metric": "roc_auc", "min": 0.6, "min_margin": 0.5}).primary,
            "latency": card(latency={"max_p50_ms": 1e6, "max_load_seconds": 9}).latency,
            "max_size_mb": 1.0,
        }
    )
    result = compare(scorecard, strong, weak)
    assert [row.kind for row in result.rows] == [
        "primary", "margin", "metric", "metric", "metric", "calibration", "fairness",
        "latency", "load", "size",
    ]  # fmt: skip
    assert result.rows[2].bound == "reported only" and result.rows[2].passed
    again = ScorecardResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False)))
    assert again == result
    assert again.created_at.tzinfo is not None


def test_render_shows_every_row_with_its_verdict(strong: Measurements, weak: Measurements) -> None:
    scorecard = card(primary={"metric": "roc_auc", "min": 0.6, "min_margin": 0.5}, max_size_mb=10)
    table = compare(scorecard, strong, weak).render()
    assert [c.header for c in table.columns] == [
        "criterion", "candidate", "champion", "delta", "bound", "result"
    ]  # fmt: skip
    console = Console(width=160, record=True, color_system="truecolor", file=io.StringIO())
    console.print(table)
    text = console.export_text(clear=False)
    assert "FAILED" in text and "roc_auc vs champion" in text and "≥ champion + 0.5" in text
    assert text.count("PASS") == 2 and text.count("FAIL") == 2  # the title says FAILED
    assert "4.00 MB" in text
    styled = console.export_html()
    assert "#008000" in styled and "#800000" in styled  # green PASS, red FAIL
