"""The always-valid guardrail test: false alarms under peeking, power, passes, evidence.

The simulations peek at every experiment after each batch of 50 observations per side
up to 5,000 (100 looks), vectorised across experiments through
:meth:`SequentialTest.verdicts`, which :meth:`SequentialTest.decide` shares code with
(and is checked against below). Seeds are fixed so the stated numbers reproduce; the
assertions leave Monte Carlo slack so that they hold for any seed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import integrate, stats

from shipyard.delivery.sequential import (
    Decision,
    MeanStats,
    ProportionStats,
    SequentialTest,
)
from shipyard.errors import ConfigError

EXPERIMENTS = 2000
BATCH = 50
LOOKS = 100  # up to 5,000 observations per side
ALPHA = 0.05
# Three standard errors of a rate near alpha over 2,000 experiments.
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / EXPERIMENTS)
Z_ONE_SIDED = stats.norm.ppf(1 - ALPHA)

Side = tuple[np.ndarray, ...]


def _proportion_looks(rng: np.random.Generator, rate: float, per_batch: int = BATCH) -> Side:
    """Cumulative (count, successes) of each experiment at each look."""
    successes = rng.binomial(per_batch, rate, size=(EXPERIMENTS, LOOKS)).cumsum(axis=1)
    count = np.broadcast_to(per_batch * np.arange(1, LOOKS + 1), successes.shape)
    return count, successes


def _latency_looks(rng: np.random.Generator, scale: float) -> Side:
    """Cumulative (count, mean, variance) of log-normal latencies (ms) at each look."""
    sums = np.empty((EXPERIMENTS, LOOKS))
    squares = np.empty((EXPERIMENTS, LOOKS))
    for look in range(LOOKS):
        batch = scale * rng.lognormal(mean=3.0, sigma=1.0, size=(EXPERIMENTS, BATCH))
        sums[:, look] = batch.sum(axis=1)
        squares[:, look] = np.square(batch).sum(axis=1)
    count = np.broadcast_to(BATCH * np.arange(1, LOOKS + 1), sums.shape).astype(float)
    mean = sums.cumsum(axis=1) / count
    variance = (squares.cumsum(axis=1) - count * mean**2) / (count - 1)
    return count, mean, variance


def _naive_breaches(champion: Side, candidate: Side) -> np.ndarray:
    """A fixed-horizon one-sided z-test at ``ALPHA``, peeked at every look: any breach."""
    if len(champion) == 2:  # proportions: the pooled two-proportion z-test
        (n_a, x_a), (n_b, x_b) = champion, candidate
        pooled = (x_a + x_b) / (n_a + n_b)
        standard_error = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
        difference = x_b / n_b - x_a / n_a
    else:  # means: Welch's z
        (n_a, m_a, v_a), (n_b, m_b, v_b) = champion, candidate
        standard_error = np.sqrt(v_a / n_a + v_b / n_b)
        difference = m_b - m_a
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / standard_error
    return np.asarray((z >= Z_ONE_SIDED).any(axis=1))


def _first_decisions(verdicts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per experiment, the first verdict other than ``continue`` and the samples it took.

    That is what the agent acts on; ``"continue"`` and ``inf`` where none came.
    """
    decided = verdicts != "continue"
    first = decided.argmax(axis=1)
    any_decided = decided.any(axis=1)
    verdict = np.where(any_decided, verdicts[np.arange(len(verdicts)), first], "continue")
    samples = np.where(any_decided, (first + 1) * BATCH, np.inf)
    return verdict, samples


# --- false alarms under continuous peeking ---------------------------------------------


