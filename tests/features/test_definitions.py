"""Feature definitions: versions (digests), refs, and loading a repo from features.py and yaml."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from shipyard.errors import ConfigError
from shipyard.features import (
    Entity,
    Feature,
    FeatureRef,
    FeatureRepo,
    FeatureView,
    FileSource,
    OnDemandView,
    SqlSource,
    load_repo,
    on_demand,
    parse_refs,
)
from shipyard.features.definitions import PostgresSource
from tests.support.features import (
    driver_project,
    driver_yaml,
    features_py,
    python_driver_project,
)

DRIVER = Entity("driver", ("driver_id",))


def stats(**changes: object) -> FeatureView:
    fields: dict = {
        "name": "driver_stats",
        "entities": ("driver",),
        "source": FileSource("data/driver_stats.parquet"),
        "features": (Feature("conv_rate", "float64"), Feature("trips", "int64")),
        "created_timestamp_column": "created",
        "ttl": timedelta(hours=2),
    }
    return FeatureView(**(fields | changes))


def test_version_is_a_stable_digest_of_the_definition() -> None:
    assert stats().version == stats().version
    assert len(stats().version) == 12 and int(stats().version, 16) >= 0
    # lists and tuples, dicts in any order: the same definition, the same version
    assert stats(entities=["driver"]).version == stats().version
    assert (
        stats(defaults={"trips": 0, "conv_rate": 0.0}).version
        == stats(defaults={"conv_rate": 0.0, "trips": 0}).version
    )


@pytest.mark.parametrize(
    "change",
    [
        {"ttl": timedelta(hours=3)},
        {"ttl": None},
        {"source": FileSource("data/other.parquet")},
        {"source": SqlSource("SELECT * FROM 'data/driver_stats.parquet'")},
        {"features": (Feature("conv_rate", "float64"),)},
        {"features": (Feature("conv_rate", "float32"), Feature("trips", "int64"))},
        {"features": (Feature("conv_rate", "float64", pii=True), Feature("trips", "int64"))},
        {"created_timestamp_column": None},
        {"timestamp_field": "ts"},
        {"missing": "reject"},
    ],
)
def test_version_changes_with_the_definition(change: dict) -> None:
    assert stats(**change).version != stats().version


def test_a_postgres_password_is_not_part_of_the_definition() -> None:
    one = stats(source=PostgresSource("t", "postgresql+psycopg://me:secret@db/x"))
    two = stats(source=PostgresSource("t", "postgresql+psycopg://me:other@db/x"))
    assert "secret" not in str(one.to_dict())
    assert one.version == two.version


def test_on_demand_version_follows_the_function_code() -> None:
    @on_demand(sources=["driver_stats:conv_rate"], features=[Feature("pct")])
    def pct(columns):  # type: ignore[no-untyped-def]
        return {"pct": columns["conv_rate"] * 100}

    @on_demand(sources=["driver_stats:conv_rate"], features=[Feature("pct")], name="pct")
    def pct_again(columns):  # type: ignore[no-untyped-def]
        return {"pct": columns["conv_rate"] * 1000}

    assert isinstance(pct, OnDemandView) and pct.name == "pct"
    assert pct.version != pct_again.version
    assert pct.compute({"conv_rate": 0.5}) == {"pct": 50.0}


def test_refs_parse() -> None:
    assert FeatureRef.parse(" driver_stats:conv_rate ") == FeatureRef("driver_stats", "conv_rate")
    assert str(FeatureRef("a", "b")) == "a:b"
    assert parse_refs("a:x, b:y,") == (FeatureRef("a", "x"), FeatureRef("b", "y"))
    assert parse_refs(["a:*"]) == (FeatureRef("a", "*"),)
    for bad in ("conv_rate", ":x", "a:", "a:b:c"):
        with pytest.raises(ConfigError, match="not a feature reference"):
            FeatureRef.parse(bad)
    with pytest.raises(ConfigError, match="No features"):
        parse_refs(" , ")


def test_resolve_names_the_unknown_view_or_feature() -> None:
    repo = FeatureRepo.of([DRIVER, stats()])
    assert repo.resolve("driver_stats:*") == (
        FeatureRef("driver_stats", "conv_rate"),
        FeatureRef("driver_stats", "trips"),
    )
    assert repo.resolve(["driver_stats:trips", "driver_stats:trips"]) == (
        FeatureRef("driver_stats", "trips"),
    )
    with pytest.raises(ConfigError, match="'rider_stats'") as unknown_view:
        repo.resolve("driver_stats:trips,rider_stats:x")
    assert "driver_stats" in str(unknown_view.value)  # the hint lists the known views
    with pytest.raises(ConfigError, match="'speed'") as unknown_feature:
        repo.resolve("driver_stats:speed")
    assert "conv_rate, trips" in str(unknown_feature.value)
    assert repo.join_keys(stats()) == ("driver_id",)


def test_a_repo_refuses_unknown_entities_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="'driver'"):
        FeatureRepo.of([stats()])
    with pytest.raises(ConfigError, match="'driver_stats'"):
        FeatureRepo.of([DRIVER, stats(), stats(ttl=None)])
    with pytest.raises(ConfigError, match="defined twice"):
        FeatureRepo.of([DRIVER, Entity("driver", ("id",))])
    with pytest.raises(ConfigError, match="declares a feature twice"):
        stats(features=(Feature("a"), Feature("a")))
    with pytest.raises(ConfigError, match="'decimal'"):
        Feature("a", "decimal")


def test_yaml_definitions_load(tmp_path: Path) -> None:
    repo = load_repo(driver_project(tmp_path))
    assert set(repo.entities) == {"driver"} and set(repo.views) == {"driver_stats"}
    view = repo.views["driver_stats"]
    assert view == stats()  # the yaml declares the same view as the Python above
    assert view.ttl == timedelta(hours=2) and view.feature("trips").dtype == "int64"


def test_python_definitions_load_and_match_yaml(tmp_path: Path) -> None:
    from_python = load_repo(python_driver_project(tmp_path / "py"))
    from_yaml = load_repo(driver_project(tmp_path / "yaml"))
    assert from_python.views["driver_stats"].version == from_yaml.views["driver_stats"].version


def test_python_and_yaml_definitions_merge(tmp_path: Path) -> None:
    document = driver_yaml()
    view = document["features"]["views"][0] | {"name": "driver_daily"}
    config = python_driver_project(tmp_path, features={"entities": [], "views": [view]})
    repo = load_repo(config)
    assert repo.names == ["driver_daily", "driver_stats"]
    clash = python_driver_project(tmp_path / "clash", features=document["features"])
    with pytest.raises(ConfigError, match="driver_stats"):
        # the same name twice is fine only when the definitions are equal: change the ttl
        (clash.root / "features.py").write_text(features_py(ttl_hours=5))
        load_repo(clash)


def test_a_features_py_that_raises_is_a_config_error(tmp_path: Path) -> None:
    config = python_driver_project(tmp_path, features_py(extra="x = 1 / 0\n"))
    with pytest.raises(ConfigError, match="ZeroDivisionError") as raised:
        load_repo(config)
    assert "features.py" in str(raised.value)


def test_a_view_without_a_file_loads_nothing(tmp_path: Path) -> None:
    config = driver_project(tmp_path, features={"views": [], "entities": []})
    repo = load_repo(config)
    assert repo.names == [] and dataclasses.asdict(repo)["entities"] == {}


def test_the_same_view_under_two_names_in_features_py_loads(tmp_path: Path) -> None:
    config = python_driver_project(tmp_path, features_py(extra="alias = driver_stats\n"))
    assert load_repo(config).names == ["driver_stats"]
