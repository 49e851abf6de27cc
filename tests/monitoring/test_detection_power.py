"""Bands calibrated by default detect small shifts at the stated false-alarm rate (item 3).

The shipped KL level (0.05) never flags a 0.2σ mean shift (KL about 0.02); bands
calibrated for a 5,000-row window put inspect near 0.005, where the shift stands out.
Simulations over independent references; tolerances in each test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shipyard.config import Config, load_config
from shipyard.monitoring import Bands, KLDetector, Reference
from shipyard.monitoring.calibrated_bands import (
    calibrated_bands,
    window_bands,
    window_size_bucket,
)
from shipyard.monitoring.feature_drift import feature_drift
from shipyard.monitoring.results import KL_BANDS

WINDOW = 5000
REFERENCE_ROWS = 5000


def _config(tmp_path: Path, monitoring: dict[str, object]) -> Config:
    file = tmp_path / "shipyard.yaml"
    file.write_text(yaml.safe_dump({"monitoring": monitoring}))
    return load_config(file, environ={})


def test_a_small_mean_shift_is_flagged_within_a_5000_row_window() -> None:
    """30 references: every shifted window reaches inspect, null windows about 1 % of the time.

    Power: the shift's KL is about 4 times the calibrated inspect level, so missing it is
    a many-σ event; the test allows one miss in 30. False alarms: 30 × 40 null windows
    at a nominal 1 % give 12 ± 3.5 alarms; the test allows up to 30 (2.5 %).
    """
    rng = np.random.default_rng(2016)
    flagged = alarms = nulls = 0
    for _ in range(30):
        reference = Reference.from_frame(pd.DataFrame({"x": rng.normal(size=REFERENCE_ROWS)}))
        bands = calibrated_bands(reference, WINDOW)["x"]
        assert bands.inspect < KL_BANDS.inspect / 5  # no floor at the shipped level
        detector = KLDetector(columns=["x"], bands=bands).fit(reference)
        shifted = pd.DataFrame({"x": rng.normal(0.2, 1.0, WINDOW)})
        flagged += detector.score(shifted)["x"].band != "ok"
        for _ in range(40):
            quiet = pd.DataFrame({"x": rng.normal(size=WINDOW)})
            alarms += detector.score(quiet)["x"].band != "ok"
            nulls += 1
    print(f"0.2σ flagged in {flagged}/30 windows; null alarms {alarms}/{nulls}")
    assert flagged >= 29
    assert alarms <= 0.025 * nulls


def test_retrain_and_pause_need_the_shipped_size_and_far_stronger_evidence() -> None:
    rng = np.random.default_rng(7)
    reference = Reference.from_frame(
        pd.DataFrame({"x": rng.normal(size=3000), "plan": rng.choice(list("abcd"), 3000)})
    )
    small = calibrated_bands(reference, 150)
    large = calibrated_bands(reference, 20_000)
    for bands in (*small.values(), *large.values()):
        assert 0 < bands.inspect < bands.retrain < bands.pause
    # Large windows: only inspect drops below the shipped table.
    assert large["x"] == Bands(large["x"].inspect, 0.15, 0.3)
    assert small["x"].inspect > large["x"].inspect


def test_window_bands_explicit_first_then_calibrated_then_shipped(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"x": rng.normal(size=2000), "y": rng.normal(size=2000), "z": rng.normal(size=2000)}
    )
    frame.loc[500:, "z"] = np.nan  # 500 reference values: below calibration_min_rows
    reference = Reference.from_frame(frame)
    window = frame.sample(1000, random_state=0).assign(z=rng.normal(size=1000))
    explicit = {"y": {"inspect": 0.2, "retrain": 0.3, "pause": 0.4, "method": "kl"}}
    auto = window_bands(_config(tmp_path, {"bands": explicit}), reference, window)
    assert set(auto) == {"x", "y"}  # z falls back to the shipped table
    assert auto["y"].inspect == 0.2
    assert auto["x"].method == "kl" and auto["x"].inspect < KL_BANDS.inspect
    off = window_bands(
        _config(tmp_path, {"bands": explicit, "calibration": "off"}), reference, window
    )
    assert set(off) == {"y"}
    results = dict((r.feature, b) for r, b in feature_drift(reference, window, auto))
    assert results["z"] == KL_BANDS and results["x"] == calibrated_bands(reference, 1000)["x"]


@pytest.mark.parametrize(("size", "bucket"), [(57, 57), (150, 150), (1234, 1200), (5049, 5000)])
def test_window_sizes_share_a_cache_entry_within_five_percent(size: int, bucket: int) -> None:
    assert window_size_bucket(size) == bucket
    assert abs(bucket - size) <= 0.05 * size


def test_calibrated_bands_are_reproducible() -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"x": rng.normal(size=1500), "c": rng.choice(list("abcdefg"), 1500)})
    first = calibrated_bands(Reference.from_frame(frame), 700)
    # A reference rebuilt from the same data is the same cache entry and the same seed.
    assert calibrated_bands(Reference.from_frame(frame.copy()), 700) == first


def test_window_bands_keep_levels_for_the_next_process(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=1200), "c": rng.choice(list("abcdef"), 1200)})
    window = frame.sample(400, random_state=1)
    config = _config(tmp_path, {})
    first = window_bands(config, Reference.from_frame(frame), window)
    files = sorted((config.workspace / "monitoring" / "calibrated").glob("*.json"))
    assert [f.name.split("-")[1:3] for f in files] in (
        [["kl", "400"], ["psi", "400"]],
        [["psi", "400"], ["kl", "400"]],
    )
    stored = {f.name.split("-")[1]: yaml.safe_load(f.read_text()) for f in files}
    assert stored["kl"]["inspect"] == first["x"].inspect
    assert window_bands(config, Reference.from_frame(frame), window) == first