@pytest.mark.parametrize(
    ("rate", "champion_share"),
    [(0.02, 1), (0.002, 1), (0.02, 9)],
    ids=["error-rate-2%", "rare-errors-0.2%", "canary-10%-of-traffic"],
)
def test_false_alarms_on_rates_stay_below_alpha_under_peeking(
    rate: float, champion_share: int
) -> None:
    """A/A on error rates, 2,000 experiments, 100 looks each (seed 1).

    Measured breach rate at any look, sequential vs naive z-test: 2.2 % vs 31.0 % at a
    2 % error rate; 0.55 % vs 21.6 % at 0.2 %; 0.35 % vs 32.7 % when the champion gets
    nine times the candidate's traffic (450 vs 50 per batch).
    """
    rng = np.random.default_rng(1)
    champion = _proportion_looks(rng, rate, BATCH * champion_share)
    candidate = _proportion_looks(rng, rate)
    test = SequentialTest(alpha=ALPHA, min_samples=BATCH, kind="proportion")

    sequential = (test.verdicts(champion, candidate) == "breach").any(axis=1).mean()
    naive = _naive_breaches(champion, candidate).mean()

    assert sequential <= ALPHA + SLACK
    assert naive >= 3 * ALPHA, "peeking at a fixed-horizon test should inflate its alarms"


def test_false_alarms_on_latency_stay_below_alpha_under_peeking() -> None:
    """A/A on log-normal latencies (σ = 1 on the log scale), 2,000 experiments, 100 looks.

    Measured breach rate at any look (seed 2): sequential 2.2 %, naive z-test 29.9 %.
    """
    rng = np.random.default_rng(2)
    champion = _latency_looks(rng, 1.0)
    candidate = _latency_looks(rng, 1.0)
    test = SequentialTest(alpha=ALPHA, min_samples=BATCH, kind="mean")

    sequential = (test.verdicts(champion, candidate) == "breach").any(axis=1).mean()
    naive = _naive_breaches(champion, candidate).mean()

    assert sequential <= ALPHA + SLACK
    assert naive >= 3 * ALPHA


def test_a_candidate_worse_by_exactly_the_margin_rarely_passes_or_breaches() -> None:
    """At the edge of the margin both one-sided errors stay below alpha (seed 3).

    Error rate 2 % vs 3 %, margin one point: measured pass rate 2.2 %, breach rate 1.75 %.
    """
    rng = np.random.default_rng(3)
    champion = _proportion_looks(rng, 0.02)
    candidate = _proportion_looks(rng, 0.03)
    test = SequentialTest(alpha=ALPHA, margin=0.01, min_samples=BATCH)

    verdicts = test.verdicts(champion, candidate)

    assert (verdicts == "pass").any(axis=1).mean() <= ALPHA + SLACK
    assert (verdicts == "breach").any(axis=1).mean() <= ALPHA + SLACK


# --- power ---------------------------------------------------------------------------


def test_a_worse_error_rate_is_caught_early() -> None:
    """Error rate 2 % → 3.5 % (seed 4): measured power 97.8 %, median 1,600 per side."""
    rng = np.random.default_rng(4)
    champion = _proportion_looks(rng, 0.02)
    candidate = _proportion_looks(rng, 0.035)
    test = SequentialTest(alpha=ALPHA, min_samples=BATCH)

    verdict, samples = _first_decisions(test.verdicts(champion, candidate))

    assert (verdict == "breach").mean() >= 0.9
    assert np.median(samples) <= 2500


def test_slower_latency_is_caught_early() -> None:
    """Latency 15 % slower (0.11 standard deviations; seed 5): power 99.95 %, median 1,150."""
    rng = np.random.default_rng(5)
    champion = _latency_looks(rng, 1.0)
    candidate = _latency_looks(rng, 1.15)
    test = SequentialTest(alpha=ALPHA, min_samples=BATCH, kind="mean")

    verdict, samples = _first_decisions(test.verdicts(champion, candidate))

    assert (verdict == "breach").mean() >= 0.95
    assert np.median(samples) <= 2000


