"""The experiment's sequential test, simulated: peeking at every look keeps its error rates.

Each simulation runs many replicates at once (vectorised), looks every 50 observations
per arm, and stops at the first verdict, like the agent does. Tolerances are three
binomial standard errors of the replicate count, so any seed passes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from shipyard.delivery.experiment_stats import ExperimentTest, planned_ratio
from shipyard.delivery.sequential import MeanStats
from shipyard.errors import ConfigError

REPLICATES = 2000
BLOCK = 50  # observations per arm between looks
LOOKS = 160  # up to 8,000 per arm: past the planned horizon of every case below
Side = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def _tolerance(rate: float) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / REPLICATES)


def _counts(block: int = BLOCK) -> NDArray[np.float64]:
    return block * np.arange(1, LOOKS + 1, dtype=np.float64)


def _bernoulli(rng: np.random.Generator, rate: float, block: int = BLOCK) -> Side:
    """Cumulative (count, mean, sample variance) of 0/1 outcomes at each look."""
    n = _counts(block)
    mean = rng.binomial(block, rate, size=(REPLICATES, LOOKS)).cumsum(1) / n
    return n, mean, mean * (1 - mean) * n / (n - 1)


def _normal(rng: np.random.Generator, mu: float, sd: float) -> Side:
    """The same for Gaussian outcomes, from each block's sum and within-block squares."""
    n = _counts()
    sums = rng.normal(BLOCK * mu, sd * math.sqrt(BLOCK), size=(REPLICATES, LOOKS))
    within = sd**2 * rng.chisquare(BLOCK - 1, size=(REPLICATES, LOOKS))
    total = sums.cumsum(1)
    squares = within.cumsum(1) + (sums**2 / BLOCK).cumsum(1) - total**2 / n
    return n, total / n, squares / (n - 1)


def _first_verdicts(verdicts: NDArray[np.str_]) -> NDArray[np.str_]:
    """Each replicate's first verdict other than ``continue`` (else ``continue``)."""
    stopped = verdicts != "continue"
    index = stopped.argmax(axis=1)
    first = verdicts[np.arange(len(verdicts)), index]
    return np.where(stopped.any(axis=1), first, "continue")


def _rate(verdicts: NDArray[np.str_], *kinds: str) -> float:
    return float(np.isin(verdicts, kinds).mean())


@pytest.mark.parametrize("min_effect", [None, 0.05])
def test_peeking_at_equal_arms_keeps_false_winners_below_alpha(min_effect: float | None) -> None:
    rng = np.random.default_rng(1600 + (min_effect is None))
    test = ExperimentTest(alpha=0.05, power=0.8, min_effect=min_effect)
    a, b = _bernoulli(rng, 0.5), _bernoulli(rng, 0.5)
    first = _first_verdicts(test.pair_verdicts(a, b, test.alpha)[0])
    # 160 looks each, yet at most alpha (the test is conservative: ~1.5-3 % measured).
    assert _rate(first, "a", "b") <= 0.05 + _tolerance(0.05)
    # The same looks with a fixed-horizon two-sided z-test at 5 %: ~43 % false winners.
    z = (b[1] - a[1]) / np.sqrt(a[2] / a[0] + b[2] / b[0])
    assert (np.abs(z) > 1.96).any(axis=1).mean() > 0.3
    if min_effect is not None:
        assert _rate(first, "continue") == 0.0  # the planned horizon always ends it
        assert _rate(first, "no_difference") >= 0.95 - _tolerance(0.05)


