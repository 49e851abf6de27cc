"""training_set(): checks before any join, Feast's answers through a project, on-demand
features, full names, the applied versions, the snapshot and the lineage it carries."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import Config, load_config
from shipyard.data import dataset_digest, load_snapshot
from shipyard.errors import ConfigError, DataError, Forbidden
from shipyard.features import load_repo
from shipyard.features.registry import apply
from shipyard.features.training_set import FEATURES_TAG, historical_features, training_set
from shipyard.store.feature_views import finish_materialization, start_materialization
from tests.support import project_of
from tests.support.features import (
    FEAST_PIT,
    driver_entities,
    driver_project,
    driver_yaml,
    features_py,
    python_driver_project,
    read_feast_csv,
)

ORDER = ["driver_id", "event_timestamp", "label"]

ON_DEMAND = """
import numpy as np

from shipyard.features import on_demand


@on_demand(
    sources=["driver_stats:conv_rate", "driver_stats:trips"],
    features=[Feature("trips_per_km", "float64"), Feature("rate_pct", "float64")],
    request_inputs=[Feature("distance_km", "float64")],
)
def ride_features(columns):
    return {
        "trips_per_km": columns["trips"] / columns["distance_km"],
        "rate_pct": columns["driver_stats:conv_rate"] * 100,
    }
"""


@pytest.fixture(scope="module")
def applied(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A driver project (yaml definitions) with its view applied."""
    project = project_of(driver_project(tmp_path_factory.mktemp("ts")))
    apply(project)
    yield project
    project.close()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(ORDER, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize(
    ("mode", "truth"),
    [("event_time", "truth_event_time.csv"), ("as_known_at", "truth_created_cutoff.csv")],
)
def test_a_training_set_from_an_entity_file_gives_feasts_answers(applied, mode, truth) -> None:
    result = training_set(
        applied, FEAST_PIT / "entities.csv", "driver_stats:conv_rate,driver_stats:trips", mode=mode
    )
    expected = _sorted(read_feast_csv(truth))
    got = _sorted(result.frame)
    assert list(got.columns) == list(expected.columns)
    assert got["label"].tolist() == expected["label"].tolist()
    for column in ("conv_rate", "trips"):
        assert got[column].isna().tolist() == expected[column].isna().tolist()
        assert got[column].astype("float64").fillna(-1).tolist() == pytest.approx(
            expected[column].fillna(-1).tolist()
        )
    assert result.mode == mode and result.entity_keys == ("driver_id",)


def test_the_result_is_snapshotted_and_carries_its_lineage(applied) -> None:
    entities = driver_entities()
    result = training_set(applied, entities, ["driver_stats:*"])
    assert result.snapshot.digest == dataset_digest(result.frame)
    stored = load_snapshot(result.snapshot.digest, applied.artifact_location)
    assert stored.rows == 10
    assert stored.frame().equals(result.frame)
    recorded = applied.store.dataset(result.snapshot.digest)
    assert recorded is not None and recorded.rows == 10
    assert result.snapshot.source.startswith("training set (event_time) of driver_stats:")
    lineage = json.loads(result.tag_value())
    version = load_repo(applied.config).views["driver_stats"].version
    assert lineage["features"] == ["driver_stats:conv_rate", "driver_stats:trips"]
    assert lineage["columns"] == {
        "driver_stats:conv_rate": "conv_rate",
        "driver_stats:trips": "trips",
    }
    assert lineage["views"] == {"driver_stats": version}
    assert lineage["entity_keys"] == ["driver_id"]
    assert lineage["entities_digest"] == dataset_digest(entities)
    assert lineage["mode"] == "event_time" and lineage["snapshot"] == result.snapshot.digest
    assert result.null_counts() == {"conv_rate": 4, "trips": 4}
    x, y = result.inputs("label")
    assert list(x.columns) == ["conv_rate", "trips"] and y is not None and len(y) == 10
    assert str(x["trips"].dtype) == "float64"  # a served value may be missing
    assert FEATURES_TAG == "shipyard.features"


def test_an_unknown_feature_fails_before_any_join(tmp_path: Path) -> None:
    # The source does not exist and the view was never applied: were anything read or
    # joined, the error would be about those. It is about the feature.
    document = driver_yaml(source={"path": "data/nowhere.parquet"})
    project = project_of(driver_project(tmp_path, features=document["features"]))
    with pytest.raises(ConfigError, match="no feature 'speed'") as caught:
        training_set(project, driver_entities(), "driver_stats:conv_rate,driver_stats:speed")
    assert "conv_rate, trips" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="no feature view 'riders'"):
        training_set(project, driver_entities(), "riders:x")


