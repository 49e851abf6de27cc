"""The chunked engine: a window summarised in chunks scores exactly as one pass does.

For every drift method (and both binnings of the histogram methods), on random data
with NaN, ±inf, unseen categories and out-of-range values, cut into random chunks and
merged in a random order (also through the stored JSON form), the per-column verdicts,
bands, counts and p-values equal ``detector.score`` on the whole window, and the scores
equal it to rounding (a value map merged in another order sums in another order).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from shipyard.config import BandSettings
from shipyard.config.monitoring import MonitoringSettings
from shipyard.errors import ConfigError, DataError
from shipyard.monitoring import (
    DETECTORS,
    DatasetDrift,
    DriftDetector,
    DriftResult,
    KSDetector,
    PSIDetector,
    Reference,
    detector,
)
from shipyard.monitoring.chunk_scores import ks_from_cells, score_summary
from shipyard.monitoring.chunk_store import SummaryStore, summarize_stored
from shipyard.monitoring.chunks import (
    SummaryPlan,
    WindowSummary,
    empty_summary,
    merge_summaries,
    summarize,
    summarize_batches,
)
from shipyard.monitoring.engines import FeatureDriftPlan, engine_feature_drift
from shipyard.monitoring.feature_drift import feature_drift

# Every method, and the histogram methods in both binnings.
CASES = [(method, {}) for method in DETECTORS] + [
    (method, {"binning": "evidently"}) for method in ("psi", "kl", "jensenshannon")
]


def test_every_method_is_covered() -> None:
    assert {method for method, _ in CASES} == set(DETECTORS)


def frames(seed: int, reference_rows: int, current_rows: int, shift: float) -> tuple:
    """A reference and a (drifted by ``shift``) window with every kind of column."""
    rng = np.random.default_rng(seed)

    def frame(rows: int, delta: float, letters: str) -> pd.DataFrame:
        continuous = rng.normal(delta, 1.0, rows).round(rng.integers(1, 4))  # with ties
        return pd.DataFrame(
            {
                "continuous": continuous,
                "wide": rng.integers(0, 60 + int(delta * 20), rows),  # many distinct ints
                "small": rng.integers(0, 4 + int(delta > 0.5), rows),  # discrete numeric
                "flag": rng.random(rows) < 0.3 + delta / 4,  # bool
                "letters": rng.choice(list(letters), rows),  # categorical strings
                "ids": np.array([f"id{i}" for i in rng.integers(0, rows * 4, rows)], dtype=object),
            }
        )

    reference = frame(reference_rows, 0.0, "abcd")
    current = frame(current_rows, shift, "abcde" if shift > 0.3 else "abcd")
    holes = rng.choice(current_rows, size=min(current_rows, 5), replace=False)
    current.loc[holes[:2], "continuous"] = np.nan
    current.loc[holes[2:3], "continuous"] = np.inf
    current.loc[holes[3:4], "continuous"] = -np.inf
    current.loc[holes[4:], "letters"] = None
    return reference, current


def assert_same(single: DatasetDrift, chunked: DatasetDrift) -> None:
    """Same columns, verdicts, bands, counts; scores and p-values equal to rounding."""
    assert chunked.skipped == single.skipped
    assert chunked.features == single.features
    assert (chunked.drifted, chunked.share) == (single.drifted, single.share)
    for want, got in zip(single.columns, chunked.columns, strict=True):
        for field in fields(DriftResult):
            a, b = getattr(want, field.name), getattr(got, field.name)
            if field.name in ("score", "p_value") and a is not None and b is not None:
                assert b == pytest.approx(a, rel=1e-9, abs=1e-12) or (math.isinf(a) and a == b), (
                    want.feature,
                    field.name,
                    a,
                    b,
                )
            else:
                assert a == b, (want.feature, field.name, a, b)


def chunked(
    fitted: DriftDetector | list[DriftDetector],
    window: pd.DataFrame,
    cuts: list[int],
    order: list[int],
) -> WindowSummary:
    """Summaries of the window cut at ``cuts``, merged in ``order``, through JSON."""
    detectors = fitted if isinstance(fitted, list) else [fitted]
    plan = SummaryPlan.for_detectors(detectors)
    bounds = [0, *sorted(set(cuts)), len(window)]
    parts = [
        WindowSummary.from_json(summarize(plan, window.iloc[a:b]).to_json())
        for a, b in itertools.pairwise(bounds)
    ]
    shuffled = [parts[i] for i in order if i < len(parts)]
    assert len(shuffled) == len(parts)
    return merge_summaries(empty_summary(plan), *shuffled)


@pytest.mark.parametrize(("method", "settings_"), CASES, ids=lambda v: str(v))
@settings(max_examples=12)
@given(
    seed=hs.integers(0, 2**32 - 1),
    reference_rows=hs.sampled_from([60, 400, 1500]),
    current_rows=hs.integers(1, 900),
    shift=hs.sampled_from([0.0, 0.05, 0.8]),
    cuts=hs.lists(hs.integers(0, 900), max_size=6),
    order=hs.permutations(range(7)),
)
def test_chunked_scores_equal_the_single_pass(
    method: str,
    settings_: dict,
    seed: int,
    reference_rows: int,
    current_rows: int,
    shift: float,
    cuts: list[int],
    order: list[int],
) -> None:
    reference, current = frames(seed, reference_rows, current_rows, shift)
    fitted = detector(method, **settings_).fit(reference)
    cuts = [cut for cut in cuts if cut < current_rows]
    summary = chunked(fitted, current, cuts, list(order))
    assert summary.rows == current_rows
    assert_same(fitted.score(current), score_summary(fitted, summary))


@pytest.mark.parametrize("method", ["ks", "auto", "wasserstein"])
def test_large_samples_take_the_asymptotic_ks_and_stay_equal(method: str) -> None:
    reference, current = frames(7, 12_000, 11_000, 0.02)
    fitted = detector(method).fit(reference)
    summary = summarize_batches(fitted, [current.iloc[:3000], current.iloc[3000:]])
    assert_same(fitted.score(current), score_summary(fitted, summary))


def test_ks_statistic_and_p_value_are_scipys_to_the_last_bit() -> None:
    from scipy import stats

    rng = np.random.default_rng(3)
    reference = np.round(rng.normal(size=700), 2)
    current = np.round(rng.normal(0.1, size=900), 2)
    column = Reference.from_frame({"x": reference})["x"]
    cells = summarize(
        SummaryPlan.for_detectors([KSDetector().fit({"x": reference})]), {"x": current}
    )
    statistic, p_value = ks_from_cells(column, cells["x"].cells)
    expected = stats.ks_2samp(reference, current)
    assert (statistic, p_value) == (float(expected.statistic), float(expected.pvalue))


def test_one_plan_serves_every_detector_at_once() -> None:
    reference, current = frames(11, 1500, 800, 0.8)
    detectors = [detector(method, **settings_).fit(reference) for method, settings_ in CASES]
    summary = chunked(detectors, current, [100, 450], [1, 0, 2])
    for fitted in detectors:
        assert_same(fitted.score(current), score_summary(fitted, summary))
    assert any(result.drifted for result in score_summary(detectors[1], summary).columns)


def test_merge_is_associative_and_empty_is_its_identity() -> None:
    reference, current = frames(5, 400, 300, 0.8)
    fitted = detector("auto").fit(reference)
    plan = SummaryPlan.for_detectors([fitted])
    a, b, c = (summarize(plan, current.iloc[i : i + 100]) for i in (0, 100, 200))
    left = merge_summaries(merge_summaries(a, b), c)
    right = merge_summaries(a, merge_summaries(b, c))
    empty = empty_summary(plan)
    assert left.to_json() == right.to_json() == merge_summaries(empty, left, empty).to_json()
    assert empty.rows == 0


def test_a_long_window_is_recomputed_from_stored_summaries_without_its_rows(tmp_path) -> None:
    reference, current = frames(9, 1500, 900, 0.8)
    fitted = PSIDetector().fit(reference)
    store = SummaryStore(tmp_path / "summaries")
    hours = [(f"hour-{i}", current.iloc[i * 300 : (i + 1) * 300]) for i in range(3)]
    first = summarize_stored(fitted, [(key, lambda f=f: f) for key, f in hours], store)

    def unreadable() -> pd.DataFrame:
        raise AssertionError("a stored chunk was read again")

    again = summarize_stored(fitted, [(key, unreadable) for key, _ in hours], store)
    assert again.to_json() == first.to_json()
    assert_same(fitted.score(current), score_summary(fitted, again))
    assert len(list((tmp_path / "summaries").rglob("*.json"))) == 3
    # Another reference means another plan: nothing stored for it is picked up.
    other = PSIDetector().fit(frames(10, 1500, 10, 0.0)[0])
    assert store.get(SummaryPlan.for_detectors([other]), "hour-0") is None


def test_summaries_of_different_plans_do_not_merge() -> None:
    reference, current = frames(1, 400, 100, 0.0)
    one = summarize(SummaryPlan.for_detectors([detector("psi").fit(reference)]), current)
    other = summarize(SummaryPlan.for_detectors([detector("ks").fit(reference)]), current)
    with pytest.raises(DataError, match="different plans"):
        merge_summaries(one, other)


def test_a_summary_without_what_a_method_needs_names_the_column() -> None:
    reference, current = frames(1, 400, 100, 0.0)
    summary = summarize_batches(detector("psi").fit(reference), [current])
    with pytest.raises(DataError, match="'continuous' lacks KS cell counts"):
        score_summary(detector("ks").fit(reference), summary)


def test_a_chunk_without_a_fitted_column_is_a_clear_error() -> None:
    reference, current = frames(1, 400, 100, 0.0)
    with pytest.raises(DataError, match="no column 'letters'"):
        summarize_batches(detector("psi").fit(reference), [current.drop(columns="letters")])


def test_detectors_fitted_on_different_references_cannot_share_a_plan() -> None:
    reference, current = frames(1, 400, 100, 0.0)
    with pytest.raises(ConfigError, match="disagree on the reference"):
        SummaryPlan.for_detectors([detector("psi").fit(reference), detector("kl").fit(current)])


def test_an_unknown_detector_is_refused_with_the_way_out() -> None:
    class Custom(DriftDetector):
        method = "custom"
        threshold = 0.5

        def _score_column(self, reference, current):  # never reached: planning refuses it
            raise NotImplementedError

    reference, _ = frames(1, 400, 100, 0.0)
    with pytest.raises(ConfigError, match=r"monitoring\.engine: duckdb"):
        SummaryPlan.for_detectors([Custom().fit(reference)])


def bands_overrides() -> dict[str, BandSettings]:
    return {
        "continuous": BandSettings(inspect=0.05, retrain=0.01, pause=0.001, method="ks"),
        "wide": BandSettings(inspect=0.1, retrain=0.2, pause=0.3, method="wasserstein"),
        "small": BandSettings(inspect=0.05, retrain=0.1, pause=0.2),
    }


@pytest.mark.parametrize("overrides", [None, "bands"])
def test_the_chunked_engine_gives_feature_drifts_results(overrides: str | None) -> None:
    reference_frame, current = frames(13, 2000, 1200, 0.8)
    reference = Reference.from_frame(reference_frame)
    bands = bands_overrides() if overrides else None
    want = feature_drift(reference, current, bands)
    got = engine_feature_drift("chunked", reference, current, bands, chunk_rows=250)
    assert [bands for _, bands in got] == [bands for _, bands in want]
    assert_same(
        DatasetDrift("features", tuple(r for r, _ in want), 0.5),
        DatasetDrift("features", tuple(r for r, _ in got), 0.5),
    )
    assert {r.band for r, _ in got} - {None, "ok"}, "the shifted window should breach a band"


def test_feature_drift_plan_covers_only_the_windows_columns() -> None:
    reference_frame, _ = frames(13, 2000, 100, 0.0)
    plan = FeatureDriftPlan.build(Reference.from_frame(reference_frame), ["small", "letters"])
    assert set(plan.plan.columns) == {"small", "letters"}
    assert plan.order == ["small", "letters"]


def test_the_engine_setting_defaults_to_duckdb_and_names_the_choices() -> None:
    assert MonitoringSettings().engine == "duckdb"
    assert MonitoringSettings(engine="chunked").engine == "chunked"
    with pytest.raises(ValueError, match="duckdb"):
        MonitoringSettings(engine="dask")
    reference_frame, current = frames(1, 100, 50, 0.0)
    with pytest.raises(ConfigError, match="not an engine"):
        engine_feature_drift("dask", Reference.from_frame(reference_frame), current)


@settings(max_examples=25)
@given(
    seed=hs.integers(0, 2**32 - 1),
    reference_rows=hs.integers(30, 3000),
    current_rows=hs.integers(1, 4000),
    shift=hs.floats(0, 1.5),
    scale=hs.sampled_from([1e-3, 1.0, 1e4]),
    cuts=hs.lists(hs.integers(0, 4000), max_size=5),
)
def test_past_the_value_limit_wasserstein_is_bounded_around_the_exact_score(
    seed: int,
    reference_rows: int,
    current_rows: int,
    shift: float,
    scale: float,
    cuts: list[int],
) -> None:
    """Cell counts and sums replace the value map: the exact score lies within the bound."""
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"x": (rng.normal(0, 1, reference_rows) * scale).round(2)})
    current = pd.DataFrame({"x": (rng.normal(shift, 1.2, current_rows) * scale).round(2)})
    fitted = detector("wasserstein").fit(reference)
    if reference["x"].nunique() <= 20:
        return  # a discrete column keeps its exact value map whatever the limit
    plan = SummaryPlan.for_detectors([fitted], value_limit=10)
    bounds = [0, *sorted({c for c in cuts if c < current_rows}), current_rows]
    parts = [summarize(plan, current.iloc[a:b]) for a, b in itertools.pairwise(bounds)]
    summary = WindowSummary.from_json(merge_summaries(*parts).to_json())
    exact = fitted.score(current)["x"]
    got = score_summary(fitted, summary)["x"]
    assert summary["x"].values is None or current["x"].nunique() <= 10
    if summary["x"].values is not None:
        assert got.score == pytest.approx(exact.score, rel=1e-9)
        return
    assert got.approximate and got.note and "within ±" in got.note
    bound = float(got.note.rsplit("±", 1)[1].split()[0])
    assert abs(got.score - exact.score) <= bound * 1.01 + 1e-9 * max(1.0, exact.score)
    if abs(exact.score - fitted.threshold) > bound * 1.01 + 1e-9:
        assert got.drifted == exact.drifted
    assert (got.n_current, got.out_of_range, got.current_nan) == (
        exact.n_current,
        exact.out_of_range,
        exact.current_nan,
    )


def test_auto_past_the_value_limit_keeps_its_tests_and_bounds_wasserstein() -> None:
    reference, current = frames(21, 3000, 20_000, 0.8)
    fitted = detector("auto").fit(reference)
    plan = SummaryPlan.for_detectors([fitted], value_limit=50)
    summary = summarize_batches(plan, [current.iloc[i : i + 5000] for i in range(0, 20_000, 5000)])
    assert summary["continuous"].values is None  # dropped: cells and sums stand in
    single, chunked_ = fitted.score(current), score_summary(fitted, summary)
    assert chunked_.skipped == single.skipped
    for want, got in zip(single.columns, chunked_.columns, strict=True):
        assert (got.feature, got.method, got.drifted) == (want.feature, want.method, want.drifted)
        if got.approximate:
            assert want.method == "wasserstein"
            assert got.score == pytest.approx(want.score, rel=1e-3)
        else:
            assert got.score == pytest.approx(want.score, rel=1e-9)


def test_a_summary_made_against_another_reference_is_refused() -> None:
    reference, current = frames(1, 400, 100, 0.0)
    other, _ = frames(2, 400, 10, 0.0)
    summary = summarize_batches(detector("ks").fit(other), [current])
    with pytest.raises(DataError, match="against another reference"):
        score_summary(detector("ks").fit(reference), summary)


def test_a_damaged_stored_summary_is_a_clear_error(tmp_path) -> None:
    reference, current = frames(1, 400, 100, 0.0)
    fitted = detector("psi").fit(reference)
    store = SummaryStore(tmp_path)
    plan = SummaryPlan.for_detectors([fitted])
    path = store.put(plan, "hour-0", summarize(plan, current))
    path.write_text(path.read_text()[:100])
    with pytest.raises(DataError, match="Not a stored window summary"):
        store.get(plan, "hour-0")


@pytest.mark.parametrize("cuts", [[], [1], [300, 650], [0, 899]])
def test_auto_types_every_kind_of_column_as_the_single_pass_does(cuts: list[int]) -> None:
    """Nullable, categorical, object and unsigned columns: same test, same skip reasons."""
    rng = np.random.default_rng(4)

    def frame(rows: int, shift: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "nullable": pd.array(rng.integers(0, 30 + shift, rows), dtype="Int64"),
                "category": pd.Categorical(rng.choice(["a", "b", "c"], rows)),
                "boolean": pd.array(rng.random(rows) < 0.3, dtype="boolean"),
                "object_bools": np.array(rng.random(rows) < 0.5, dtype=object),
                "object_mixed": np.array([1.5, True] * (rows // 2), dtype=object),
                "text": np.array([f"t{i}" for i in rng.integers(0, rows * 3, rows)], dtype=object),
                "few": rng.integers(0, 3 + shift // 10, rows),
                "unsigned": rng.integers(0, 200, rows).astype(np.uint8),
            }
        )

    reference, current = frame(1500, 0), frame(900, 10)
    current.loc[5, "nullable"] = pd.NA
    fitted = detector("auto").fit(reference)
    single = fitted.score(current)
    assert set(single.skipped) == {"object_mixed", "text"}
    assert_same(single, score_summary(fitted, chunked(fitted, current, cuts, list(range(7)))))
