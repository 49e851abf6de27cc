"""Shared fixtures: a PostgreSQL database per test, the churn example fresh or trained
(once per session, copied per test), and alert receivers. Helpers live in tests.support."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from shipyard.config import Config
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.store import Store
from tests.support import AlertReceiver, TrainedExamples, copy_example, project_of

# Property tests judge what is generated, not how fast: no per-example deadline and no
# "too slow" health check, which a busy machine would trip.
settings.register_profile("shipyard", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shipyard")

POSTGRES_ADMIN_URL = os.environ.get(
    "SHIPYARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# Tokens that `shipyard init`, `login` and a project's first command save go to a file of
# the test session's own, never to the developer's ~/.config/shipyard (session fixtures
# run before the per-test one below, so this is set for them too).
CREDENTIALS_VARIABLE = "SHIPYARD_SECURITY__CREDENTIALS"
_SESSION_CREDENTIALS = Path(tempfile.mkdtemp(prefix="shipyard-credentials-")) / "credentials.json"
os.environ[CREDENTIALS_VARIABLE] = str(_SESSION_CREDENTIALS)
atexit.register(shutil.rmtree, _SESSION_CREDENTIALS.parent, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SHIPYARD_* setting of the developer's shell leaks into a test; the OS user the
    CLI sees is "tester", and each test has a credentials file of its own."""
    for name in list(os.environ):
        if name.startswith("SHIPYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOGNAME", "tester")
    own = _SESSION_CREDENTIALS.parent / uuid.uuid4().hex / "credentials.json"
    monkeypatch.setenv(CREDENTIALS_VARIABLE, str(own))
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


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A private copy of the churn example, for tests that change it."""
    return copy_example(tmp_path / "churn")


@pytest.fixture
def initialised_example(trained_examples: TrainedExamples, tmp_path: Path) -> Path:
    """A private copy of the churn example with its workspace and database created.

    Nothing is trained: for tests that register their own models or train in ways of
    their own, without each paying for creating MLflow's tables.
    """
    return trained_examples.copy(tmp_path / "churn").root


@pytest.fixture(scope="session")
def trained_examples(tmp_path_factory: pytest.TempPathFactory) -> TrainedExamples:
    """The churn example trained once per recipe per session; ``copy`` it per test."""
    return TrainedExamples(tmp_path_factory.mktemp("trained-examples"))


@pytest.fixture(scope="session")
def trained_project(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Config:
    """The churn example trained once (churn/1), shared by the tests that only read it."""
    return trained_examples.copy(tmp_path_factory.mktemp("trained") / "churn", {})


@pytest.fixture
def trained_copy(trained_examples: TrainedExamples, tmp_path: Path) -> Config:
    """A private copy of the trained churn example (churn/1), for a test that changes it."""
    return trained_examples.copy(tmp_path / "churn", {})


@pytest.fixture
def two_versions(
    trained_examples: TrainedExamples, tmp_path: Path
) -> Iterator[tuple[Config, Store, Tracking]]:
    """A private copy trained twice: churn/1 the champion, churn/2 the candidate."""
    config = trained_examples.copy(tmp_path / "churn", {}, {})
    project = project_of(config)
    move_alias(project.store, project.client, "churn", "champion", "1", action="promote")
    yield config, project.store, project.tracking
    project.close()


@pytest.fixture
def alert_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AlertReceiver]]:
    """Start local alert stand-ins (``alert_receiver("slack")``); all stop after the test."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # posts to 127.0.0.1 go straight there
    started: list[AlertReceiver] = []

    def start(kind: str = "webhook", failures: tuple[int, ...] = ()) -> AlertReceiver:
        receiver = AlertReceiver(kind, failures=failures)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()
