"""monitoring.dataset_drift: Evidently's share rule, or any one feature at retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shipyard.monitoring import Reference
from shipyard.monitoring.dataset_drift import dataset_verdict
from shipyard.monitoring.feature_drift import feature_drift


def _results(shift: float) -> list:
    rng = np.random.default_rng(4)
    columns = ("a", "b", "c", "d")
    reference = Reference.from_frame(pd.DataFrame({c: rng.normal(size=3000) for c in columns}))
    window = pd.DataFrame({c: rng.normal(size=2000) for c in columns})
    window["a"] += shift  # one feature of four moves
    return [result for result, _ in feature_drift(reference, window)]


def test_one_feature_at_retrain_is_dataset_drift_only_under_any_retrain() -> None:
    results = _results(shift=2.0)  # KL far above the shipped retrain level
    assert results[0].band in ("retrain", "pause")
    share = dataset_verdict(results, "share")
    assert not share.drifted and share.level == "ok" and share.share == 0.25
    anyone = dataset_verdict(results, "any_retrain")
    assert anyone.drifted and anyone.acting_features == ("a",)
    assert anyone.level == results[0].band
    assert anyone.to_dict()["acting_features"] == ["a"]


def test_without_a_feature_at_retrain_the_rules_agree() -> None:
    results = _results(shift=0.0)
    for rule in ("share", "any_retrain"):
        verdict = dataset_verdict(results, rule)  # type: ignore[arg-type]
        assert not verdict.drifted and verdict.level == "ok" and verdict.tested == 4
    assert not dataset_verdict([], "any_retrain").drifted
