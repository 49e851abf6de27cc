"""Fast, honest commands: what the quick commands import, MLflow's alias moved without MLflow,
an unreachable or missing database said plainly. Timings live in benchmarks/cli.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

from shipyard.config import Config
from shipyard.errors import NotFoundError
from shipyard.registry import list_models, mlflow_tables
from shipyard.registry.aliases import alias_moves, move_alias, rollback
from shipyard.store import Store
from tests.support import project_of
from tests.support.servers import free_port

# What the quick commands must not pay for: MLflow above all, and the numeric stack.
HEAVY = ("alembic", "mlflow", "numpy", "pandas", "pyarrow", "scipy", "sklearn")
# Runs the CLI in a fresh interpreter and reports which heavy libraries it imported.
_WRAPPER = (
    "import json, sys\n"
    f"HEAVY = {HEAVY!r}\n"
    "from shipyard.cli import run\n"
    "code = run(sys.argv[1:])\n"
    "heavy = sorted(m for m in HEAVY if m in sys.modules)\n"
    "sys.stderr.write('\\nIMPORTED ' + json.dumps(heavy) + '\\n')\n"
    "sys.exit(code)\n"
)


def _shipyard(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def _imported(stderr: str) -> list[str]:
    line = [text for text in stderr.splitlines() if text.startswith("IMPORTED ")][-1]
    return list(json.loads(line.removeprefix("IMPORTED ")))


@pytest.fixture
def promoted_twice(two_versions: tuple[Config, Store, object]) -> Config:
    """churn/1 then churn/2 champion: a rollback goes back to churn/1."""
    config, store, tracking = two_versions
    move_alias(store, tracking.client, "churn", "champion", "2", action="promote")  # type: ignore[attr-defined]
    return config


def test_read_commands_and_rollback_never_import_mlflow(promoted_twice: Config) -> None:
    root = promoted_twice.root
    for args in (
        ["--help"],
        ["models", "list"],
        ["events", "--limit", "5"],
        ["traffic", "show", "churn"],
        ["rollout", "status", "churn"],
        ["rollback", "churn", "--reason", "fast path"],
    ):
        code, out, err = _shipyard(root, *args)
        assert code == 0, (args, out, err)
        assert _imported(err) == [], f"shipyard {' '.join(args)} imported {_imported(err)}"
    # The rollback really moved MLflow's alias, as MLflow's own client reads it.
    client = MlflowClient(promoted_twice.db_url, promoted_twice.db_url)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    aliases = client.get_registered_model("churn").aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {"champion": "1"}


def test_rollback_without_mlflow_records_the_move_like_the_client_path(
    promoted_twice: Config,
) -> None:
    project = project_of(promoted_twice)
    try:
        move = rollback(project.store, None, "churn", reason="sql path")
        assert (move.from_version, move.to_version, move.action) == ("2", "1", "rollback")
        last = alias_moves(project.store, "churn", "champion")[-1]
        assert (last.from_version, last.to_version, last.reason) == ("2", "1", "sql path")
        assert project.store.events(kind="alias.rollback", limit=1)[0].payload["to_version"] == "1"
        assert str(project.client.get_model_version_by_alias("churn", "champion").version) == "1"
        # Removing the alias in SQL is what MLflow's delete does.
        move_alias(project.store, None, "churn", "challenger", "2", action="promote")
        assert str(project.client.get_model_version_by_alias("churn", "challenger").version) == "2"
        move_alias(project.store, None, "churn", "challenger", None, action="promote")
        assert "challenger" not in project.client.get_registered_model("churn").aliases
    finally:
        project.close()


def test_sql_alias_refuses_what_mlflow_refuses(promoted_twice: Config) -> None:
    project = project_of(promoted_twice)
    try:
        for version in ("9", "0", "x"):
            with pytest.raises(NotFoundError):
                move_alias(project.store, None, "churn", "champion", version, action="promote")
        with pytest.raises(NotFoundError):
            move_alias(project.store, None, "nope", "champion", None, action="promote")
        # Nothing moved and nothing was recorded by the refused moves.
        assert str(project.client.get_model_version_by_alias("churn", "champion").version) == "2"
        assert [m.to_version for m in alias_moves(project.store, "churn")] == ["1", "2"]
    finally:
        project.close()


def test_models_list_in_sql_matches_mlflows_client(promoted_twice: Config) -> None:
    project = project_of(promoted_twice)
    try:
        project.client.create_registered_model("a-plain-one", description="no versions")
        with project.store.session() as session:
            fast = mlflow_tables.list_models(session)
        assert [m.to_dict() for m in fast] == [m.to_dict() for m in list_models(project.client)]
        assert {m.name: m.aliases for m in fast} == {"a-plain-one": {}, "churn": {"champion": "2"}}
    finally:
        project.close()


def test_missing_sqlite_file_on_a_read_command_is_an_error(
    initialised_example: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "typo" / "shipyard.db"
    for args in (["models", "list"], ["events"], ["rollback", "churn"]):
        code, _, err = _shipyard(
            initialised_example, "--database-url", f"sqlite:///{missing}", *args
        )
        assert code == 5, (args, err)
        assert f"No Shipyard database at {missing}" in err
        assert "shipyard init" in err
        assert not missing.exists() and not missing.parent.exists()


def test_unreachable_database_fails_at_once_with_the_masked_url(initialised_example: Path) -> None:
    url = f"postgresql+psycopg://alice:s3cret@127.0.0.1:{free_port()}/shipyard"
    # A token to check: the command must reach the database to authenticate it.
    token = {"SHIPYARD_TOKEN": "shp_0123456789ab_not-a-real-secret"}
    code, out, err = _shipyard(
        initialised_example, "--database-url", url, "models", "list", env=token
    )
    assert code == 5, err
    assert "127.0.0.1" in err and "alice" in err and "s3cret" not in err + out
    assert "***" in err
    assert "Check that the server is running" in err
    assert "retried" not in err  # MLflow's engine retry loop never ran
    assert _imported(err) == []


def test_the_sql_alias_path_on_postgresql(postgres_url: str) -> None:
    """The same statements on PostgreSQL, checked by MLflow's client on that database."""
    store = Store(postgres_url, actor="tester")
    client = MlflowClient(postgres_url, postgres_url)
    try:
        client.create_registered_model("pg-model")
        for _ in range(2):
            client.create_model_version("pg-model", source="/tmp/no-artifacts", run_id=None)
        move_alias(store, None, "pg-model", "champion", "1", action="promote")
        move_alias(store, None, "pg-model", "champion", "2", action="promote")
        assert str(client.get_model_version_by_alias("pg-model", "champion").version) == "2"
        move = rollback(store, None, "pg-model", reason="on postgres")
        assert (move.from_version, move.to_version) == ("2", "1")
        assert str(client.get_model_version_by_alias("pg-model", "champion").version) == "1"
        with store.session() as session:
            fast = mlflow_tables.list_models(session)
        assert [m.to_dict() for m in fast] == [m.to_dict() for m in list_models(client)]
    finally:
        store.close()


def test_a_database_server_that_never_answers_times_out(initialised_example: Path) -> None:
    """A port that accepts connections and then says nothing (a hung server, a dropped
    route): the connect timeout ends the wait, instead of the OS's two minutes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    url = f"postgresql+psycopg://alice:s3cret@127.0.0.1:{listener.getsockname()[1]}/shipyard"
    token = {"SHIPYARD_TOKEN": "shp_0123456789ab_not-a-real-secret"}
    try:
        code, out, err = _shipyard(initialised_example, "--database-url", url, "events", env=token)
    finally:
        listener.close()
        for connection in held:
            connection.close()
    assert code == 5, err
    assert "timeout expired" in err and "s3cret" not in err + out