def test_lower_accuracy_is_a_breach_when_higher_is_better() -> None:
    """Accuracy 90 % → 87 % on labelled rows (seed 6): measured power 97.8 %, median 1,425."""
    rng = np.random.default_rng(6)
    champion = _proportion_looks(rng, 0.90)
    candidate = _proportion_looks(rng, 0.87)
    test = SequentialTest(alpha=ALPHA, min_samples=BATCH, direction="higher_is_better")

    verdict, samples = _first_decisions(test.verdicts(champion, candidate))

    assert (verdict == "breach").mean() >= 0.9
    assert np.median(samples) <= 2500


# --- passes ----------------------------------------------------------------------------


def test_an_equal_candidate_passes_within_the_margin() -> None:
    """Equal 2 % error rates, margin one point (seed 7): 86 % pass by 5,000, median 2,050."""
    rng = np.random.default_rng(7)
    champion = _proportion_looks(rng, 0.02)
    candidate = _proportion_looks(rng, 0.02)
    test = SequentialTest(alpha=ALPHA, margin=0.01, min_samples=BATCH)

    verdict, samples = _first_decisions(test.verdicts(champion, candidate))

    assert (verdict == "pass").mean() >= 0.8
    assert (verdict == "breach").mean() <= ALPHA
    assert np.median(samples) <= 3000


def test_a_better_candidate_passes_without_a_margin() -> None:
    """Latency 20 % faster, no margin (seed 8): 100 % pass, median 500 per side."""
    rng = np.random.default_rng(8)
    champion = _latency_looks(rng, 1.0)
    candidate = _latency_looks(rng, 0.8)
    test = SequentialTest(alpha=ALPHA, min_samples=BATCH, kind="mean")

    verdict, samples = _first_decisions(test.verdicts(champion, candidate))

    assert (verdict == "pass").mean() >= 0.95
    assert np.median(samples) <= 2000


def test_an_equal_candidate_passes_once_the_planned_samples_are_in() -> None:
    """No margin, ``max_samples`` = 5,000 (seed 9): 97.7 % pass at the last look, 2.3 % breach."""
    rng = np.random.default_rng(9)
    champion = _proportion_looks(rng, 0.02)
    candidate = _proportion_looks(rng, 0.02)
    test = SequentialTest(alpha=ALPHA, min_samples=BATCH, max_samples=BATCH * LOOKS)

    verdict, samples = _first_decisions(test.verdicts(champion, candidate))

    assert (verdict == "pass").mean() >= 1 - ALPHA - SLACK
    assert (samples[verdict == "pass"] == BATCH * LOOKS).mean() >= 0.9


# --- one look ----------------------------------------------------------------------------


def test_a_clear_breach_carries_its_evidence() -> None:
    test = SequentialTest(alpha=ALPHA, margin=0.005)

    decision = test.decide(ProportionStats(2000, 40), ProportionStats(2000, 120))

    assert decision.verdict == "breach"
    assert decision.difference == pytest.approx(0.04)
    assert decision.margin < decision.lower < decision.difference < decision.upper
    assert decision.p_value == pytest.approx(1 / decision.e_value)
    assert decision.p_value <= ALPHA
    assert "worse than the champion" in decision.reason


def test_no_verdict_before_min_samples() -> None:
    test = SequentialTest(min_samples=200)

    decision = test.decide(ProportionStats(150, 0), ProportionStats(150, 150))

    assert decision.verdict == "continue"
    assert decision.e_value > 1 / ALPHA  # the evidence is shown, not acted on
    assert "Waiting for 200" in decision.reason


def test_no_evidence_without_data_or_variance() -> None:
    test = SequentialTest(kind="mean", min_samples=2)

    empty = test.decide(MeanStats(0, 0.0, 0.0), MeanStats(500, 3.0, 1.0))
    constant = test.decide(MeanStats(500, 3.0, 0.0), MeanStats(500, 3.0, 0.0))

    for decision in (empty, constant):
        assert decision.verdict == "continue"
        assert decision.e_value == decision.pass_e_value == 1.0
        assert (decision.lower, decision.upper) == (-math.inf, math.inf)
    assert math.isnan(empty.difference)


