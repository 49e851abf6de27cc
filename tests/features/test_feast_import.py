"""``features import-feast``: a real Feast repo becomes Shipyard definitions with Feast's answers.

A tiny Feast 0.67 repo (DuckDB offline store, SQLite online store) holds the oracle's
``driver_stats`` view (the pinned oracle data in tests/support/feast_pit, as Parquet).
It is imported with Feast's own parser in Feast's venv (``SHIPYARD_FEAST_PYTHON``, set
by ``make test``), and then:

- the imported view joined by Shipyard's point-in-time join gives the same rows as
  Feast's ``get_historical_features`` on the same entity rows, and as the oracle file;
- the Feast repo still works after the import (``feast apply`` and
  ``get_historical_features``);
- what cannot be imported (an on-demand view, an array feature) is listed.

The conversion alone (field mappings, PostgreSQL sources, types) is checked on Feast-
shaped JSON without Feast. Without the Feast venv the Feast tests skip, except under CI
where they fail: CI must run them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from shipyard.cli import run
from shipyard.config import load_config
from shipyard.config.features import FeatureSettings
from shipyard.errors import ConfigError
from shipyard.features import load_repo
from shipyard.features.feast_import import convert, definitions, import_feast
from shipyard.features.pit import ViewJoin, point_in_time_join
from shipyard.features.sources import connect, source_relation
from tests.support.features import FEAST_PIT

ORACLE = FEAST_PIT
FEAST_PYTHON = os.environ.get("SHIPYARD_FEAST_PYTHON")  # conftest clears SHIPYARD_* per test
FEATURES = ["driver_stats:conv_rate", "driver_stats:trips"]

FEATURE_STORE_YAML = """\
project: drivers
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""

DEFINITIONS = """\
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Float32, Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_source = FileSource(
    name="driver_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float32),
        Field(name="trips", dtype=Int64),
        Field(name="history", dtype=Array(Float32)),
    ],
    source=driver_source,
)


@on_demand_feature_view(sources=[driver_stats], schema=[Field(name="rate_x2", dtype=Float64)])
def doubled(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"rate_x2": inputs["conv_rate"] * 2})
"""

# Run in Feast's venv: `feast apply`'s registry, then get_historical_features on the
# entity rows (CSV on argv[2]) as JSON records, times as ISO strings.
HISTORICAL = """
import json, sys
import pandas as pd
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
entities = pd.read_csv(sys.argv[2], parse_dates=["event_timestamp"])
frame = store.get_historical_features(entity_df=entities, features=sys.argv[3].split(",")).to_df()
frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).map(
    lambda t: t.isoformat())
print(json.dumps(json.loads(frame.to_json(orient="records"))))
"""

needs_feast = pytest.mark.skipif(
    not FEAST_PYTHON and not os.environ.get("CI"),
    reason="SHIPYARD_FEAST_PYTHON is not set (the python of a venv with feast[duckdb]==0.67.0; "
    "`make .venv-feast/.installed` builds one and `make test` passes it)",
)


def _feast_python() -> str:
    if not FEAST_PYTHON:
        pytest.fail("CI is set but SHIPYARD_FEAST_PYTHON is not: build .venv-feast (make).")
    return FEAST_PYTHON


