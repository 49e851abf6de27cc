"""``method="auto"`` chooses Evidently 0.7's test by reference size and column type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import (
    AutoDriftDetector,
    DatasetDrift,
    DriftResult,
    EvidentlyKind,
    choose_test,
    evidently_kind,
)


@pytest.mark.parametrize(
    ("kind", "rows", "distinct", "expected"),
    [
        ("numerical", 1000, 6, ("ks", 0.05)),
        ("numerical", 1000, 5, ("chisquare", 0.05)),
        ("numerical", 1000, 3, ("chisquare", 0.05)),
        ("numerical", 1000, 2, ("z", 0.05)),
        ("categorical", 1000, 30, ("chisquare", 0.05)),
        ("categorical", 1000, 2, ("z", 0.05)),
        ("categorical", 10, 1, ("z", 0.05)),
        ("numerical", 1001, 6, ("wasserstein", 0.1)),
        ("numerical", 1001, 5, ("jensenshannon", 0.1)),
        ("categorical", 1001, 30, ("jensenshannon", 0.1)),
        ("categorical", 50_000, 2, ("jensenshannon", 0.1)),
    ],
)
def test_choose_test_follows_evidentlys_table(
    kind: EvidentlyKind, rows: int, distinct: int, expected: tuple[str, float]
) -> None:
    assert choose_test(kind, rows, distinct) == expected


@pytest.mark.parametrize(
    ("series", "kind"),
    [
        (pd.Series([0.5, 1.5, 2.5]), "numerical"),
        (pd.Series([0.0, 1.0] * 50), "numerical"),
        (pd.Series(np.arange(11)), "numerical"),
        (pd.Series(np.arange(10)), "categorical"),
        (pd.Series([True, False]), "categorical"),
        (pd.Series(["a", "b", "a", "a"]), "categorical"),
        (pd.Series(["a", "b", "c", "a"]), "text"),
        (pd.Series(["a", "b", "a", "a"], dtype=object), "categorical"),
        (pd.Series(["a", "b"], dtype="category"), "categorical"),
        (pd.Series(pd.date_range("2024-01-01", periods=3)), "datetime"),
        (pd.Series([None, None], dtype=object), "unknown"),
        (pd.Series([(1, 2), (3, 4)], dtype=object), "unknown"),
        # Evidently types these "unknown" and skips them; Shipyard does not.
        (pd.Series([1, 2, None], dtype="Int64"), "categorical"),
        (pd.Series([1.5, None], dtype="Float64"), "numerical"),
        (pd.Series([True, None], dtype=object), "categorical"),
    ],
)
def test_column_kind_is_evidentlys(series: pd.Series, kind: str) -> None:
    assert evidently_kind(series) == kind


def _auto(reference: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> DatasetDrift:
    return AutoDriftDetector().fit(reference).score(current)


def _methods(drift: DatasetDrift) -> dict[str, str]:
    return {result.feature: result.method for result in drift.columns}


def test_reference_size_is_counted_after_dropping_nan_and_inf() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=1003)
    dirty = values.copy()
    dirty[:2] = np.nan
    dirty[2] = np.inf
    reference = {"clean": values, "dirty": dirty}
    current = {"clean": rng.normal(size=400), "dirty": rng.normal(size=400)}
    assert _methods(_auto(reference, current)) == {"clean": "wasserstein", "dirty": "ks"}


def test_distinct_values_are_counted_over_reference_and_current() -> None:
    reference = {"x": np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 100)}
    five = _auto(reference, {"x": np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 20)})
    six = _auto(reference, {"x": np.tile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 20)})
    assert (five["x"].method, six["x"].method) == ("chisquare", "ks")
    large = {"x": np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 300)}
    assert _auto(large, {"x": np.tile([1.0, 2.0], 50)})["x"].method == "jensenshannon"
    assert _auto(large, {"x": np.arange(100.0)})["x"].method == "wasserstein"


def test_the_current_dtype_decides_the_kind_as_in_evidently() -> None:
    rng = np.random.default_rng(1)
    reference = {"n": rng.integers(0, 100, 5000)}
    # Fewer than 11 distinct integers in the window: categorical, so Jensen–Shannon.
    assert _auto(reference, {"n": rng.integers(0, 8, 500)})["n"].kind == "categorical"
    assert _auto(reference, {"n": rng.integers(0, 100, 500)})["n"].method == "wasserstein"


def test_binary_columns_use_the_z_test_on_small_references() -> None:
    rng = np.random.default_rng(2)
    reference = {"flag": rng.random(800) < 0.3, "yes": np.where(rng.random(800) < 0.5, "y", "n")}
    current = {"flag": rng.random(500) < 0.6, "yes": np.where(rng.random(500) < 0.5, "y", "n")}
    drift = _auto(reference, current)
    assert _methods(drift) == {"flag": "z", "yes": "z"}
    assert drift["flag"].drifted and drift["flag"].p_value is not None


def test_text_columns_are_skipped_with_a_reason() -> None:
    rng = np.random.default_rng(3)
    reference = {
        "note": np.array([f"note {i}" for i in range(300)]),
        "x": rng.normal(size=300),
    }
    current = {"note": np.array([f"new {i}" for i in range(200)]), "x": rng.normal(size=200)}
    drift = _auto(reference, current)
    assert drift.features == ("x",)
    assert "text" in drift.skipped["note"]


def _result(feature: str, drifted: bool) -> DriftResult:
    return DriftResult(feature, "ks", "numeric", 0.5, 0.5, 0.05, drifted, 10, 10)


@pytest.mark.parametrize(
    ("flags", "share", "drifted"),
    [
        ([True, False], 0.5, True),
        ([True, False, False], 1 / 3, False),
        ([True, True, False, False, False], 0.4, False),
        ([True, True, True, False], 0.75, True),
        ([False, False], 0.0, False),
    ],
)
def test_dataset_drifts_when_at_least_half_the_columns_do(
    flags: list[bool], share: float, drifted: bool
) -> None:
    columns = tuple(_result(f"c{i}", flag) for i, flag in enumerate(flags))
    drift = DatasetDrift("auto", columns, drift_share=0.5)
    assert (drift.share, drift.drifted) == (pytest.approx(share), drifted)


def test_drift_share_is_a_setting() -> None:
    rng = np.random.default_rng(4)
    reference = {name: rng.normal(size=2000) for name in "abcd"}
    current = {"a": rng.normal(2.0, 1.0, 500), **{n: rng.normal(size=500) for n in "bcd"}}
    assert not AutoDriftDetector().fit(reference).score(current).drifted
    strict = AutoDriftDetector(drift_share=0.25).fit(reference).score(current)
    assert strict.share == 0.25 and strict.drifted
