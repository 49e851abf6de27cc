"""CBPE says when it cannot be trusted: scores outside the reference's support.

Simulations over several seeds, with stated tolerances. A *saturating* truth (P(y = 1)
rises with x0, then falls past 1.5) fitted by a linear model is misspecified: under a
pure covariate shift of x0 by +2.5 the model extrapolates, its scores move to log-odds
the reference barely holds, and the estimate (≈ 0.92 accuracy) is far from the realised
(≈ 0.57). A well-specified logistic model under an in-support shift stays reliable and
accurate.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.monitoring.estimation import CBPE, METRICS, compare

SEEDS = range(6)
Truth = Callable[[np.ndarray], np.ndarray]
WEIGHTS, BIAS = np.array([1.2, -0.8, 0.5, 0.0]), -0.7


def _saturating(x: np.ndarray) -> np.ndarray:
    rise = np.where(x[:, 0] < 1.5, 2.5 * x[:, 0], 3.75 - 3.0 * (x[:, 0] - 1.5))
    return 1 / (1 + np.exp(-(rise + 0.8 * x[:, 1])))


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ WEIGHTS + BIAS)))


def _data(
    truth: Truth, rng: np.random.Generator, rows: int, shift: float = 0.0, width: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose P(y | x) is ``truth``; ``shift`` moves x0 (a pure covariate shift)."""
    x = rng.normal(0.0, 1.0, size=(rows, width))
    x[:, 0] += shift
    return x, (rng.random(rows) < truth(x)).astype(int)


def _fitted(
    truth: Truth, seed: int, width: int
) -> tuple[np.random.Generator, LogisticRegression, CBPE]:
    """A linear model trained on ``truth``, and CBPE fitted on its labelled reference."""
    rng = np.random.default_rng(seed)
    model = LogisticRegression().fit(*_data(truth, rng, 20_000, width=width))
    x_ref, y_ref = _data(truth, rng, 5000, width=width)
    cbpe = CBPE(n_simulations=200, seed=seed).fit(y_ref, model.predict_proba(x_ref)[:, 1])
    return rng, model, cbpe


def test_scores_pushed_outside_the_reference_are_unreliable_and_the_band_widens() -> None:
    """Every shifted window is flagged; no unshifted one; the widened band holds the truth."""
    flagged: list[bool] = []
    unshifted_flagged: list[bool] = []
    inside: list[bool] = []
    errors: list[float] = []
    for seed in SEEDS:
        rng, model, cbpe = _fitted(_saturating, seed, 2)
        x, y = _data(_saturating, rng, 1000)
        unshifted = cbpe.estimate(model.predict_proba(x)[:, 1])["accuracy"]
        unshifted_flagged.append(not unshifted.reliable)
        x, y = _data(_saturating, rng, 1000, shift=2.5)
        scores = model.predict_proba(x)[:, 1]
        estimate = cbpe.estimate(scores)
        accuracy = estimate["accuracy"]
        realised = cbpe.realised(y, scores)["accuracy"]
        flagged.append(not accuracy.reliable)
        assert accuracy.support is not None and accuracy.support < 0.9
        assert accuracy.reason is not None and "little support" in accuracy.reason
        assert all(not e.reliable and e.support == accuracy.support for e in estimate.values())
        # The band is widened by the unsupported share on each side (then clipped).
        half = cbpe.band_sigmas * accuracy.standard_error + (1 - accuracy.support)
        assert accuracy.low == pytest.approx(max(accuracy.value - half, 0.0))
        assert accuracy.high == pytest.approx(min(accuracy.value + half, 1.0))
        inside.append(accuracy.low <= realised <= accuracy.high)
        errors.append(realised - accuracy.value)
    print(
        f"saturating, shift 2.5: flagged {sum(flagged)}/{len(flagged)}, "
        f"in band {sum(inside)}, mean error {np.mean(errors):.3f}"
    )
    assert np.mean(errors) < -0.2  # the blind spot is real: the estimate is far too high
    assert all(flagged) and not any(unshifted_flagged)
    assert sum(inside) >= len(inside) - 1


def test_in_support_covariate_shift_of_a_calibrated_model_stays_reliable_and_accurate() -> None:
    """P(x) moves, P(y | x) holds, the model is right: reliable, within ±0.015 on average."""
    reliable: list[bool] = []
    inside: list[bool] = []
    errors: dict[str, list[float]] = {name: [] for name in METRICS}
    for seed in SEEDS:
        rng, model, cbpe = _fitted(_logistic, 100 + seed, 4)
        for _ in range(4):
            x, y = _data(_logistic, rng, 1000, shift=-1.0, width=4)
            scores = model.predict_proba(x)[:, 1]
            estimate = cbpe.estimate(scores)
            reliable += [e.reliable for e in estimate.values()]
            for name, row in compare(estimate, cbpe.realised(y, scores)).items():
                errors[name].append(row.error)
                inside.append(row.within)
    mean_errors = {name: float(np.mean(v)) for name, v in errors.items()}
    print(
        f"logistic, shift -1.0: reliable {np.mean(reliable):.3f}, "
        f"coverage {np.mean(inside):.3f}, mean error {mean_errors}"
    )
    assert all(reliable)
    assert all(abs(error) < 0.015 for error in mean_errors.values()), mean_errors
    assert np.mean(inside) >= 0.95


def test_reliability_crosses_json_and_an_old_state_has_unknown_support() -> None:
    """The flag, reason and support reach JSON; a state saved without the histogram."""
    rng, model, cbpe = _fitted(_saturating, 7, 2)
    scores = model.predict_proba(_data(_saturating, rng, 500, shift=2.5)[0])[:, 1]
    restored = CBPE.from_dict(json.loads(json.dumps(cbpe.to_dict(), allow_nan=False)))
    estimated = cbpe.estimate(scores)
    assert restored.estimate(scores) == estimated
    row = json.loads(json.dumps(estimated["accuracy"].to_dict()))
    assert row["reliable"] is False and 0 <= row["support"] < 0.9
    assert "wait for labels" in row["reason"]
    saved_before = {k: v for k, v in cbpe.to_dict().items() if k != "support_counts"}
    old = CBPE.from_dict(saved_before).estimate(scores)["accuracy"]
    assert old.reliable and old.support is None and old.reason is None
