from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from shipyard.errors import DatabaseError
from shipyard.store import HEAD_REVISION, DatasetRow, Store, current_revision


def check_store(url: str) -> None:
    store = Store(url, actor="alice")
    try:
        assert current_revision(store.engine) == HEAD_REVISION
        first = store.record("dataset.snapshotted", "dataset:abc", {"rows": 3})
        second = store.record("run.finished", "run:r1", {"metrics": {"auc": 0.9}})
        assert second.id > first.id
        assert first.actor == "alice"
        assert first.at.tzinfo is not None
        newest = store.events()
        assert [e.kind for e in newest[:2]] == ["run.finished", "dataset.snapshotted"]
        assert store.events(kind="run.finished")[0].payload == {"metrics": {"auc": 0.9}}
        assert [e.subject for e in store.events(subject="dataset:")] == ["dataset:abc"]
        # subject filter is a literal prefix, not a LIKE pattern
        assert store.events(subject="dataset%") == []
        row = DatasetRow(
            digest="d" * 64,
            source="/x.csv",
            format="csv",
            rows=3,
            columns=2,
            stored_uri="file:///x",
        )
        assert store.save_dataset(row) is True
        assert (
            store.save_dataset(
                DatasetRow(
                    digest="d" * 64,
                    source="/y.csv",
                    format="csv",
                    rows=3,
                    columns=2,
                    stored_uri="file:///y",
                )
            )
            is False
        )
        saved = store.dataset("d" * 64)
        assert saved is not None and saved.source == "/x.csv"
        assert store.generation("churn") == 0
        assert [store.bump_generation("churn") for _ in range(3)] == [1, 2, 3]
        assert store.generation("churn") == 3 and store.generation("other") == 0
        # migrating again is a no-op; our version table never touches MLflow's
        Store(url, actor="tester").close()
        tables = set(inspect(store.engine).get_table_names())
        assert {
            "shipyard_events",
            "shipyard_datasets",
            "shipyard_alembic_version",
            "shipyard_deployments",
        } <= tables
        assert "alembic_version" not in tables
    finally:
        store.close()


def test_store_on_sqlite(tmp_path: Path) -> None:
    check_store(f"sqlite:///{tmp_path / 'cp.db'}")


@pytest.mark.postgres
def test_store_on_postgres(postgres_url: str) -> None:
    check_store(postgres_url)


def test_sqlite_uses_wal_for_many_processes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cp.db'}", actor="tester")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_actor_defaults_to_shipyard_user(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cp.db'}", actor="tester")
    assert store.record("keys.created", "s").actor == "tester"


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DatabaseError) as info:
        Store("postgresql+psycopg://postgres@127.0.0.1:1/none", actor="tester")
    assert "127.0.0.1:1" in info.value.message
    assert "database_url" in (info.value.hint or "")


def test_malformed_url_is_a_clear_error() -> None:
    with pytest.raises(DatabaseError, match="not usable"):
        Store("nosuchdialect://x", actor="tester")