def test_a_missing_entity_column_is_named(applied) -> None:
    with pytest.raises(DataError, match="no column 'driver_id' \\(join key\\)"):
        training_set(applied, driver_entities().drop(columns=["driver_id"]), "driver_stats:trips")
    with pytest.raises(DataError, match="no column 'ts' \\(entity timestamp\\)"):
        training_set(applied, driver_entities(), "driver_stats:trips", timestamp_column="ts")
    with pytest.raises(DataError, match=r"entity file .* does not exist"):
        training_set(applied, "nowhere.csv", "driver_stats:trips")


def test_a_view_changed_since_apply_must_be_applied_again(tmp_path: Path) -> None:
    config = python_driver_project(tmp_path)
    project = project_of(config)
    apply(project)
    (config.root / "features.py").write_text(features_py(ttl_hours=3))
    with pytest.raises(ConfigError, match="differs from the applied one") as caught:
        training_set(project, driver_entities(), "driver_stats:conv_rate")
    assert "shipyard features apply" in (caught.value.hint or "")


def test_a_source_whose_schema_changed_after_apply_names_the_column(tmp_path: Path) -> None:
    project = project_of(driver_project(tmp_path))
    apply(project)
    path = project.config.root / "data" / "driver_stats.parquet"
    frame = pd.read_parquet(path)
    frame["trips"] = frame["trips"].astype(str)
    frame.to_parquet(path, index=False)
    with pytest.raises(DataError, match="'trips'"):
        training_set(project, driver_entities(), "driver_stats:conv_rate")


def test_on_demand_features_run_once_over_the_joined_frame(tmp_path: Path) -> None:
    project = project_of(python_driver_project(tmp_path, features_py(extra=ON_DEMAND)))
    apply(project)
    entities = driver_entities().assign(distance_km=2.0)
    result = training_set(project, entities, "driver_stats:conv_rate,ride_features:trips_per_km")
    assert result.feature_columns == ["conv_rate", "trips_per_km"]
    assert result.model_columns == ["conv_rate", "trips_per_km", "distance_km"]
    assert result.request_inputs == ("distance_km",)
    assert "trips" not in result.frame.columns  # a source of the on-demand view only
    assert result.frame.loc[0, "trips_per_km"] == pytest.approx(5.0)  # 10 trips / 2 km
    assert pd.isna(result.frame.loc[3, "trips_per_km"])  # expired row → missing input
    assert set(result.views) == {"driver_stats", "ride_features"}
    with pytest.raises(DataError, match="'distance_km' \\(request input"):
        training_set(project, driver_entities(), "ride_features:rate_pct")


def test_historical_features_join_without_storing_anything(applied) -> None:
    viewer = project_of(applied.config, "vera", role="viewer")
    try:
        found = historical_features(viewer, driver_entities(), "driver_stats:conv_rate")
        with pytest.raises(Forbidden):
            training_set(viewer, driver_entities(), "driver_stats:conv_rate")
    finally:
        viewer.close()
    assert found.frame["conv_rate"].isna().sum() == 4
    assert found.columns == {"driver_stats:conv_rate": "conv_rate"}
    stored = training_set(applied, driver_entities(), "driver_stats:conv_rate")
    assert found.frame.equals(stored.frame)
    assert found.entities_digest == stored.entities_digest


def test_an_on_demand_function_that_fails_is_named(tmp_path: Path) -> None:
    broken = ON_DEMAND.replace('columns["trips"] / columns["distance_km"]', "columns['nope']")
    project = project_of(python_driver_project(tmp_path, features_py(extra=broken)))
    apply(project)
    entities = driver_entities().assign(distance_km=2.0)
    with pytest.raises(ConfigError, match="'ride_features' failed: KeyError"):
        training_set(project, entities, "ride_features:trips_per_km")


def test_full_names_prefix_the_view(applied) -> None:
    result = training_set(applied, driver_entities(), "driver_stats:trips", full_names=True)
    assert result.feature_columns == ["driver_stats__trips"]
    assert result.columns == {"driver_stats:trips": "driver_stats__trips"}


