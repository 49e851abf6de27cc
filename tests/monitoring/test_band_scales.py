"""Band levels are checked against their method's scale when the config is read.

A distance (psi, kl, jensenshannon, wasserstein) breaches a level at or above it, so
levels rise with severity. A statistical test (ks, chisquare, z) is held to p-values in
(0, 1), smaller being more severe; its statistic (a chi² of 49, say) is never compared
with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from shipyard.config import BandSettings, Config, load_config
from shipyard.errors import ConfigError
from shipyard.monitoring.feature_drift import configured_bands, feature_drift
from shipyard.monitoring.reference import Reference

CATEGORIES = [f"c{i:02d}" for i in range(40)]


def load_with_bands(tmp_path: Path, bands: dict[str, Any]) -> Config:
    file = tmp_path / "shipyard.yaml"
    file.write_text(yaml.safe_dump({"monitoring": {"bands": bands}}))
    return load_config(file, environ={})


@pytest.mark.parametrize(
    ("levels", "complaint"),
    [
        # What the issue saw: p-value levels in rising order, then a chi² of 49.15 held to them.
        ({"method": "chisquare", "inspect": 0.001, "retrain": 0.01, "pause": 0.05}, "p-values"),
        ({"method": "chisquare", "inspect": 40, "retrain": 45, "pause": 49}, "between 0 and 1"),
        ({"method": "ks", "inspect": 0.05, "retrain": 0.01, "pause": 0.0}, "between 0 and 1"),
        ({"method": "z", "inspect": 1.0, "retrain": 0.01, "pause": 0.001}, "between 0 and 1"),
        ({"method": "psi", "inspect": 0.4, "retrain": 0.25, "pause": 0.1}, "rise with severity"),
        ({"inspect": 0.3, "retrain": 0.2, "pause": 0.4}, "rise with severity"),
        ({"method": "jensenshannon", "inspect": 0.9, "retrain": 1, "pause": 2}, "at most"),
        ({"method": "chi2", "inspect": 0.1, "retrain": 0.2, "pause": 0.3}, "not a drift method"),
    ],
)
def test_levels_off_the_methods_scale_fail_at_load_naming_the_field(
    tmp_path: Path, levels: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with_bands(tmp_path, {"plan": levels})

    message = caught.value.message
    assert "monitoring.bands" in message and "plan" in message
    assert complaint in message


def test_levels_on_the_methods_scale_load(tmp_path: Path) -> None:
    config = load_with_bands(
        tmp_path,
        {
            "plan": {"method": "chisquare", "inspect": 0.05, "retrain": 0.01, "pause": 0.001},
            "amount": {"method": "ks", "inspect": 0.05, "retrain": 0.05, "pause": 0.01},
            "tenure": {"method": "wasserstein", "inspect": 0.1, "retrain": 0.2, "pause": 3},
        },
    )
    assert set(configured_bands(config)) == {"plan", "amount", "tenure"}


def test_a_bands_file_off_the_scale_names_the_file_and_feature(tmp_path: Path) -> None:
    (tmp_path / "bands.yaml").write_text(
        yaml.safe_dump({"plan": {"method": "ks", "inspect": 0.2, "retrain": 0.4, "pause": 0.6}})
    )
    config = load_with_bands(tmp_path, {}).model_copy(update={"root": tmp_path})
    config = config.model_copy(
        update={"monitoring": config.monitoring.model_copy(update={"bands": Path("bands.yaml")})}
    )
    with pytest.raises(ConfigError) as caught:
        configured_bands(config)
    assert "bands.yaml: plan" in caught.value.message
    assert "inspect ≥ retrain ≥ pause" in caught.value.message


def window_of(rng: np.random.Generator, shares: np.ndarray, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"plan": rng.choice(CATEGORIES, size=rows, p=shares)})


def test_a_chisquare_feature_is_levelled_on_its_p_value_not_its_statistic() -> None:
    rng = np.random.default_rng(7)
    even = np.full(len(CATEGORIES), 1 / len(CATEGORIES))
    reference = Reference.from_frame(window_of(rng, even, 20_000))
    levels = {"plan": BandSettings(method="chisquare", inspect=0.05, retrain=0.01, pause=0.001)}

    [(same, _)] = feature_drift(reference, window_of(rng, even, 2_000), levels)
    # 39 degrees of freedom: a chi² far above every level, and no evidence of drift.
    assert same.score is not None and same.score > 10
    assert same.p_value is not None and same.p_value > 0.05
    assert same.band == "ok" and not same.drifted

    skewed = even.copy()
    skewed[:5] *= 3
    skewed /= skewed.sum()
    [(moved, _)] = feature_drift(reference, window_of(rng, skewed, 2_000), levels)
    assert moved.p_value is not None and moved.p_value <= 0.001
    assert moved.band == "pause" and moved.drifted
