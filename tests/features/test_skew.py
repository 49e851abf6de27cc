"""Value skew and freshness of served features (shipyard.features.skew)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from shipyard.config.features import SkewSettings
from shipyard.errors import ConfigError
from shipyard.features.definitions import Entity, Feature, FeatureView, FileSource
from shipyard.features.repo import FeatureRepo, load_repo
from shipyard.features.skew import (
    FEATURES_TAG,
    FeatureUse,
    ServedRows,
    band_level,
    freshness_of,
    mismatches,
    value_skew_of,
)

SETTINGS = SkewSettings()
T0 = pd.Timestamp("2026-12-01T12:00:00Z")


def _repo(missing: str = "null", sla: timedelta | None = timedelta(hours=1)) -> FeatureRepo:
    view = FeatureView(
        "driver_stats",
        entities=("driver",),
        source=FileSource("data/driver_stats.parquet"),
        features=(Feature("conv_rate"), Feature("trips", "int64"), Feature("city", "string")),
        ttl=timedelta(hours=2),
        missing=missing,  # type: ignore[arg-type]
        defaults={"conv_rate": 0.5} if missing == "default" else {},
        freshness_sla=sla,
    )
    return FeatureRepo.of([Entity("driver", ("driver_id",)), view])


USE = FeatureUse(
    features=("driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city"),
    columns={
        "driver_stats:conv_rate": "conv_rate",
        "driver_stats:trips": "trips",
        "driver_stats:city": "city",
    },
    views={"driver_stats": "abc"},
    entity_keys=("driver_id",),
)


def _rows(n: int, conv: np.ndarray, ages_s: np.ndarray | None = None) -> ServedRows:
    times = pd.Series([T0 + pd.Timedelta(seconds=i) for i in range(n)], dtype="datetime64[us, UTC]")
    request_ts = ((times - T0) / pd.Timedelta(seconds=1)).to_numpy() + T0.timestamp()
    ages = np.full(n, 60.0) if ages_s is None else ages_s
    inputs = pd.DataFrame(
        {
            "conv_rate": conv,
            "trips": np.arange(n, dtype=np.float64),
            "city": ["x"] * n,
            "driver_id": np.arange(n, dtype=np.float64) + 1,
            "feature_ts__driver_stats": request_ts - ages,
        }
    )
    return ServedRows(inputs, times, np.array([f"r{i}" for i in range(n)], dtype=object))


def _expected(n: int, conv: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"conv_rate": conv, "trips": np.arange(n, dtype=np.int64), "city": ["x"] * n}
    )


def test_seeded_skew_is_caught_with_examples() -> None:
    n = 200
    offline = np.linspace(0.1, 0.9, n)
    served = offline.copy()
    served[: n * 3 // 4] *= 1.1  # the online pipeline computes conv_rate differently
    result = value_skew_of(_rows(n, served), _expected(n, offline), USE, _repo(), SETTINGS)
    conv = result.features[0]
    assert (conv.compared, conv.mismatched) == (n, 150)
    assert conv.rate == pytest.approx(0.75)
    assert conv.level == "pause"
    assert result.level == "pause"
    assert len(conv.examples) == 5
    first = conv.examples[0]
    assert first.entity == {"driver_id": 1.0}
    assert first.served == pytest.approx(first.expected * 1.1)
    assert [f.level for f in result.features[1:]] == ["ok", "ok"]
    assert "conv_rate differs in 150 of 200" in result.describe()


def test_clean_traffic_is_silent_within_tolerance() -> None:
    n = 100
    offline = np.linspace(0.1, 0.9, n)
    served = offline * (1 + 1e-9)  # float noise is not skew
    result = value_skew_of(_rows(n, served), _expected(n, offline), USE, _repo(), SETTINGS)
    assert result.level == "ok"
    assert all(f.mismatched == 0 and f.examples == [] for f in result.features)


def test_a_few_mismatches_reach_inspect_only() -> None:
    n = 100
    offline = np.linspace(0.1, 0.9, n)
    served = offline.copy()
    served[:2] += 1  # 2 %: above inspect (1 %), below retrain (5 %)
    result = value_skew_of(_rows(n, served), _expected(n, offline), USE, _repo(), SETTINGS)
    assert result.features[0].level == "inspect"


def test_missing_values_compare_by_the_views_policy() -> None:
    offline = pd.Series([np.nan, np.nan, 0.3, np.nan])
    served = pd.Series([np.nan, 0.5, np.nan, 0.7])
    # null policy: null==null ok; served 0.5 for an offline null differs; a lost row differs
    assert mismatches(served, offline, 1e-6).tolist() == [False, True, True, True]
    rows = _rows(4, served.to_numpy())
    expected = _expected(4, offline.to_numpy())
    null_policy = value_skew_of(rows, expected, USE, _repo("null"), SETTINGS).features[0]
    assert null_policy.mismatched == 3
    # default policy (default 0.5): the served default for an unknown entity is explained
    default_policy = value_skew_of(rows, expected, USE, _repo("default"), SETTINGS).features[0]
    assert default_policy.mismatched == 3  # row 0: served null where the default was due
    assert [e.request_id for e in default_policy.examples] == ["r0", "r2", "r3"]


def test_examples_are_plain_json_whatever_the_missing_value() -> None:
    rows = _rows(10, np.arange(10, dtype=float))
    expected = _expected(10, np.arange(10, dtype=float))
    expected["trips"] = pd.array([None, *range(1, 10)], dtype="Int64")  # pd.NA offline
    result = value_skew_of(rows, expected, USE, _repo(), SETTINGS)
    trips = result.features[1]
    assert trips.mismatched == 1
    example = trips.examples[0].to_dict()
    assert example["served"] == 0.0 and example["expected"] is None
    assert orjson.loads(orjson.dumps(result.to_dict()))["features"][1]["mismatched"] == 1


def test_strings_compare_exactly() -> None:
    assert mismatches(
        pd.Series(["a", "b", None], dtype=object), pd.Series(["a", "B", None], dtype=object), 0.1
    ).tolist() == [False, True, False]


def test_a_feature_missing_from_the_log_is_unknown_not_ok() -> None:
    full = _rows(10, np.ones(10))
    rows = ServedRows(full.inputs.drop(columns=["trips"]), full.times, full.request_ids)
    result = value_skew_of(rows, _expected(10, np.ones(10)), USE, _repo(), SETTINGS)
    trips = result.features[1]
    assert trips.level == "unknown" and "not in the log" in (trips.note or "")
    assert result.level == "ok"


def test_freshness_breach() -> None:
    n = 100
    ages = np.full(n, 600.0)
    ages[:60] = 7200.0  # 60 % of served values are 2 h old, SLA 1 h
    ages[-5:] = np.nan  # served as missing: no age
    result = freshness_of(_rows(n, np.ones(n), ages), USE, _repo(), SETTINGS.stale_bands)
    (view,) = result.views
    assert (view.served, view.missing, view.stale) == (95, 5, 60)
    assert view.stale_share == pytest.approx(60 / 95)
    assert view.p50_age_seconds == pytest.approx(7200.0)
    assert view.p95_age_seconds == pytest.approx(7200.0)
    assert view.level == "pause" and result.level == "pause"


def test_fresh_values_are_ok_and_no_sla_gives_ages_only() -> None:
    fresh = freshness_of(_rows(50, np.ones(50)), USE, _repo(), SETTINGS.stale_bands)
    assert fresh.level == "ok" and fresh.views[0].p95_age_seconds == pytest.approx(60.0)
    no_sla = freshness_of(_rows(50, np.ones(50)), USE, _repo(sla=None), SETTINGS.stale_bands)
    assert no_sla.views[0].stale_share is None and no_sla.views[0].note


def test_bands_and_the_tag() -> None:
    assert [band_level(x, (0.01, 0.05, 0.1)) for x in (0, 0.01, 0.05, 0.2, None)] == [
        "ok",
        "inspect",
        "retrain",
        "pause",
        "unknown",
    ]
    tags = {
        FEATURES_TAG: orjson.dumps(
            {
                "features": ["driver_stats:conv_rate"],
                "columns": {"driver_stats:conv_rate": "conv"},
                "views": {"driver_stats": "v1"},
                "entity_keys": ["driver_id"],
            }
        ).decode()
    }
    use = FeatureUse.from_tags(tags)
    assert use is not None and use.columns == {"driver_stats:conv_rate": "conv"}
    assert FeatureUse.from_tags({}) is None
    with pytest.raises(ConfigError, match=FEATURES_TAG):
        FeatureUse.from_tags({FEATURES_TAG: "{not json"})


def test_sample_is_bounded_and_keeps_order(tmp_path: Path) -> None:
    rows = _rows(500, np.arange(500, dtype=float))
    sampled = rows.sample(50)
    assert sampled.rows == 50
    assert list(sampled.inputs["conv_rate"]) == sorted(sampled.inputs["conv_rate"])
    assert rows.sample(1000) is rows


# --- the offline recomputation against a real source, store and prediction log -----------

NOW = pd.Timestamp.now(tz="UTC").floor("s")
DRIVERS = 40


def _source(root: Path) -> pd.DataFrame:
    """Two rows per driver: 90 and 30 minutes old (created a minute after each)."""
    rng = np.random.default_rng(7)
    frames = []
    for minutes in (90, 30):
        event = NOW - pd.Timedelta(minutes=minutes)
        frames.append(
            pd.DataFrame(
                {
                    "driver_id": np.arange(1, DRIVERS + 1, dtype=np.int64),
                    "event_timestamp": event,
                    "created": event + pd.Timedelta(minutes=1),
                    "conv_rate": rng.random(DRIVERS).round(6),
                    "trips": rng.integers(0, 100, DRIVERS).astype(np.int64),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    for column in ("event_timestamp", "created"):
        frame[column] = frame[column].astype("datetime64[us, UTC]")
    frame.to_parquet(root / "data" / "driver_stats.parquet", index=False)
    return frame


def _materialised(project: Any) -> None:
    """One finished run 10 minutes ago that copied everything up to then."""
    from shipyard.store.tables import MaterializationRow

    view = load_repo(project.config).views["driver_stats"]
    with project.store.session() as session:
        session.add(
            MaterializationRow(
                view="driver_stats",
                version=view.version,
                backend="sqlite",
                start_ts=None,
                end_ts=(NOW - pd.Timedelta(minutes=10)).to_pydatetime(),
                started_at=(NOW - pd.Timedelta(minutes=10)).to_pydatetime(),
                finished_at=(NOW - pd.Timedelta(minutes=9)).to_pydatetime(),
                rows=2 * DRIVERS,
                status="done",
            )
        )


def _log(
    config: Any, source: pd.DataFrame, factor: float, unknown: int = 0, text_keys: bool = False
) -> None:
    """One request per driver (plus ``unknown`` unknown drivers), served as the online
    store holds the newest row, conv_rate multiplied by ``factor``."""
    from shipyard.logs.writer import PredictionBatch, PredictionLogWriter

    newest = source.sort_values("event_timestamp").groupby("driver_id").last()
    with PredictionLogWriter(config.resolve(config.serving.logs)) as writer:
        for i, driver in enumerate(list(newest.index) + [1000 + k for k in range(unknown)]):
            if driver in newest.index:
                row = newest.loc[driver]
                served = [
                    row.conv_rate * factor,
                    float(row.trips),
                    float(driver),
                    row.event_timestamp.timestamp(),
                ]
            else:
                served = [np.nan, np.nan, float(driver), np.nan]
            writer.log(
                PredictionBatch(
                    request_id=f"q{i}",
                    time=(NOW - pd.Timedelta(minutes=5) + pd.Timedelta(seconds=i)).to_pydatetime(),
                    model="rides",
                    version="1",
                    role="live",
                    columns=("conv_rate", "trips", "driver_id", "feature_ts__driver_stats"),
                    matrix=(
                        np.array([[*served[:2], str(driver), served[3]]], dtype=object)
                        if text_keys
                        else np.array([served])
                    ),
                    labels=np.array([0]),
                    probabilities=None,
                    latency_ms=1.0,
                    status="ok",
                )
            )


RIDES_USE = FeatureUse(
    features=("driver_stats:conv_rate", "driver_stats:trips"),
    columns={"driver_stats:conv_rate": "conv_rate", "driver_stats:trips": "trips"},
    views={},
    entity_keys=("driver_id",),
)


@pytest.mark.parametrize(("factor", "level"), [(1.0, "ok"), (1.1, "pause")])
def test_recomputed_as_served_from_the_log(tmp_path: Path, factor: float, level: str) -> None:
    from shipyard.features.skew_check import read_served_rows, recompute_as_served
    from tests.support import project_of
    from tests.support.features import driver_project

    config = driver_project(tmp_path)
    source = _source(config.root)
    project = project_of(config)
    try:
        _materialised(project)
        _log(config, source, factor, unknown=3)
        rows = read_served_rows(config, "rides", "1")
        assert rows.rows == DRIVERS + 3
        repo = load_repo(config)
        expected = recompute_as_served(config, project.store, RIDES_USE, repo, rows)
        result = value_skew_of(rows, expected, RIDES_USE, repo, SETTINGS)
    finally:
        project.close()
    conv, trips = result.features
    assert conv.compared == DRIVERS + 3  # unknown drivers: null served, null expected
    assert conv.level == level and trips.level == "ok"
    assert conv.mismatched == (0 if factor == 1.0 else DRIVERS)
    freshness = freshness_of(rows, RIDES_USE, repo, SETTINGS.stale_bands)
    assert freshness.views[0].missing == 3
    assert freshness.views[0].p50_age_seconds == pytest.approx(25 * 60, abs=60)


ON_DEMAND = """
import numpy as np

