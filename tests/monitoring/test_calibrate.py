"""Band calibration: null windows reach inspect at the stated rate; output is config-ready."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from shipyard.config import BandSettings, MonitoringSettings
from shipyard.errors import ConfigError, DataError
from shipyard.monitoring import Bands, KLDetector, PSIDetector, Reference
from shipyard.monitoring.calibrate import calibrate_bands, null_scores

CATEGORIES = np.array([f"c{i}" for i in range(30)])
# Five common categories and 25 rare ones: PSI is noisy here at small windows.
SHARES = np.r_[np.full(5, 0.15), np.full(25, 0.25 / 25)]


def _frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": rng.lognormal(0.0, 1.0, rows),
            "plan": rng.choice(CATEGORIES, rows, p=SHARES),
            "children": rng.integers(0, 5, rows),
        }
    )


def test_null_windows_reach_inspect_at_the_stated_false_alarm_rate() -> None:
    """Fresh no-drift windows, scored by the real detectors, breach inspect ≈ 2 % of the time."""
    rate, window, hits, trials = 0.02, 400, {"amount": 0, "plan": 0, "children": 0}, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        reference = _frame(rng, 2000)
        bands = calibrate_bands(
            reference, window, false_alarm_rate=rate, seed=seed, never_below_defaults=False
        )
        assert {name: b["method"] for name, b in bands.items()} == {
            "amount": "kl",
            "plan": "psi",
            "children": "psi",
        }
        detectors = {
            name: (PSIDetector if b["method"] == "psi" else KLDetector)(
                columns=[name], bands=Bands(b["inspect"], b["retrain"], b["pause"])
            ).fit(reference)
            for name, b in bands.items()
        }
        for _ in range(60):
            current = _frame(rng, window)
            for name, detector in detectors.items():
                hits[name] += detector.score(current)[name].band != "ok"
            trials += 1
    observed = {name: count / trials for name, count in hits.items()}
    print(f"false-alarm rate at inspect (nominal {rate}) over {trials} windows: {observed}")
    pooled = sum(hits.values()) / (3 * trials)
    assert 0.013 <= pooled <= 0.027, observed
    assert all(0.008 <= share <= 0.034 for share in observed.values()), observed


def test_floored_levels_keep_the_shipped_ratios_and_free_ones_drop_inspect_only() -> None:
    rng = np.random.default_rng(1)
    reference = _frame(rng, 5000)
    # A large window: every null quantile is below the shipped inspect level.
    quiet = calibrate_bands(reference, 20_000)
    assert quiet["amount"] == {"inspect": 0.05, "retrain": 0.15, "pause": 0.3, "method": "kl"}
    assert quiet["plan"] == {"inspect": 0.1, "retrain": 0.25, "pause": 0.4, "method": "psi"}
    # A small window: the rare categories make PSI noisy, and the levels rise.
    noisy = calibrate_bands(reference, 100)["plan"]
    assert noisy["inspect"] > 0.1
    assert noisy["retrain"] == pytest.approx(2.5 * noisy["inspect"], rel=5e-3)
    assert noisy["pause"] == pytest.approx(4.0 * noisy["inspect"], rel=5e-3)
    free = calibrate_bands(reference, 20_000, never_below_defaults=False)["amount"]
    assert free["inspect"] < 0.05
    # Retrain and pause need far stronger evidence, and at least the shipped size.
    assert (free["retrain"], free["pause"]) == (0.15, 0.3)


def test_a_higher_false_alarm_rate_gives_lower_levels() -> None:
    reference = _frame(np.random.default_rng(2), 3000)
    strict = calibrate_bands(reference, 200, false_alarm_rate=0.005, never_below_defaults=False)
    loose = calibrate_bands(reference, 200, false_alarm_rate=0.05, never_below_defaults=False)
    for name in strict:
        assert loose[name]["inspect"] < strict[name]["inspect"], name


def test_output_is_ready_for_the_config_file() -> None:
    reference = _frame(np.random.default_rng(3), 2000)
    bands = calibrate_bands(reference, 300)
    text = yaml.safe_dump({"monitoring": {"bands": bands}})
    settings = MonitoringSettings(**yaml.safe_load(text)["monitoring"])
    assert set(settings.bands) == {"amount", "plan", "children"}
    assert all(isinstance(levels, BandSettings) for levels in settings.bands.values())
    assert settings.bands["plan"].model_dump() == bands["plan"]


def test_a_prepared_reference_and_a_frame_calibrate_alike() -> None:
    frame = _frame(np.random.default_rng(4), 2000)
    assert calibrate_bands(Reference.from_frame(frame), 300) == calibrate_bands(frame, 300)
    assert calibrate_bands(frame, 300, seed=1) == calibrate_bands(frame, 300, seed=1)


def test_null_scores_match_a_detector_on_the_same_counts() -> None:
    """The bootstrap scores windows on the detectors' bins: a sample scored both ways agrees."""
    frame = _frame(np.random.default_rng(5), 3000)
    reference = Reference.from_frame(frame)
    window = frame.sample(500, random_state=0, replace=True)
    detector = KLDetector(columns=["amount"]).fit(reference)
    scored = detector.score(window)["amount"].score
    edges = detector.edges_["amount"]
    counts = np.bincount(np.searchsorted(edges, window["amount"], side="right"), minlength=10)
    from shipyard.monitoring import statistics as st

    assert st.kl_divergence(detector.reference_histograms_["amount"], counts) == pytest.approx(
        scored
    )
    null = null_scores(reference["amount"], 500, "kl", n_boot=200, rng=np.random.default_rng(0))
    assert null.shape == (200,) and (null >= 0).all()