def test_an_uneven_split_keeps_false_winners_below_alpha() -> None:
    rng = np.random.default_rng(1604)
    test = ExperimentTest(alpha=0.05, power=0.8, min_effect=0.05)
    a, b = _bernoulli(rng, 0.1), _bernoulli(rng, 0.1, block=BLOCK // 4)  # an 80/20 split
    first = _first_verdicts(test.pair_verdicts(a, b, test.alpha)[0])
    assert _rate(first, "a", "b") <= 0.05 + _tolerance(0.05)


def test_an_effect_of_min_effect_is_found_with_the_stated_power() -> None:
    rng = np.random.default_rng(1601)
    test = ExperimentTest(alpha=0.05, power=0.8, min_effect=0.05)
    first = _first_verdicts(
        test.pair_verdicts(_bernoulli(rng, 0.50), _bernoulli(rng, 0.55), test.alpha)[0]
    )
    assert _rate(first, "b") >= 0.8 - _tolerance(0.8)  # measured ~0.86
    assert _rate(first, "a") <= _tolerance(0.01)  # never the worse arm
    assert _rate(first, "continue") == 0.0


def test_a_continuous_lower_is_better_metric_keeps_both_error_rates() -> None:
    rng = np.random.default_rng(1602)
    test = ExperimentTest(alpha=0.05, power=0.8, min_effect=0.1, direction="lower_is_better")
    null = _first_verdicts(
        test.pair_verdicts(_normal(rng, 1.0, 1.0), _normal(rng, 1.0, 1.0), test.alpha)[0]
    )
    assert _rate(null, "a", "b") <= 0.05 + _tolerance(0.05)
    better = _first_verdicts(  # b's error is lower by min_effect: b is the better arm
        test.pair_verdicts(_normal(rng, 1.0, 1.0), _normal(rng, 0.9, 1.0), test.alpha)[0]
    )
    assert _rate(better, "b") >= 0.8 - _tolerance(0.8)


def test_three_equal_arms_split_alpha_over_the_pairs() -> None:
    rng = np.random.default_rng(1603)
    test = ExperimentTest(alpha=0.05, power=0.8, min_effect=0.05)
    alpha = test.pair_alpha(3)
    assert alpha == pytest.approx(0.05 / 3)
    arms = [_bernoulli(rng, 0.3) for _ in range(3)]
    pairs = [(0, 1), (0, 2), (1, 2)]
    verdicts = [test.pair_verdicts(arms[i], arms[j], alpha)[0] for i, j in pairs]
    # Any pair ever calling a difference bounds the chance of a false winner.
    any_difference = np.any([np.isin(v, ("a", "b")).any(axis=1) for v in verdicts], axis=0)
    assert any_difference.mean() <= 0.05 + _tolerance(0.05)


def test_decide_names_the_winner_and_the_tie() -> None:
    test = ExperimentTest(alpha=0.05, power=0.8, min_effect=0.05)
    clear = test.decide({"3": MeanStats(2000, 0.80, 0.16), "4": MeanStats(2000, 0.90, 0.09)})
    assert (clear.outcome, clear.winner) == ("winner", "4")
    assert clear.pairs[0].lower > 0
    # Equal arms with far more than the planned information: no difference.
    tie = test.decide({"3": MeanStats(9000, 0.8, 0.16), "4": MeanStats(9000, 0.8, 0.16)})
    assert (tie.outcome, tie.winner, tie.best) == ("no_difference", None, ("3", "4"))
    early = test.decide({"3": MeanStats(50, 0.2, 0.16), "4": MeanStats(50, 0.9, 0.09)})
    assert early.outcome == "continue" and "Waiting for 100" in early.reason
    three = test.decide(
        {a: MeanStats(4000, m, m * (1 - m)) for a, m in (("1", 0.7), ("2", 0.8), ("3", 0.9))}
    )
    assert (three.outcome, three.winner) == ("winner", "3")
    # 2 and 3 both beat the champion 1 and tie: the better mean wins, not the champion.
    beaten = {a: MeanStats(9000, m, m * (1 - m)) for a, m in (("1", 0.7), ("2", 0.9), ("3", 0.91))}
    assert test.decide(beaten).outcome == "no_difference"
    chosen = test.decide(beaten, control="1")
    assert (chosen.outcome, chosen.winner, chosen.best) == ("winner", "3", ("2", "3"))
    assert test.decide(beaten, control="2").outcome == "no_difference"
    assert three.to_dict()["pairs"][0]["alpha"] == pytest.approx(0.05 / 3)


def test_planned_horizon_and_settings() -> None:
    # r* = V/m² at the horizon; for two equal arms of variance s², n = 2 s² / (r* m²):
    # about twice the fixed-horizon z-test's 15.7 s²/m² at alpha 5 %, power 80 %.
    ratio = planned_ratio(0.05, 0.8)
    assert 2 / ratio == pytest.approx(30.4, rel=0.02)
    assert planned_ratio(0.05, 0.9) < ratio
    with pytest.raises(ConfigError):
        ExperimentTest(alpha=0.7)
    with pytest.raises(ConfigError):
        ExperimentTest(min_effect=-1.0)
    with pytest.raises(ConfigError):
        test = ExperimentTest()
        test.decide({"3": MeanStats(10, 0.5, 0.25)})
