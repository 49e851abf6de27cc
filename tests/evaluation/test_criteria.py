"""A registered criterion adds its rows to every scorecard verdict, after the built-ins."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from shipyard.config import Scorecard
from shipyard.evaluation import CriterionResult, Measurements, ScorecardResult, compare
from shipyard.evaluation.criteria import (
    Criterion,
    bounded,
    register,
    registered_criteria,
    unregister,
)
from tests.support.synthetic import binary_frame, card, logistic, measured

CARD = card(primary={"metric": "roc_auc"}, max_size_mb=100)
BUILT_IN = ("primary", "metric", "calibration", "fairness", "latency", "size")


class SizeAgainstChampion(Criterion):
    """No more than half as big again as the champion."""

    name = "relative_size"

    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        ceiling = None if champion is None else 1.5 * champion.size_mb
        theirs = None if champion is None else champion.size_mb
        return [bounded("size vs champion", "size", candidate.size_mb, theirs, ceiling=ceiling)]


@pytest.fixture
def relative_size() -> Iterator[None]:
    register(SizeAgainstChampion)
    yield
    unregister(SizeAgainstChampion.name)
    assert tuple(c.name for c in registered_criteria()) == BUILT_IN


@pytest.fixture(scope="module")
def big() -> Measurements:
    frame = binary_frame()
    return measured(logistic(frame, size_bytes=4_000_000), frame, CARD)


@pytest.fixture(scope="module")
def small() -> Measurements:
    frame = binary_frame()
    return measured(logistic(frame, size_bytes=2_000_000), frame, CARD)


def test_a_registered_criterion_decides_the_verdict(
    relative_size: None, big: Measurements, small: Measurements
) -> None:
    assert compare(CARD, small, big).passed  # half the champion's size

    result = compare(CARD, big, small)  # twice the champion's size

    assert not result.passed
    assert [row.kind for row in result.rows] == ["primary", "size", "size"]
    (failing,) = result.failing
    assert failing.name == "size vs champion" and failing.bound == "≤ 3 MB"
    assert failing.candidate == pytest.approx(4.0) and failing.delta == pytest.approx(2.0)
    again = ScorecardResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result  # stored with the version like any other row


def test_without_it_the_same_candidate_passes(big: Measurements, small: Measurements) -> None:
    assert tuple(c.name for c in registered_criteria()) == BUILT_IN
    result = compare(CARD, big, small)
    assert result.passed and [row.kind for row in result.rows] == ["primary", "size"]
