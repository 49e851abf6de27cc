"""The statistics of an A/B experiment: a winner, "no difference", or keep going.

An experiment compares arms on a per-prediction metric (0/1 correctness, a squared or
absolute error, a business outcome), and the agent looks at every tick. Each pair of
arms is compared with the always-valid mixture test of
:mod:`shipyard.delivery.sequential` (Johari et al.'s mSPRT, normal approximation,
plug-in variances), two-sided: the difference Δ = better-arm-minus-other, in the
metric's units, with estimate ``d`` and variance ``V = v_a/n_a + v_b/n_b``.

- **Winner**: one of the two one-sided e-values (Δ > 0, Δ < 0) reaches ``2/alpha'``;
  each is a supermartingale under Δ = 0, so by Ville's inequality the chance of ever
  declaring a winner between equal arms, looking as often as the agent likes, is at
  most ``alpha'`` (half per side).
- **No difference** (only with a ``min_effect`` m): either the always-valid confidence
  sequence for Δ at level ``1 − alpha'`` lies inside ``(−m, +m)`` (both one-sided
  tests of "|Δ| ≥ m" reject at ``alpha'/2``), or the planned information is reached:
  ``V ≤ r*·m²``, the variance at which a true effect of exactly m crosses the
  winner's boundary with probability ``power`` (see :func:`planned_ratio`). The
  first route is always valid; the second is the fixed-horizon stop that makes the
  power statement true: without it a tie with a noisy metric would run forever, since
  a confidence sequence narrows only like √(log n / n). With Δ = m the test declares
  the winner by that horizon with probability ≥ ``power`` (it may cross earlier, too),
  so "no difference" is wrong at most ``1 − power`` of the time when the effect is m.
- The mixture is tuned to the smallest effect worth acting on: τ = m in the metric's
  units (so ``V/τ²`` needs no variance estimate), or 0.1 pooled standard deviations
  without a ``min_effect``.

**More than two arms**: every pair is compared, with alpha split Bonferroni-style over
the ``k(k−1)/2`` pairs (``alpha' = alpha/pairs``), so the chance of any false winner
stays at most ``alpha``. The experiment's verdict is a **winner** when one arm is shown
better than every other arm; **no difference** when every pair is resolved (shown
different, or "no difference" by either route) without a single best arm — the arms
not shown worse than another are reported as ``best``, and the champion (the
``control``) stays when it is among them; when it is not, every best arm is shown
better than it and they tie, so the one with the best observed mean is the winner.
Until then it continues.

Measured (``tests/delivery/test_experiment_test.py``; docs/experiments.md has the
numbers at 10,000 replicates): A/A experiments looked at every 50 observations per arm
up to 8,000 (160 looks): 1.8–2.4 % false winners at ``alpha`` 5 % (a fixed-horizon
z-test on the same looks: 42.7 %); with Δ = m, 86.6 % winners at a stated power of 80 %.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from shipyard.delivery.sequential import Direction, MeanStats, _boundary, _log_e_value
from shipyard.errors import ConfigError

__all__ = [
    "ArmComparison",
    "ExperimentTest",
    "ExperimentVerdict",
    "Outcome",
    "planned_ratio",
]

Outcome = Literal["continue", "winner", "no_difference"]
PairVerdict = Literal["continue", "a", "b", "no_difference"]

_DEFAULT_MIXTURE = 0.1  # standardised effect size the test is tuned for without min_effect


@dataclass(frozen=True)
class ArmComparison:
    """One pair of arms at one look: ``difference`` is mean(b) − mean(a) in the metric's
    units (its sign as measured, whatever the direction), ``lower``/``upper`` its
    always-valid bounds at level ``1 − alpha``; ``verdict`` names the better arm, or
    ``no_difference``, or ``continue``."""

    a: str
    b: str
    verdict: PairVerdict
    difference: float
    lower: float
    upper: float
    e_value: float  # the larger of the two one-sided e-values for a difference
    information: float  # V / (r*·m²): 1 or less means the planned horizon is reached
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; non-finite numbers become strings (``"inf"``)."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ExperimentVerdict:
    """One look at an experiment: the outcome, the winner or the best arms, the pairs."""

    outcome: Outcome
    winner: str | None
    best: tuple[str, ...]
    reason: str
    counts: dict[str, int]
    means: dict[str, float]
    pairs: tuple[ArmComparison, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "outcome": self.outcome,
            "winner": self.winner,
            "best": list(self.best),
            "reason": self.reason,
            "counts": dict(self.counts),
            "means": {k: _jsonable(v) for k, v in self.means.items()},
            "pairs": [pair.to_dict() for pair in self.pairs],
        }


@dataclass(frozen=True)
class ExperimentTest:
    """Settings of an experiment's sequential test (settings only: one serves every look).

    ``alpha`` is the chance of any false winner, ``power`` the chance of declaring the
    better arm when it is better by ``min_effect`` (metric units; None: no "no
    difference" verdict, the experiment runs until a winner or a stop). ``min_samples``
    per arm before any verdict, where the normal approximation is not to be trusted.
    """

    alpha: float = 0.05
    power: float = 0.8
    min_effect: float | None = None
    direction: Direction = "higher_is_better"
    min_samples: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ConfigError(
                f"Experiment alpha {self.alpha} is not between 0 and 0.5.",
                hint="Use the false-winner rate you accept, e.g. 0.05.",
            )
        if not 0.5 < self.power < 1.0:
            raise ConfigError(
                f"Experiment power {self.power} is not between 0.5 and 1.",
                hint="Use the chance of finding a min_effect difference you need, e.g. 0.8.",
            )
        if self.min_effect is not None and not (
            math.isfinite(self.min_effect) and self.min_effect > 0
        ):
            raise ConfigError(
                f"min_effect {self.min_effect} is not a positive number.",
                hint="Give the smallest difference worth acting on, in the metric's units.",
            )
        if self.min_samples < 2:
            raise ConfigError(
                f"min_samples {self.min_samples} is below 2.",
                hint="Ask for enough observations per arm for a normal approximation.",
            )

    def pair_alpha(self, arms: int) -> float:
        """The error rate of each pairwise test among ``arms`` arms (Bonferroni)."""
        return self.alpha / max(1, arms * (arms - 1) // 2)

    def decide(self, stats: dict[str, MeanStats], control: str | None = None) -> ExperimentVerdict:
        """The verdict on each arm's cumulative statistics (arm name → statistics);
        ``control`` names the arm that stays on "no difference" (the champion)."""
        names = list(stats)
        if len(names) < 2:
            raise ConfigError("An experiment needs at least two arms.", hint="E.g. --arms 3,4.")
        alpha = self.pair_alpha(len(names))
        pairs = []
        for a, b in itertools.combinations(names, 2):
            sa, sb = stats[a], stats[b]
            verdict, lower, upper, log_e, information = (
                np.asarray(x)[()]
                for x in self.pair_verdicts(
                    (sa.count, sa.mean, sa.variance), (sb.count, sb.mean, sb.variance), alpha
                )
            )
            code = str(verdict)
            pairs.append(
                ArmComparison(
                    a=a,
                    b=b,
                    verdict=cast(PairVerdict, code),
                    difference=sb.mean - sa.mean,
                    lower=float(lower),
                    upper=float(upper),
                    e_value=_exp(float(log_e)),
                    information=float(information),
                    alpha=alpha,
                )
            )
        return self._combine(names, stats, tuple(pairs), control)

    def pair_verdicts(
        self, a: tuple[ArrayLike, ...], b: tuple[ArrayLike, ...], alpha: float
    ) -> tuple[NDArray[Any], ...]:
        """Vectorised pairwise test: ``(verdict, lower, upper, log_e, information)``.

        ``a`` and ``b`` are broadcastable ``(count, mean, variance)`` arrays, one element
        per look (simulations use many at once); ``verdict`` is ``a``, ``b`` (the better
        arm), ``no_difference`` or ``continue``.
        """
        n_a, mean_a, var_a = (np.asarray(x, dtype=np.float64) for x in a)
        n_b, mean_b, var_b = (np.asarray(x, dtype=np.float64) for x in b)
        sign = 1.0 if self.direction == "higher_is_better" else -1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = var_a / n_a + var_b / n_b
            usable = (np.minimum(n_a, n_b) >= 2) & (variance > 0)
            safe = np.where(usable, variance, 1.0)
            if self.min_effect is not None:
                tau2: NDArray[np.float64] | float = self.min_effect**2
            else:
                pooled = ((n_a - 1) * var_a + (n_b - 1) * var_b) / np.maximum(n_a + n_b - 2, 1)
                tau2 = _DEFAULT_MIXTURE**2 * np.where(pooled > 0, pooled, 1.0)
            ratio = safe / tau2
            d = sign * (mean_b - mean_a)  # > 0: b is better
            z = np.where(usable, d / np.sqrt(safe), 0.0)
        threshold = math.log(2.0 / alpha)  # alpha/2 per side
        log_b = np.where(usable, _log_e_value(z, ratio), 0.0)
        log_a = np.where(usable, _log_e_value(-z, ratio), 0.0)
        ready = usable & (np.minimum(n_a, n_b) >= self.min_samples)
        b_wins = ready & (log_b >= threshold)
        a_wins = ready & ~b_wins & (log_a >= threshold)
        half = np.sqrt(safe) * _boundaries(ratio, alpha / 2)
        lower = np.where(usable, sign * d - half, -math.inf)
        upper = np.where(usable, sign * d + half, math.inf)
        if self.min_effect is None:
            tie = np.zeros_like(ready)
            information = np.full_like(safe, math.inf)
        else:
            m = self.min_effect
            # Inside (−m, m): both "Δ ≥ m" and "Δ ≤ −m" rejected at alpha/2 each.
            zm_hi = np.where(usable, (m - d) / np.sqrt(safe), 0.0)
            zm_lo = np.where(usable, (d + m) / np.sqrt(safe), 0.0)
            inside = (_log_e_value(zm_hi, ratio) >= threshold) & (
                _log_e_value(zm_lo, ratio) >= threshold
            )
            information = np.where(usable, safe / (planned_ratio(alpha, self.power) * m * m), 1e9)
            tie = ready & ~b_wins & ~a_wins & (inside | (information <= 1.0))
        verdict = np.where(
            b_wins, "b", np.where(a_wins, "a", np.where(tie, "no_difference", "continue"))
        )
        return verdict, lower, upper, np.maximum(log_a, log_b), information

    def _combine(
        self,
        names: list[str],
        stats: dict[str, MeanStats],
        pairs: tuple[ArmComparison, ...],
        control: str | None,
    ) -> ExperimentVerdict:
        beaten: dict[str, set[str]] = {name: set() for name in names}  # arm → arms it beats
        for pair in pairs:
            if pair.verdict == "a":
                beaten[pair.a].add(pair.b)
            elif pair.verdict == "b":
                beaten[pair.b].add(pair.a)
        losers = {loser for won in beaten.values() for loser in won}
        best = tuple(name for name in names if name not in losers)
        counts = {name: stats[name].count for name in names}
        means = {name: stats[name].mean for name in names}
        winners = [name for name in names if len(beaten[name]) == len(names) - 1]
        if winners:
            (winner,) = winners
            return ExperimentVerdict(
                "winner", winner, (winner,), _winner_reason(winner, pairs), counts, means, pairs
            )
        if all(pair.verdict != "continue" for pair in pairs):
            if control is not None and control not in best:
                # Every best arm is shown better than the control and they tie with each
                # other: any of them is a sound choice; take the best observed mean.
                sign = 1.0 if self.direction == "higher_is_better" else -1.0
                chosen = max(best, key=lambda arm: sign * means[arm])
                reason = (
                    f"Arms {', '.join(best)} are better than {control} and tie with each "
                    f"other within {self.min_effect:g}; {chosen} has the best mean."
                )
                return ExperimentVerdict("winner", chosen, best, reason, counts, means, pairs)
            reason = (
                f"No arm is better than every other by {self.min_effect:g} or more: "
                f"best arms {', '.join(best)}."
            )
            return ExperimentVerdict("no_difference", None, best, reason, counts, means, pairs)
        smallest = min(counts.values())
        if smallest < self.min_samples:
            reason = f"Waiting for {self.min_samples} observations per arm (fewest: {smallest})."
        else:
            open_pairs = [f"{p.a}–{p.b}" for p in pairs if p.verdict == "continue"]
            reason = f"No decision yet on {', '.join(open_pairs)}."
        return ExperimentVerdict("continue", None, best, reason, counts, means, pairs)


def planned_ratio(alpha: float, power: float) -> float:
    """The ratio ``r* = V/m²`` at which a true effect of m crosses the winner's boundary
    (one-sided ``alpha/2``, mixture τ = m) with probability ``power``.

    With τ = m the standardised effect at variance V is ``1/√r`` and the boundary is
    ``b(r)``, so the condition ``Φ(1/√r − b(r)) = power`` depends on r alone.
    """
    return _planned_ratio(round(alpha, 12), round(power, 12))


_PLANNED: dict[tuple[float, float], float] = {}


def _planned_ratio(alpha: float, power: float) -> float:
    key = (alpha, power)
    if key not in _PLANNED:
        target = float(special.ndtri(power))

        def gap(log_r: float) -> float:
            r = math.exp(log_r)
            return 1 / math.sqrt(r) - _boundary(r, alpha / 2) - target

        # gap falls as r grows (less information); bracket generously in log r.
        _PLANNED[key] = math.exp(optimize.brentq(gap, math.log(1e-8), math.log(10.0)))
    return _PLANNED[key]


_GRID = np.linspace(math.log(1e-9), math.log(1e6), 400)
_BOUNDARY_GRIDS: dict[float, NDArray[np.float64]] = {}


def _boundaries(ratio: NDArray[np.float64], alpha: float) -> NDArray[np.float64]:
    """:func:`_boundary` for many ratios: interpolated in log r (smooth, 400 points)."""
    key = round(alpha, 12)
    grid = _BOUNDARY_GRIDS.get(key)
    if grid is None:
        grid = _BOUNDARY_GRIDS[key] = np.array([_boundary(math.exp(x), alpha) for x in _GRID])
    return np.asarray(np.interp(np.log(np.clip(ratio, 1e-9, 1e6)), _GRID, grid))


def _winner_reason(winner: str, pairs: tuple[ArmComparison, ...]) -> str:
    evidence = min(pair.e_value for pair in pairs if winner in (pair.a, pair.b))
    bar = 2 / pairs[0].alpha
    return f"Arm {winner} is better than every other arm: e-values ≥ {evidence:.3g} ≥ {bar:g}."


def _exp(log_value: float) -> float:
    return math.exp(log_value) if log_value < 709.0 else math.inf


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value