def test_overwhelming_evidence_does_not_overflow() -> None:
    decision = SequentialTest().decide(
        ProportionStats(10**7, 0), ProportionStats(10**7, 10**7 // 2)
    )

    assert decision.verdict == "breach"
    assert decision.e_value == math.inf
    assert decision.p_value == 0.0


def test_decisions_and_settings_survive_json() -> None:
    test = SequentialTest(margin=0.01, max_samples=4000, kind="mean", direction="higher_is_better")
    decisions = [
        test.decide(MeanStats(1000, 0.8, 0.04), MeanStats(1000, 0.7, 0.05)),
        test.decide(MeanStats(0, 0.0, 0.0), MeanStats(10, 0.7, 0.05)),
    ]

    for decision in decisions:
        restored = Decision.from_dict(json.loads(json.dumps(decision.to_dict())))
        assert restored.to_dict() == decision.to_dict()
    assert decisions[0] == Decision.from_dict(json.loads(json.dumps(decisions[0].to_dict())))
    assert SequentialTest.from_dict(json.loads(json.dumps(test.to_dict()))) == test


@pytest.mark.parametrize(
    "settings_",
    [
        {"alpha": 0.0},
        {"alpha": 0.5},
        {"margin": -0.01},
        {"margin": math.nan},
        {"min_samples": 1},
        {"min_samples": 100, "max_samples": 50},
        {"kind": "median"},
        {"direction": "sideways"},
        {"mixture": 0.0},
    ],
)
def test_bad_settings_say_what_to_do(settings_: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as raised:
        SequentialTest(**settings_)  # type: ignore[arg-type]
    assert raised.value.hint


def test_statistics_must_match_the_kind_and_make_sense() -> None:
    with pytest.raises(TypeError):
        SequentialTest(kind="mean").decide(ProportionStats(10, 1), ProportionStats(10, 1))
    with pytest.raises(ValueError):
        ProportionStats(10, 11)
    with pytest.raises(ValueError):
        MeanStats(10, 1.0, -1.0)
    assert ProportionStats.of([0, 1, 1, 0]) == ProportionStats(4, 2)
    assert MeanStats.of([1.0, 3.0]) == MeanStats(2, 2.0, 2.0)
    assert MeanStats.of([]) == MeanStats(0, 0.0, 0.0)


# --- properties ----------------------------------------------------------------------

counts = hs.integers(2, 100_000)
shares = hs.floats(0.0, 1.0)
means = hs.floats(-1e3, 1e3)
variances = hs.floats(1e-6, 1e4)


@hs.composite
def proportion_pairs(draw: hs.DrawFn) -> tuple[ProportionStats, ProportionStats]:
    sides = []
    for _ in range(2):
        count = draw(counts)
        sides.append(ProportionStats(count, round(draw(shares) * count)))
    return sides[0], sides[1]


@hs.composite
def sequential_tests(draw: hs.DrawFn, kind: str = "proportion") -> SequentialTest:
    return SequentialTest(
        alpha=draw(hs.sampled_from([0.01, 0.05, 0.1])),
        margin=draw(hs.sampled_from([0.0, 0.005, 0.05])),
        min_samples=draw(hs.sampled_from([2, 100, 1000])),
        max_samples=draw(hs.sampled_from([None, 5000])),
        kind=kind,  # type: ignore[arg-type]
        direction=draw(hs.sampled_from(["lower_is_better", "higher_is_better"])),
        mixture=draw(hs.sampled_from([0.05, 0.1, 0.3])),
    )


@settings(max_examples=200, deadline=None)
@given(pair=proportion_pairs(), test=sequential_tests())
def test_bounds_agree_with_the_verdict(
    pair: tuple[ProportionStats, ProportionStats], test: SequentialTest
) -> None:
    """Breach ⇔ lower bound above the margin; non-inferiority ⇔ upper bound below it."""
    decision = test.decide(*pair)

    assert decision.lower <= decision.difference <= decision.upper
    ready = min(decision.champion_count, decision.candidate_count) >= test.min_samples
    scale = max(1.0, abs(decision.lower), abs(decision.upper)) * 1e-9
    if ready and abs(decision.lower - test.margin) > scale:
        assert (decision.verdict == "breach") == (decision.lower > test.margin)
    if ready and test.max_samples is None and abs(decision.upper - test.margin) > scale:
        assert (decision.verdict == "pass") == (decision.upper < test.margin)


@settings(max_examples=100, deadline=None)
@given(
    champion=hs.tuples(counts, means, variances),
    candidate=hs.tuples(counts, means, variances),
    test=sequential_tests("mean"),
)
def test_one_look_matches_many_looks_and_mirrors_direction(
    champion: tuple[int, float, float],
    candidate: tuple[int, float, float],
    test: SequentialTest,
) -> None:
    """``decide`` equals ``verdicts``; swapping sides and direction changes nothing."""
    decision = test.decide(MeanStats(*champion), MeanStats(*candidate))
    many = test.verdicts(
        tuple(np.full(3, value) for value in champion),
        tuple(np.full(3, value) for value in candidate),
    )
    flipped = SequentialTest.from_dict(
        {
            **test.to_dict(),
            "direction": "higher_is_better"
            if test.direction == "lower_is_better"
            else "lower_is_better",
        }
    ).decide(MeanStats(*candidate), MeanStats(*champion))

    assert list(many) == [decision.verdict] * 3
    assert flipped.verdict == decision.verdict
    assert flipped.e_value == pytest.approx(decision.e_value, rel=1e-9)
    assert flipped.difference == pytest.approx(decision.difference)


@settings(max_examples=50, deadline=None)
@given(
    z=hs.floats(-6.0, 6.0),
    ratio=hs.floats(1e-4, 10.0),
    margin=hs.sampled_from([0.0, 0.01]),
)
def test_e_value_is_the_published_mixture(z: float, ratio: float, margin: float) -> None:
    """Parity with the definition (numerical integral) and with Johari et al.'s closed form.

    A look with variance V = 1e-4 and τ² = V/ratio, difference margin + z·√V. The
    half-normal mixture integrates the likelihood ratio exp(δ(d−m)/V − δ²/(2V)) against
    2·N(δ; 0, τ²) over δ > 0; the two one-sided e-values average to the two-sided
    mSPRT statistic √(V/(V+τ²)) · exp(τ²(d−m)²/(2V(V+τ²))).
    """
    variance = 1e-4
    tau2 = variance / ratio
    # n per side with per-observation variance 1 gives V = 2/n; the mixture's τ is in
    # standard deviations, so mixture² = τ².
    count = 2 / variance
    test = SequentialTest(margin=margin, kind="mean", mixture=math.sqrt(tau2), min_samples=2)
    difference = margin + z * math.sqrt(variance)
    decision = test.decide(MeanStats(int(count), 0.0, 1.0), MeanStats(int(count), difference, 1.0))

    def integrand(delta: float) -> float:
        log_ratio = delta * (difference - margin) / variance - delta**2 / (2 * variance)
        return 2 * stats.norm.pdf(delta, 0.0, math.sqrt(tau2)) * math.exp(log_ratio)

    upper_limit = max(0.0, difference - margin) + 40 * math.sqrt(min(variance, tau2))
    integral, _ = integrate.quad(integrand, 0.0, upper_limit, epsabs=0, epsrel=1e-10)
    two_sided = math.sqrt(variance / (variance + tau2)) * math.exp(
        tau2 * (difference - margin) ** 2 / (2 * variance * (variance + tau2))
    )

    assert decision.e_value == pytest.approx(integral, rel=1e-6)
    assert (decision.e_value + decision.pass_e_value) / 2 == pytest.approx(two_sided, rel=1e-9)
