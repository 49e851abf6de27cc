"""The demo's Agrawal data: river parity, the concept switch, the accuracy drop, the files.

Rules A and B (``tests.support.agrawal``) are the Agrawal paper's functions 0 and 2,
written out again so the switch is checked against an oracle rather than river itself.
The accuracy bounds leave ~3 points of slack around the numbers in the module docstring.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats
from sklearn.ensemble import GradientBoostingClassifier

from shipyard.demo import (
    AFTER,
    BEFORE,
    CATEGORICAL,
    FEATURES,
    NOISE,
    TARGET,
    LiveTraffic,
    agrawal_frame,
    worse_training_frame,
    write_training_data,
)
from shipyard.errors import ConfigError
from tests.support.agrawal import rule_a, rule_b


def fit(frame: pd.DataFrame) -> GradientBoostingClassifier:
    return GradientBoostingClassifier(random_state=0).fit(frame[list(FEATURES)], frame[TARGET])


def accuracy(model: GradientBoostingClassifier, frame: pd.DataFrame) -> float:
    return float((model.predict(frame[list(FEATURES)]) == frame[TARGET]).mean())


def test_frame_is_rivers_stream_with_typed_columns() -> None:
    from river.datasets import synth

    frame = agrawal_frame(300, function=BEFORE, seed=5)
    reference = list(synth.Agrawal(classification_function=BEFORE, seed=5).take(300))
    assert list(frame.columns) == [*FEATURES, TARGET]
    expected = pd.DataFrame([{**x, TARGET: y} for x, y in reference])
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    dtypes = frame.dtypes.astype(str).to_dict()
    assert dtypes == {
        "salary": "float64",
        "commission": "float64",
        "age": "int64",
        "elevel": "int64",
        "car": "int64",
        "zipcode": "int64",
        "hvalue": "float64",
        "hyears": "int64",
        "loan": "float64",
        TARGET: "int64",
    }
    assert CATEGORICAL == ("elevel", "car", "zipcode")
    assert set(frame["elevel"]) <= set(range(5))
    assert set(frame["car"]) <= set(range(1, 21))
    assert set(frame["zipcode"]) <= set(range(9))
    assert set(frame[TARGET]) == {0, 1}


def test_frames_are_deterministic_per_seed() -> None:
    first = agrawal_frame(200, function=AFTER, seed=3, label_noise=NOISE)
    pd.testing.assert_frame_equal(
        first, agrawal_frame(200, function=AFTER, seed=3, label_noise=NOISE)
    )
    assert not first.equals(agrawal_frame(200, function=AFTER, seed=4, label_noise=NOISE))


def test_label_noise_flips_about_that_share_and_leaves_features() -> None:
    clean = agrawal_frame(4000, function=BEFORE, seed=9)
    noisy = agrawal_frame(4000, function=BEFORE, seed=9, label_noise=NOISE)
    pd.testing.assert_frame_equal(clean[list(FEATURES)], noisy[list(FEATURES)])
    flipped = float((clean[TARGET] != noisy[TARGET]).mean())
    assert abs(flipped - NOISE) < 0.015  # 4 sd of a 4,000-row share


def test_traffic_is_deterministic_per_seed() -> None:
    one = list(LiveTraffic(300, switch_at=150, seed=4))
    assert one == list(LiveTraffic(300, switch_at=150, seed=4))
    other = list(LiveTraffic(300, switch_at=150, seed=5))
    assert [r.features for r in one] != [r.features for r in other]
    assert len({r.request_id for r in one}) == 300
    assert one[0].request_id == "agrawal-4-000000"


@settings(max_examples=30, deadline=None)
@given(
    rows=hs.integers(0, 120),
    switch=hs.floats(0, 1),
    seed=hs.integers(-(2**40), 2**40),
)
def test_concept_switches_exactly_at_switch_at(rows: int, switch: float, seed: int) -> None:
    switch_at = round(switch * rows)
    traffic = LiveTraffic(rows, switch_at=switch_at, seed=seed, label_noise=0.0)
    frame = traffic.to_frame()
    assert len(traffic) == rows
    assert frame["concept"].tolist() == [BEFORE] * switch_at + [AFTER] * (rows - switch_at)
    before, after = frame.iloc[:switch_at], frame.iloc[switch_at:]
    assert before[TARGET].tolist() == rule_a(before).tolist()
    assert after[TARGET].tolist() == rule_b(after).tolist()


def test_noisy_labels_follow_the_rule_of_their_side() -> None:
    frame = LiveTraffic(4000, switch_at=2000, seed=2).to_frame()
    before, after = frame.iloc[:2000], frame.iloc[2000:]
    assert abs(float((before[TARGET] == rule_a(before)).mean()) - (1 - NOISE)) < 0.02
    assert abs(float((after[TARGET] == rule_b(after)).mean()) - (1 - NOISE)) < 0.02
    # The rules disagree on about half the applicants, so the old one no longer fits.
    assert float((after[TARGET] == rule_a(after)).mean()) < 0.6


def test_gradual_switch_mixes_concepts_only_inside_the_width() -> None:
    traffic = LiveTraffic(3000, switch_at=1000, width=1000, seed=8)
    concepts = np.array([r.concept for r in traffic])
    assert set(concepts[:1000]) == {BEFORE}
    assert set(concepts[2000:]) == {AFTER}
    share_after = [float((concepts[s : s + 250] == AFTER).mean()) for s in range(1000, 2000, 250)]
    assert share_after == sorted(share_after)
    assert share_after[0] < 0.3 and share_after[-1] > 0.7
    assert [r.concept for r in LiveTraffic(3000, switch_at=1000, width=1000, seed=8)] == list(
        concepts
    )


def test_the_switch_moves_labels_never_inputs() -> None:
    early = LiveTraffic(2000, switch_at=100, seed=6).to_frame()
    late = LiveTraffic(2000, switch_at=1900, width=50, seed=6).to_frame()
    pd.testing.assert_frame_equal(early[list(FEATURES)], late[list(FEATURES)])
    before, after = early.iloc[:1000], early.iloc[1000:]
    for column in ("age", "salary", "loan"):
        assert stats.ks_2samp(before[column], after[column]).pvalue > 0.001
    for column in ("elevel", "zipcode"):
        table = pd.crosstab(early.index >= 1000, early[column])
        assert stats.chi2_contingency(table).pvalue > 0.001


def test_a_model_of_the_old_concept_loses_accuracy_after_the_switch() -> None:
    model = fit(agrawal_frame(2000, function=BEFORE, seed=1, label_noise=NOISE))
    frame = LiveTraffic(3000, switch_at=1500, seed=3).to_frame()
    before, after = accuracy(model, frame.iloc[:1500]), accuracy(model, frame.iloc[1500:])
    assert before > 0.92  # measured 0.95
    assert after < 0.52  # measured 0.47
    assert before - after > 0.4
    # A 200-row window falls below the pre-switch accuracy minus 5 points within ~40 rows.
    correct = (model.predict(frame[list(FEATURES)]) == frame[TARGET]).astype(float)
    window = correct.rolling(200).mean()
    assert (window.iloc[200:1500] >= before - 0.05).all()
    assert (window.iloc[1500:1540] < before - 0.05).any()


def test_worse_candidate_is_clearly_worse_on_live_traffic() -> None:
    clean = agrawal_frame(1000, function=AFTER, seed=0, label_noise=NOISE)
    worse = worse_training_frame(1000, seed=0)
    live = agrawal_frame(3000, function=AFTER, seed=11, label_noise=NOISE)
    assert list(worse.columns) == [*FEATURES, TARGET]
    good, bad = accuracy(fit(clean), live), accuracy(fit(worse), live)
    assert good > 0.92  # measured 0.94
    assert 0.6 < bad < good - 0.15  # measured 0.68
    band = worse["salary"] < 20_000 + 0.3 * 130_000
    assert 0.25 < float(band.mean()) < 0.35


def test_training_files_have_the_columns_and_disjoint_rows(tmp_path: Path) -> None:
    paths = write_training_data(tmp_path / "data", rows=400, seed=2)
    assert set(paths) == {"train", "valid", "golden", "columns"}
    frames = {name: pd.read_csv(paths[name]) for name in ("train", "valid", "golden")}
    assert {name: len(frame) for name, frame in frames.items()} == {
        "train": 400,
        "valid": 100,
        "golden": 200,
    }
    for frame in frames.values():
        assert list(frame.columns) == [*FEATURES, TARGET]
        assert frame[["age", "elevel", "car", "zipcode", "hyears", TARGET]].dtypes.eq("int64").all()
    salaries = [set(frame["salary"]) for frame in frames.values()]
    assert not (salaries[0] & salaries[1] or salaries[0] & salaries[2] or salaries[1] & salaries[2])
    live = set(LiveTraffic(400, switch_at=200, seed=2).to_frame()["salary"])
    assert not live & salaries[0]
    described = json.loads(paths["columns"].read_text(encoding="utf-8"))
    assert described["target"] == TARGET
    assert [c["name"] for c in described["columns"]] == [*FEATURES, TARGET]
    assert {c["name"] for c in described["columns"] if c["kind"] == "categorical"} == set(
        CATEGORICAL
    )


def test_labels_for_answers_each_id_in_order() -> None:
    traffic = LiveTraffic(50, switch_at=25, seed=1, id_prefix="act-one")
    ids = [traffic[30].request_id, traffic[2].request_id]
    assert ids == ["act-one-000030", "act-one-000002"]
    assert traffic.labels_for(ids) == {ids[0]: traffic[30].label, ids[1]: traffic[2].label}
    assert list(traffic.labels_for(ids)) == ids
    with pytest.raises(KeyError):
        traffic.labels_for(["act-two-000000"])


@pytest.mark.parametrize(
    "make",
    [
        lambda: LiveTraffic(10, switch_at=11),
        lambda: LiveTraffic(10, switch_at=5, width=-1),
        lambda: LiveTraffic(10, switch_at=5, after=10),
        lambda: agrawal_frame(10, function=0, seed=0, label_noise=1.5),
        lambda: agrawal_frame(10, function=0, seed=0, perturbation=-0.1),
        lambda: worse_training_frame(10, flipped_share=2.0),
    ],
)
def test_bad_settings_raise_config_errors_with_a_hint(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigError) as caught:
        make()
    assert caught.value.hint


def test_without_river_the_error_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "river.datasets", None)
    with pytest.raises(ConfigError) as caught:
        agrawal_frame(1, function=BEFORE, seed=0)
    assert "shipyard-mlops[demo]" in str(caught.value.hint)