def test_as_served_sees_only_what_was_materialised(tmp_path: Path) -> None:
    view = driver_yaml()["features"]["views"][0]
    view["ttl"] = None
    project = project_of(driver_project(tmp_path, features={"views": [view]}))
    apply(project)
    version = load_repo(project.config).views["driver_stats"].version
    before_run = pd.Timestamp.now(tz="UTC")
    cutoff = pd.Timestamp("2024-01-01 01:30", tz="UTC").to_pydatetime()
    run = start_materialization(project.store, "driver_stats", version, "sqlite", None, cutoff)
    finish_materialization(project.store, run, 3, cutoff, "done")
    # A run of another version of the view: the store keys rows by version, so this
    # one's rows (up to 03:00, the 02:00 ones included) were never served for this one.
    late = pd.Timestamp("2024-01-01 03:00", tz="UTC").to_pydatetime()
    other = start_materialization(project.store, "driver_stats", "0ld", "sqlite", None, late)
    finish_materialization(project.store, other, 4, late, "done")
    after_run = pd.Timestamp.now(tz="UTC") + pd.Timedelta("1s")
    entities = pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [before_run, after_run]})
    served = training_set(project, entities, "driver_stats:conv_rate", mode="as_served")
    # Before the run finished the store was empty; after, it held what the run copied
    # (event times up to 01:30): the 01:00 row, never the 02:00 ones.
    assert pd.isna(served.frame.loc[0, "conv_rate"])
    assert served.frame.loc[1, "conv_rate"] == pytest.approx(0.11)
    latest = training_set(project, entities, "driver_stats:conv_rate")
    assert latest.frame["conv_rate"].tolist() == pytest.approx([0.99, 0.99])


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from shipyard.cli import run

    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, out + err


@pytest.fixture
def cli_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = driver_project(tmp_path).root
    monkeypatch.chdir(root)
    return root


def test_the_cli_prints_rows_nulls_versions_and_the_snapshot(
    cli_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(capsys, "features", "apply")[0] == 0
    entities = FEAST_PIT / "entities.csv"
    refs = "driver_stats:conv_rate,driver_stats:trips"
    code, out, both = _cli(
        capsys, "features", "training-set", "--entities", str(entities), "--features", refs,
        "--out", "sets/drivers.parquet", "--json",
    )  # fmt: skip
    assert code == 0, both
    summary = json.loads(out)
    assert summary["rows"] == 10
    assert summary["null_counts"] == {"conv_rate": 4, "trips": 4}
    assert summary["output_columns"] == [
        "driver_id",
        "event_timestamp",
        "label",
        "conv_rate",
        "trips",
    ]
    written = pd.read_parquet(cli_project / "sets" / "drivers.parquet")
    assert dataset_digest(written) == summary["snapshot"]["digest"]
    project = project_of(load_config_of(cli_project))
    try:
        assert project.store.dataset(summary["snapshot"]["digest"]) is not None  # recorded
    finally:
        project.close()
    code, out, both = _cli(
        capsys, "features", "training-set", "--entities", str(entities), "--features", refs,
        "--mode", "as_known_at",
    )  # fmt: skip
    assert code == 0, both
    assert "10 rows × 5 columns (as_known_at)" in out
    assert "driver_stats:conv_rate" in out and summary["views"]["driver_stats"] in out


def test_the_cli_names_a_bad_feature_and_a_bad_mode(
    cli_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entities = str(FEAST_PIT / "entities.csv")
    code, _, both = _cli(
        capsys, "features", "training-set", "--entities", entities, "--features", "driver_stats:x"
    )
    assert code != 0 and "no feature 'x'" in both and "Traceback" not in both
    code, _, both = _cli(
        capsys, "features", "training-set", "--entities", entities,
        "--features", "driver_stats:trips", "--mode", "sometime",
    )  # fmt: skip
    assert code != 0 and "Unknown mode 'sometime'" in both and "Traceback" not in both


def load_config_of(root: Path) -> Config:
    return load_config(root / "shipyard.yaml", environ={})


def test_a_postgres_source_gives_the_same_answers(tmp_path: Path, postgres_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(postgres_url)
    try:
        read_feast_csv("features.csv").to_sql("driver_stats", engine, index=False)
    finally:
        engine.dispose()
    view = driver_yaml()["features"]["views"][0]
    view["source"] = {"table": "driver_stats"}  # in the project's own database
    config = driver_project(tmp_path, database_url=postgres_url, features={"views": [view]})
    project = project_of(config)
    try:
        apply(project)
        result = training_set(
            project, driver_entities(), "driver_stats:conv_rate,driver_stats:trips"
        )
    finally:
        project.close()
    expected = _sorted(read_feast_csv("truth_event_time.csv"))
    got = _sorted(result.frame)
    assert got["conv_rate"].fillna(-1).tolist() == pytest.approx(
        expected["conv_rate"].fillna(-1).tolist()
    )
    assert got["trips"].isna().tolist() == expected["trips"].isna().tolist()
