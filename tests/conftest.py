"""Shared fixtures: a PostgreSQL database per test run, and one trained example project."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Config, load_config
from tests.support import project_of

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "churn"
POSTGRES_ADMIN_URL = os.environ.get(
    "SHIPYARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SHIPYARD_* setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SHIPYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SHIPYARD_USER", "tester")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def _postgres_admin() -> Iterator[object]:
    """An AUTOCOMMIT engine on the server, or a skip saying why there is none."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc.orig}")
    yield admin
    admin.dispose()


@pytest.fixture
def postgres_url(_postgres_admin: Any) -> Iterator[str]:
    """A fresh database on the real PostgreSQL server for one test, dropped after it."""
    from sqlalchemy import text

    name = f"shipyard_test_{uuid.uuid4().hex[:10]}"
    with _postgres_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with _postgres_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def copy_example(destination: Path) -> Path:
    """A fresh copy of the churn example project (without any workspace)."""
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns(".shipyard"))
    return destination


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A private copy of the churn example, for tests that change it."""
    return copy_example(tmp_path / "churn")


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The churn example trained once on SQLite (churn/1), shared by read-only tests."""
    from shipyard.training import train

    project = copy_example(tmp_path_factory.mktemp("trained") / "churn")
    config = load_config(project / "shipyard.yaml", environ={})
    os.environ.setdefault("SHIPYARD_USER", "tester")
    train(project_of(config))
    return config