def test_overrides_and_bad_requests() -> None:
    frame = _frame(np.random.default_rng(6), 1000)
    assert calibrate_bands(frame, 100, detectors={"amount": "psi"})["amount"]["method"] == "psi"
    with pytest.raises(ConfigError, match="psi, kl"):
        calibrate_bands(frame, 100, detectors={"amount": "ks"})
    with pytest.raises(DataError, match="not in the reference"):
        calibrate_bands(frame, 100, detectors={"nope": "psi"})
    with pytest.raises(ValueError, match="n_boot"):
        calibrate_bands(frame, 100, false_alarm_rate=0.001, n_boot=1000)
    empty = frame.assign(amount=np.nan)
    assert "amount" not in calibrate_bands(empty, 100)
    constant = calibrate_bands(frame.assign(plan="c0"), 100, never_below_defaults=False)
    assert constant["plan"] == {"inspect": 0.1, "retrain": 0.25, "pause": 0.4, "method": "psi"}


def test_fifty_features_of_a_hundred_thousand_rows_calibrate() -> None:
    # How long it takes is in benchmarks/speed_bounds.py, not here.
    rng = np.random.default_rng(7)
    columns = {f"x{i}": rng.normal(size=100_000) for i in range(40)}
    columns |= {f"c{i}": rng.choice(CATEGORIES, 100_000, p=SHARES) for i in range(10)}
    bands = calibrate_bands(pd.DataFrame(columns), 5000)
    assert len(bands) == 50
    assert all(0 < b["inspect"] < b["retrain"] < b["pause"] for b in bands.values()), bands


def test_null_pairs_are_scored_exactly_as_the_detector_scores_them() -> None:
    """Unseen levels, levels missing from the window and empty bins: the same numbers."""
    from shipyard.monitoring.null_model import masked_statistic

    rng = np.random.default_rng(8)
    levels = np.array([f"v{i}" for i in range(60)])
    shares = 1.0 / np.arange(1, 61)
    shares /= shares.sum()
    for method, detector_class in (("psi", PSIDetector), ("kl", KLDetector)):
        for _ in range(5):
            ref_counts = rng.multinomial(400, shares)
            cur_counts = rng.multinomial(150, shares)
            reference = pd.DataFrame({"c": np.repeat(levels, ref_counts)})
            current = pd.DataFrame({"c": np.repeat(levels, cur_counts)})
            detector = detector_class(columns=["c"]).fit(reference)
            present = (ref_counts > 0) | (cur_counts > 0)
            ours = masked_statistic(method, ref_counts[None], cur_counts[None], present[None])
            assert ours[0] == pytest.approx(detector.score(current)["c"].score, rel=1e-12)


def test_unseen_mass_follows_good_turing_and_chao1() -> None:
    from shipyard.monitoring.null_model import smoothed_shares, unseen_levels

    counts = np.array([5, 3, 2, 2, 1, 1, 1])  # n 15, f1 3, f2 2
    mass, number = unseen_levels(counts)
    assert mass[0] == pytest.approx(3 / 15) and number[0] == 1  # ceil(3·2 / (2·3))
    shares = smoothed_shares(counts)[0]
    assert shares.sum() == pytest.approx(1.0) and shares[-1] == pytest.approx(3 / 15)
    assert unseen_levels(np.array([4, 2, 2]))[1][0] == 0  # no singletons: nothing unseen