@on_demand(
    sources=["driver_stats:conv_rate"],
    features=[Feature("conv_per_km", "float64")],
    request_inputs=[Feature("distance", "float64")],
)
def ride(columns):
    return {"conv_per_km": np.asarray(columns["conv_rate"]) / columns["distance"]}
"""


def test_on_demand_features_are_recomputed_by_their_own_function(tmp_path: Path) -> None:
    from shipyard.features.skew_check import read_served_rows, recompute_as_served
    from tests.support import project_of
    from tests.support.features import features_py, python_driver_project

    text = features_py().replace(
        "from shipyard.features import", "from shipyard.features import on_demand,"
    )
    config = python_driver_project(tmp_path, text + ON_DEMAND)
    source = _source(config.root)
    project = project_of(config)
    try:
        _materialised(project)
        _log(config, source, 1.0)
        rows = read_served_rows(config, "rides", "1")
        distance = np.arange(1, rows.rows + 1, dtype=np.float64)
        inputs = rows.inputs.assign(distance=distance)
        newest = source.sort_values("event_timestamp").groupby("driver_id").last()
        served = newest.loc[inputs["driver_id"].astype(int), "conv_rate"].to_numpy() / distance
        served[0] *= 2  # one request served a wrong on-demand value
        rows = ServedRows(inputs.assign(conv_per_km=served), rows.times, rows.request_ids)
        use = FeatureUse(
            features=("ride:conv_per_km",),
            columns={"ride:conv_per_km": "conv_per_km"},
            views={},
            entity_keys=("driver_id",),
            request_inputs=("distance",),
        )
        repo = load_repo(config)
        expected = recompute_as_served(config, project.store, use, repo, rows)
        result = value_skew_of(rows, expected, use, repo, SETTINGS)
    finally:
        project.close()
    (conv,) = result.features
    assert (conv.compared, conv.mismatched) == (DRIVERS, 1)
    assert conv.examples[0].request_id == "q0"
    assert conv.examples[0].served == pytest.approx(2 * conv.examples[0].expected)


def test_keys_logged_as_text_join_an_integer_key(tmp_path: Path) -> None:
    from shipyard.features.skew_check import read_served_rows, recompute_as_served
    from tests.support import project_of
    from tests.support.features import driver_project

    config = driver_project(tmp_path)
    source = _source(config.root)
    project = project_of(config)
    try:
        _materialised(project)
        _log(config, source, 1.0, text_keys=True)
        rows = read_served_rows(config, "rides", "1")
        assert rows.inputs["driver_id"].iloc[0] == "1"
        repo = load_repo(config)
        expected = recompute_as_served(config, project.store, RIDES_USE, repo, rows)
        result = value_skew_of(rows, expected, RIDES_USE, repo, SETTINGS)
    finally:
        project.close()
    assert expected["conv_rate"].notna().all()
    assert result.level == "ok" and result.features[0].compared == DRIVERS