@pytest.fixture(scope="module")
def feast_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Feast repo, its data written as Parquet from the oracle's features.csv."""
    repo = tmp_path_factory.mktemp("feast") / "driver_repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (repo / "definitions.py").write_text(DEFINITIONS)
    frame = pd.read_csv(ORACLE / "features.csv")
    for column in ("event_timestamp", "created"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    frame["conv_rate"] = frame["conv_rate"].astype("float32")
    frame["history"] = [[float(v)] for v in frame["conv_rate"]]
    frame.to_parquet(repo / "data" / "driver_stats.parquet", index=False)
    return repo


@pytest.fixture(scope="module")
def imported(feast_repo: Path) -> Any:
    """The repo imported once, the project being the folder above it."""
    return import_feast(feast_repo, _feast_python(), feast_repo.parent)


def _feast(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [_feast_python(), *argv], capture_output=True, text=True, timeout=600, cwd=cwd, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _feast_answers(repo: Path, entities: Path) -> pd.DataFrame:
    """Feast's get_historical_features for ``entities`` after ``feast apply``."""
    feast_cli = str(Path(_feast_python()).parent / "feast")
    done = subprocess.run(
        [feast_cli, "apply"], cwd=repo, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    argv = ["-c", HISTORICAL, str(repo), str(entities), ",".join(FEATURES)]
    printed = _feast(*argv, cwd=repo).stdout  # Feast reads a relative path from the cwd
    frame = pd.DataFrame(json.loads(printed.strip().splitlines()[-1]))
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """The oracle's order and types: sorted by driver, time, label; floats for features."""
    out = frame[["driver_id", "event_timestamp", "label", "conv_rate", "trips"]].copy()
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    out["conv_rate"] = out["conv_rate"].astype("float64").round(6)
    out["trips"] = out["trips"].astype("float64")
    out["driver_id"] = out["driver_id"].astype("int64")
    out["label"] = out["label"].astype("int64")
    return out.sort_values(["driver_id", "event_timestamp", "label"]).reset_index(drop=True)


def _shipyard_answers(
    imported: Any, root: Path, entities: pd.DataFrame, mode: str = "event_time"
) -> pd.DataFrame:
    """Shipyard's point-in-time join of the imported driver_stats view."""
    repo = definitions(imported)
    view = repo.views["driver_stats"]
    con = connect()
    relation = source_relation(con, view, root)
    frame = entities.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    con.register("entity_rows", frame)
    join = ViewJoin(
        name=view.name,
        relation=relation,
        join_keys=repo.join_keys(view),
        features=(("conv_rate", "conv_rate"), ("trips", "trips")),
        timestamp_field=view.timestamp_field,
        created_column=view.created_timestamp_column,
        ttl=view.ttl,
    )
    return point_in_time_join(con, "entity_rows", [join], mode=mode)  # type: ignore[arg-type]


@needs_feast
def test_import_reads_entities_views_and_sources(imported: Any, feast_repo: Path) -> None:
    assert imported.feast_version == "0.67.0"
    assert imported.entities == [{"name": "driver", "join_keys": ["driver_id"]}]
    (view,) = imported.views
    assert view == {
        "name": "driver_stats",
        "entities": ["driver"],
        "source": {"path": "driver_repo/data/driver_stats.parquet"},
        "timestamp_field": "event_timestamp",
        "created_timestamp_column": "created",
        "ttl": "2h",
        "features": {"conv_rate": "float32", "trips": "int64"},
    }
    left_out = {(u.kind, u.name) for u in imported.unsupported}
    assert left_out == {("feature", "driver_stats:history"), ("on-demand view", "doubled")}
    reasons = {u.name: u.reason for u in imported.unsupported}
    assert "Array(Float32)" in reasons["driver_stats:history"]
    assert reasons["doubled"].startswith("not imported (Python code")
    text = imported.to_yaml()
    assert "# Left out: on-demand view doubled" in text and "ttl: 2h" in text


@needs_feast
def test_imported_view_gives_feasts_point_in_time_answers(
    imported: Any, feast_repo: Path, tmp_path: Path
) -> None:
    entities = pd.read_csv(ORACLE / "entities.csv")
    entity_file = tmp_path / "entities.csv"
    entities.to_csv(entity_file, index=False)

    ours = _sorted(_shipyard_answers(imported, feast_repo.parent, entities))
    truth = _sorted(pd.read_csv(ORACLE / "truth_event_time.csv"))
    pd.testing.assert_frame_equal(ours, truth)
    assert ours["conv_rate"].isna().sum() == 4  # expired, future-only and unknown rows

    # "As known at": the created cutoff, Feast's filter_by_created_timestamp.
    known = _sorted(_shipyard_answers(imported, feast_repo.parent, entities, "as_known_at"))
    pd.testing.assert_frame_equal(known, _sorted(pd.read_csv(ORACLE / "truth_created_cutoff.csv")))

    # After the import, the Feast repo still answers, and the same.
    feast = _sorted(_feast_answers(feast_repo, entity_file))
    pd.testing.assert_frame_equal(ours, feast)


@needs_feast
def test_cli_writes_the_section_that_load_repo_reads(
    feast_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    config_file = project / "shipyard.yaml"
    config_file.write_text("project: drivers  # the team's project\n")
    argv = ["--config", str(config_file), "features", "import-feast", str(feast_repo)]
    assert run([*argv, "--python", _feast_python(), "--write", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["written"] == f"appended to {config_file}"
    assert [u["name"] for u in printed["unsupported"]] == ["driver_stats:history", "doubled"]
    assert config_file.read_text().startswith("project: drivers  # the team's project\n")

    repo = load_repo(load_config(config_file))
    view = repo.views["driver_stats"]
    assert view.feature_names == ("conv_rate", "trips")
    assert view.ttl is not None and view.ttl.total_seconds() == 7200
    assert project.joinpath(view.source.path).resolve() == (  # type: ignore[union-attr]
        feast_repo / "data" / "driver_stats.parquet"
    )

    # Again: merged by name, not duplicated.
    assert run([*argv, "--python", _feast_python(), "--write"]) == 0
    assert list(load_repo(load_config(config_file)).views) == ["driver_stats"]

    # --out writes the same block to a file; without it, the block is printed.
    capsys.readouterr()
    out = tmp_path / "features.yaml"
    assert run([*argv, "--python", _feast_python(), "--out", str(out)]) == 0
    assert f"written to {out}" in capsys.readouterr().out
    block = yaml.safe_load(out.read_text())
    assert FeatureSettings.model_validate(block["features"]).views[0].ttl == "2h"
    assert run([*argv, "--python", _feast_python()]) == 0
    assert capsys.readouterr().out == out.read_text()


def test_cli_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "shipyard.yaml"
    config_file.write_text("project: drivers\n")
    argv = ["--config", str(config_file), "features", "import-feast", str(tmp_path)]
    assert run(argv) == 2
    assert "No Python with Feast given" in capsys.readouterr().err
    assert run([*argv, "--python", "/nonexistent/python"]) == 2
    assert "no feature_store.yaml" in capsys.readouterr().err
    (tmp_path / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    assert run([*argv, "--python", str(tmp_path / "no-python")]) == 2
    assert "No Python interpreter at" in capsys.readouterr().err


def _dump(**view: Any) -> dict[str, Any]:
    source = {
        "kind": "file",
        "class": "FileSource",
        "path": "/data/trips.parquet",
        "timestamp_field": "ts",
        "created_timestamp_column": None,
        "field_mapping": {},
    }
    base = {
        "name": "trips",
        "entities": ["driver"],
        "ttl_seconds": 0.0,
        "features": [{"name": "trips", "dtype": "Int64"}],
        "source": source,
        "description": "",
    }
    return {
        "repo": "/r",
        "feast_version": "0.67.0",
        "offline_store": {"type": "postgres", "host": "db", "port": 5432, "database": "f"},
        "entities": [
            {"name": "driver", "join_keys": ["driver_id"], "description": ""},
            {"name": "__dummy", "join_keys": ["__dummy_id"], "description": ""},
        ],
        "feature_views": [base | view],
        "feature_services": [{"name": "model_v1"}],
    }


def test_conversion_maps_types_ttl_and_sources(tmp_path: Path) -> None:
    types = ["Float32", "Float64", "Int64", "Int32", "String", "Bool", "Bytes"]
    features = [{"name": t.lower(), "dtype": t} for t in types]
    out = convert(_dump(features=features, ttl_seconds=86400 * 3), tmp_path)
    (view,) = out.views
    assert view["features"] == {
        "float32": "float32",
        "float64": "float64",
        "int64": "int64",
        "int32": "int32",
        "string": "string",
        "bool": "bool",
    }
    assert view["ttl"] == "3d" and view["source"] == {"path": "/data/trips.parquet"}
    assert [e["name"] for e in out.entities] == ["driver"]
    assert [(u.kind, u.name) for u in out.unsupported] == [
        ("feature", "trips:bytes"),
        ("feature service", "model_v1"),
    ]
    assert convert(_dump(), tmp_path).views[0]["ttl"] is None  # Feast's 0: forever


def test_conversion_turns_a_field_mapping_into_a_query(tmp_path: Path) -> None:
    data = tmp_path / "trips.parquet"
    times = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00"], utc=True)
    pd.DataFrame({"driver_id": [1, 2], "ts": times, "n": [5, 7]}).to_parquet(data)
    source = _dump()["feature_views"][0]["source"] | {"path": str(data)}
    source["field_mapping"] = {"ts": "event_ts", "n": "trips"}
    out = convert(_dump(source=source), tmp_path)
    (settings,) = out.views
    assert settings["timestamp_field"] == "event_ts"
    assert set(settings["source"]) == {"sql"}

    # The query is DuckDB's, and the view reads through it with the renamed columns.
    view = definitions(out).views["trips"]
    con = connect()
    relation = source_relation(con, view, tmp_path)
    rows = con.execute(f"SELECT driver_id, event_ts, trips FROM {relation} ORDER BY 1").fetchall()
    assert [(row[0], row[2]) for row in rows] == [(1, 5), (2, 7)]


def test_conversion_of_postgres_sources(tmp_path: Path) -> None:
    table = {"kind": "postgres", "class": "PostgreSQLSource", "table": "public.trips"}
    table |= {"timestamp_field": "ts", "field_mapping": {}}
    (view,) = convert(_dump(source=table), tmp_path).views
    assert view["source"] == {"table": "public.trips", "database_url": "postgresql://db:5432/f"}

    query = table | {"table": None, "query": "SELECT 1"}
    out = convert(_dump(source=query), tmp_path)
    assert out.views == []
    assert ("feature view", "trips") in {(u.kind, u.name) for u in out.unsupported}
    assert "query" in out.unsupported[0].reason


def test_conversion_refuses_what_shipyard_cannot_define(tmp_path: Path) -> None:
    # A view whose entity Feast never declared cannot become a Shipyard view silently.
    document = _dump()
    document["entities"] = []
    out = convert(document, tmp_path)
    assert out.views == [] and out.unsupported[0].reason.startswith("it has no entity")
    bad = _dump(features=[{"name": "x", "dtype": "Float64"}, {"name": "x", "dtype": "Int64"}])
    with pytest.raises(ConfigError):
        convert(bad, tmp_path)
