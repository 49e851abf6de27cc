"""The feature registry: apply, versions, diffs, schema drift, and the stored rows behind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shipyard.errors import ConfigError, DataError, Forbidden, NotFoundError
from shipyard.features import load_repo
from shipyard.features.registry import (
    Change,
    apply,
    diff,
    diff_versions,
    list_views,
    schema_drift,
    show,
)
from shipyard.store.feature_views import (
    current_views,
    finish_materialization,
    last_materialization,
    materializations,
    start_materialization,
    view_versions,
)
from tests.support import project_of
from tests.support.features import driver_project, driver_yaml, features_py, python_driver_project

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def applied_events(project) -> list:  # type: ignore[no-untyped-def]
    return project.store.events(kind="features.applied")


def test_apply_twice_registers_one_version(tmp_path: Path) -> None:
    project = project_of(driver_project(tmp_path))
    first = apply(project)
    assert [(v.name, v.status) for v in first.views] == [("driver_stats", "new")]
    version = load_repo(project.config).views["driver_stats"].version
    assert first.views[0].version == version
    again = apply(project)
    assert [v.status for v in again.views] == ["unchanged"]
    assert [v.version for v in view_versions(project.store, "driver_stats")] == [version]
    events = applied_events(project)
    assert len(events) == 1
    assert events[0].subject == "feature_view:driver_stats"
    assert events[0].payload["version"] == version and events[0].actor == "tester"
    stored = current_views(project.store)["driver_stats"]
    assert stored.source_schema["conv_rate"] == "DOUBLE"
    assert stored.definition["ttl_seconds"] == 7200


def test_a_change_is_a_second_version_and_both_are_kept(tmp_path: Path) -> None:
    config = python_driver_project(tmp_path)
    project = project_of(config)
    apply(project)
    (config.root / "features.py").write_text(features_py(ttl_hours=3))
    result = apply(project)
    (changed,) = result.views
    assert changed.status == "changed"
    assert [str(c) for c in changed.changes] == ["~ ttl_seconds: 7200.0 → 10800.0"]
    versions = view_versions(project.store, "driver_stats")
    assert [v.version for v in versions] == [changed.previous, changed.version]
    assert current_views(project.store)["driver_stats"].version == changed.version
    assert len(applied_events(project)) == 2
    # going back: the old version is current again, and still only two rows
    (config.root / "features.py").write_text(features_py())
    (reverted,) = apply(project).views
    assert reverted.status == "changed" and reverted.version == changed.previous
    assert current_views(project.store)["driver_stats"].version == changed.previous
    assert len(view_versions(project.store, "driver_stats")) == 2


def test_diff_is_field_level() -> None:
    old = {
        "name": "v",
        "ttl_seconds": 7200,
        "source": {"kind": "file", "path": "a.parquet"},
        "features": [
            {"name": "a", "dtype": "float64", "pii": False},
            {"name": "b", "dtype": "int64", "pii": False},
        ],
    }
    new = {
        "name": "v",
        "ttl_seconds": None,
        "source": {"kind": "sql", "sql": "SELECT 1"},
        "features": [
            {"name": "b", "dtype": "float64", "pii": True},
            {"name": "c", "dtype": "string", "pii": False},
        ],
        "description": "new",
    }
    assert diff(old, new) == [
        Change("description", "added", after="new"),
        Change("features.a", "removed", "float64"),
        Change("features.b.dtype", "changed", "int64", "float64"),
        Change("features.b.pii", "changed", False, True),
        Change("features.c", "added", after="string"),
        Change("source", "changed", old["source"], new["source"]),
        Change("ttl_seconds", "changed", 7200, None),
    ]
    assert diff(old, old) == []


def test_a_bad_source_registers_nothing(tmp_path: Path) -> None:
    document = driver_yaml()
    good = document["features"]["views"][0]
    bad = good | {"name": "bad_stats", "features": {"conv_rate": "float64", "speed": "float64"}}
    config = driver_project(tmp_path, features={"views": [good, bad]})
    project = project_of(config)
    with pytest.raises(DataError, match="'speed'"):
        apply(project)
    assert current_views(project.store) == {}
    assert applied_events(project) == []


def test_apply_needs_the_train_scope(tmp_path: Path) -> None:
    project = project_of(driver_project(tmp_path), role="viewer")
    with pytest.raises(Forbidden, match="models:train"):
        apply(project)
    assert list_views(project) == []


def test_on_demand_views_are_applied_with_their_code(tmp_path: Path) -> None:
    extra = """
        import numpy as np
        from shipyard.features import on_demand

        @on_demand(
            sources=["driver_stats:conv_rate"],
            features=[Feature("conv_pct", "float64")],
        )
        def conv_pct(columns):
            return {"conv_pct": np.asarray(columns["conv_rate"]) * 100}
        """
    project = project_of(python_driver_project(tmp_path, features_py(extra=extra)))
    result = apply(project)
    assert [(v.name, v.kind, v.status) for v in result.views] == [
        ("conv_pct", "on_demand", "new"),
        ("driver_stats", "view", "new"),
    ]
    stored = current_views(project.store)["conv_pct"]
    assert "* 100" in stored.definition["function"] and stored.source_schema == {}


def test_list_show_and_diff_versions(tmp_path: Path) -> None:
    config = python_driver_project(tmp_path)
    project = project_of(config)
    first = apply(project).views[0].version
    text = features_py(features='Feature("conv_rate", "float64"), Feature("trips", "float64")')
    (config.root / "features.py").write_text(text)
    pending = diff_versions(project, "driver_stats")
    assert pending.from_version == first
    assert [str(c) for c in pending.changes] == ["~ features.trips.dtype: int64 → float64"]
    second = apply(project).views[0].version
    (listed,) = list_views(project)
    assert (listed.name, listed.version, listed.applied_by) == ("driver_stats", second, "tester")
    detail = show(project, "driver_stats", first[:6])
    assert detail.view.version == first and detail.current == second
    assert [v["version"] for v in detail.to_dict()["versions"]] == [first, second]
    back = diff_versions(project, "driver_stats", second, first)
    assert [str(c) for c in back.changes] == ["~ features.trips.dtype: float64 → int64"]
    with pytest.raises(NotFoundError, match="'nope'"):
        show(project, "nope")
    with pytest.raises(NotFoundError, match="Its versions"):
        show(project, "driver_stats", "zzz")


def test_schema_drift_after_apply_names_the_column(tmp_path: Path) -> None:
    config = driver_project(tmp_path)
    project = project_of(config)
    with pytest.raises(ConfigError, match="not been applied"):
        schema_drift(project, "driver_stats")
    apply(project)
    schema_drift(project, "driver_stats")  # unchanged: fine
    path = config.root / "data" / "driver_stats.parquet"
    frame = pd.read_parquet(path)
    frame["unused"] = 1  # a column the view does not use may come and go
    frame.to_parquet(path, index=False)
    schema_drift(project, "driver_stats")
    frame["trips"] = frame["trips"].astype("int32")
    frame.to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"'trips' was BIGINT and is now INTEGER"):
        schema_drift(project, "driver_stats")
    frame.drop(columns=["trips"]).assign(trips=frame["trips"].astype("int64")).drop(
        columns=["created"]
    ).to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"'created' was .* and is missing"):
        schema_drift(project, load_repo(config).views["driver_stats"])


def test_materializations_are_recorded(tmp_path: Path) -> None:
    project = project_of(driver_project(tmp_path))
    store = project.store
    assert last_materialization(store, "driver_stats") is None
    first = start_materialization(store, "driver_stats", "v1", "sqlite", None, T0)
    assert materializations(store, "driver_stats") == []
    assert [m.status for m in materializations(store, "driver_stats", done_only=False)] == [
        "running"
    ]
    done = finish_materialization(store, first, 6, T0 - timedelta(hours=1), "done")
    assert (done.rows, done.status, done.start_ts) == (6, "done", None)
    failed = start_materialization(store, "driver_stats", "v1", "redis", T0, T0 + timedelta(1))
    finish_materialization(store, failed, 0, None, "failed", "Redis is down")
    last = last_materialization(store, "driver_stats")
    assert last is not None and last.id == first and last.end_ts == T0
    assert last.max_event_ts == T0 - timedelta(hours=1)
    events = store.events(kind="features.materialized")
    assert [e.payload["status"] for e in events] == ["failed", "done"]
    assert events[0].reason == "Redis is down"
    assert last.to_dict()["end_ts"] == "2024-01-01T00:00:00+00:00"
    with pytest.raises(NotFoundError):
        finish_materialization(store, 999, 0, None, "done")


def test_versions_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    config = python_driver_project(tmp_path, database_url=postgres_url)
    project = project_of(config)
    try:
        first = apply(project).views[0]
        (config.root / "features.py").write_text(features_py(ttl_hours=1))
        second = apply(project).views[0]
        assert (first.status, second.status) == ("new", "changed")
        assert apply(project).views[0].status == "unchanged"
        assert current_views(project.store)["driver_stats"].version == second.version
        assert [v.version for v in view_versions(project.store, "driver_stats")] == [
            first.version,
            second.version,
        ]
    finally:
        project.close()
