"""Materialisation into the online store: windows, incremental runs, late rows, streaming,
the recorded runs and their events, schema drift, failures, freshness."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard.config import Config
from shipyard.errors import ConfigError, DataError, FeatureStoreUnavailable, Forbidden
from shipyard.features import load_repo
from shipyard.features.materialize import MaterializeProgress, freshness, materialize
from shipyard.features.online import open_online_store
from shipyard.features.registry import apply
from shipyard.project import Project
from shipyard.store.feature_views import materializations
from tests.support import free_port, project_of
from tests.support.features import (
    DRIVER_STATS,
    driver_project,
    driver_yaml,
    random_feature_data,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _applied(config: Config) -> Project:
    project = project_of(config)
    apply(project)
    return project


def _online(project: Project, driver: int) -> tuple[Any, ...] | None:
    view = load_repo(project.config).views["driver_stats"]
    store = open_online_store(project.config)
    try:
        row = store.read(view, [(driver,)])[0]
    finally:
        store.close()
    return None if row is None else row.values


def _append(config: Config, rows: list[dict[str, Any]]) -> None:
    """Add rows to the driver source (same schema), as new data arriving would."""
    path = config.root / DRIVER_STATS
    frame = pd.read_parquet(path)
    extra = pd.DataFrame(rows)
    for column in ("event_timestamp", "created"):
        extra[column] = pd.to_datetime(extra[column], utc=True).astype("datetime64[us, UTC]")
    extra = extra.astype({"driver_id": "int64", "conv_rate": "float64", "trips": "int64"})
    pd.concat([frame, extra], ignore_index=True).to_parquet(path, index=False)


def _view_with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(driver_yaml())
    document["features"]["views"][0].update(changes)
    return {"features": document["features"]}


def test_a_first_run_copies_the_window_and_records_it(tmp_path: Path) -> None:
    project = _applied(driver_project(tmp_path))
    [result] = materialize(project, until=_at(6))
    assert (result.view, result.status, result.backend) == ("driver_stats", "done", "sqlite")
    assert result.start_ts is None and result.end_ts == _at(6)
    assert result.rows == 5  # driver 3's only row (10:00) is after the window
    assert result.max_event_ts == _at(2)
    assert _online(project, 1) == (0.99, 99)  # two rows at 02:00: the later created wins
    assert _online(project, 2) == (0.2, 20)
    assert _online(project, 3) is None
    [run] = materializations(project.store, "driver_stats")
    assert run.id == result.id and run.rows == 5 and run.status == "done"
    assert run.version == load_repo(project.config).views["driver_stats"].version
    assert run.started_at == result.started_at and run.started_at <= run.finished_at  # type: ignore[operator]
    [event] = project.store.events(kind="features.materialized")
    assert event.subject == "feature_view:driver_stats"
    assert event.payload["rows"] == 5 and event.payload["status"] == "done"
    assert event.actor == "tester"


def test_the_next_run_copies_only_the_new_window(tmp_path: Path) -> None:
    config = driver_project(tmp_path)
    project = _applied(config)
    materialize(project, until=_at(6))
    [second] = materialize(project, until=_at(12))
    assert second.start_ts == _at(6) and second.end_ts == _at(12)
    assert second.rows == 1 and second.written == 1  # only driver 3's 10:00 row
    assert _online(project, 3) == (0.3, 30)
    [third] = materialize(project, until=_at(12))
    assert third.rows == 0 and third.status == "done" and third.start_ts == _at(12)
    assert [run.rows for run in materializations(project.store, "driver_stats")] == [5, 1, 0]


def test_a_late_row_is_not_copied_until_since_reopens_its_window(tmp_path: Path) -> None:
    config = driver_project(tmp_path)
    project = _applied(config)
    materialize(project, until=_at(12))
    # Arrives after the run, with an event time inside the window that run closed.
    late = {"driver_id": 2, "conv_rate": 0.25, "trips": 25}
    _append(config, [{**late, "event_timestamp": _at(3), "created": _at(11)}])
    [run] = materialize(project, until=_at(13))
    assert run.rows == 0
    assert _online(project, 2) == (0.2, 20)
    [backfill] = materialize(project, since=_at(0), until=_at(13))
    assert backfill.start_ts == _at(0) and backfill.rows == 5  # not 00:00: the bound is open
    assert _online(project, 2) == (0.25, 25)
    assert _online(project, 1) == (0.99, 99)  # re-copying never goes back in time


def test_rows_created_after_the_run_started_are_not_copied(tmp_path: Path) -> None:
    config = driver_project(tmp_path)
    future = datetime.now(UTC) + timedelta(days=1)
    _append(
        config,
        [
            {
                "driver_id": 4,
                "event_timestamp": _at(5),
                "created": future,
                "conv_rate": 1,
                "trips": 1,
            }
        ],
    )
    project = _applied(config)
    [run] = materialize(project, until=_at(6))
    assert run.rows == 5
    assert _online(project, 4) is None


def test_materialising_streams_bounded_batches(tmp_path: Path) -> None:
    config = driver_project(tmp_path, features={"batch_rows": 100})
    source = random_feature_data(seed=7, n_entities=40, n_rows=1050)
    source.to_parquet(config.root / DRIVER_STATS, index=False)
    project = _applied(config)
    seen: list[MaterializeProgress] = []
    [result] = materialize(project, on_progress=seen.append)
    assert result.rows == 1050
    assert max(step.batch_rows for step in seen) <= 100
    assert len(seen) == result.batches >= 11
    assert [step.rows for step in seen] == sorted(step.rows for step in seen)
    assert seen[-1].rows == 1050
    # What the store holds is the newest row per driver by (event, created).
    newest = source.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1)
    view = load_repo(config).views["driver_stats"]
    store = open_online_store(config)
    try:
        rows = store.read(view, [(int(d),) for d in newest["driver_id"]])
    finally:
        store.close()
    expected = list(zip(newest["conv_rate"], newest["trips"], strict=True))
    assert [row.values if row else None for row in rows] == [tuple(e) for e in expected]


def test_a_schema_change_after_apply_names_the_column(tmp_path: Path) -> None:
    config = driver_project(tmp_path)
    project = _applied(config)
    frame = pd.read_parquet(config.root / DRIVER_STATS)
    frame["trips"] = frame["trips"].astype(str)
    frame.to_parquet(config.root / DRIVER_STATS, index=False)
    with pytest.raises(DataError, match="'trips'"):
        materialize(project)
    assert materializations(project.store, "driver_stats", done_only=False) == []


def test_a_view_must_be_applied_first(tmp_path: Path) -> None:
    project = project_of(driver_project(tmp_path))
    with pytest.raises(ConfigError, match="apply"):
        materialize(project)


def test_a_failed_run_is_recorded_and_the_next_one_starts_over(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    config = driver_project(tmp_path, features={"online": {"backend": "redis", "redis_url": dead}})
    project = _applied(config)
    with pytest.raises(FeatureStoreUnavailable, match="refused the connection"):
        materialize(project, until=_at(6))
    [failed] = materializations(project.store, "driver_stats", done_only=False)
    assert failed.status == "failed" and "refused the connection" in failed.error
    [event] = project.store.events(kind="features.materialized")
    assert event.payload["status"] == "failed"
    on_sqlite = project_of(driver_project(tmp_path))  # the same project, back on SQLite
    [run] = materialize(on_sqlite, until=_at(6))
    assert run.start_ts is None  # a failed run does not move the window


def test_redis_backend_materialises_too(tmp_path: Path) -> None:
    import redis

    try:
        redis.Redis(socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 is unreachable: {exc}")
    prefix = f"test-h3-{uuid.uuid4().hex}"
    config = driver_project(
        tmp_path, features={"online": {"backend": "redis", "key_prefix": prefix}}
    )
    project = _applied(config)
    try:
        [run] = materialize(project, until=_at(12))
        assert (run.backend, run.rows, run.written) == ("redis", 6, 3)
        assert _online(project, 1) == (0.99, 99)
        assert _online(project, 3) == (0.3, 30)
    finally:
        store = open_online_store(config)
        store.delete_prefix()  # type: ignore[attr-defined]
        store.close()


def test_a_new_view_version_starts_its_own_windows(tmp_path: Path) -> None:
    config = driver_project(tmp_path)
    project = _applied(config)
    materialize(project, until=_at(6))
    changed = driver_project(tmp_path, **_view_with(ttl="3h"))
    project = _applied(changed)
    assert _online(project, 1) is None  # the new version serves nothing of the old one
    [run] = materialize(project, until=_at(6))
    assert run.start_ts is None and run.rows == 5
    assert _online(project, 1) == (0.99, 99)


def test_views_are_chosen_by_name(tmp_path: Path) -> None:
    project = _applied(driver_project(tmp_path))
    with pytest.raises(ConfigError, match="no feature view 'nope'"):
        materialize(project, ["nope"])
    [run] = materialize(project, ["driver_stats"], until=_at(1))
    assert run.rows == 3


def test_bad_windows_are_refused(tmp_path: Path) -> None:
    project = _applied(driver_project(tmp_path))
    with pytest.raises(ConfigError, match="future"):
        materialize(project, until=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(ConfigError, match="window is empty"):
        materialize(project, since=_at(5), until=_at(5))


def test_materialising_needs_the_train_scope(tmp_path: Path) -> None:
    config = driver_project(tmp_path)
    _applied(config)
    with pytest.raises(Forbidden):
        materialize(project_of(config, "vera", role="viewer"))


def test_freshness_against_the_sla(tmp_path: Path) -> None:
    config = driver_project(tmp_path, **_view_with(freshness_sla="2h"))
    project = _applied(config)
    view = load_repo(config).views["driver_stats"]
    never = freshness(project, view)
    assert never.last_run_at is None and never.breached is True
    materialize(project, until=_at(6))
    fresh = freshness(project, view, now=_at(3))
    assert fresh.max_event_ts == _at(2) and fresh.age_seconds == 3600
    assert fresh.freshness_sla_seconds == 7200 and fresh.breached is False
    assert fresh.end_ts == _at(6) and fresh.last_run_at is not None
    assert freshness(project, view, now=_at(5)).breached is True
    no_sla = load_repo(driver_project(tmp_path / "other")).views["driver_stats"]
    assert freshness(project, no_sla, now=_at(5)).breached is None


def test_a_postgres_project_materialises_a_postgres_table(
    tmp_path: Path, postgres_url: str
) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(postgres_url)
    frame = pd.read_parquet(driver_project(tmp_path / "files").root / DRIVER_STATS)
    frame.to_sql("driver_stats", engine, index=False)
    engine.dispose()
    document = driver_yaml(source={"table": "driver_stats"})
    config = driver_project(tmp_path, database_url=postgres_url, features=document["features"])
    project = _applied(config)
    try:
        [first] = materialize(project, until=_at(6))
        [second] = materialize(project, until=_at(12))
        assert (first.rows, second.rows, second.start_ts) == (5, 1, _at(6))
        assert _online(project, 1) == (0.99, 99) and _online(project, 3) == (0.3, 30)
        runs = materializations(project.store, "driver_stats")
        assert [run.end_ts for run in runs] == [_at(6), _at(12)]
    finally:
        project.close()
