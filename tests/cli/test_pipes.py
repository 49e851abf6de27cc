"""The CLI in pipes and scripts: no hard wrapping, brackets shown as written, NO_COLOR,
help that keeps its [setting] references. Each command runs in a subprocess whose stdout
is a pipe, as in ``shipyard events | grep``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shipyard.cli import COMMANDS, app
from shipyard.config import Config
from shipyard.store import EventKind
from tests.support import project_of


def _shipyard(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def test_config_show_into_a_file_is_the_config_as_yaml(initialised_example: Path) -> None:
    config_file = initialised_example / "shipyard.yaml"
    purpose = "Rank customers [by risk] for the retention team; " * 6  # far past 80 columns
    text = config_file.read_text().replace(
        "  purpose: Predict which customers", f"  purpose: '{purpose}' # Predict which customers"
    )
    config_file.write_text(text)
    code, out, err = _shipyard(initialised_example, "config", "show")
    assert code == 0, err
    shown = yaml.safe_load(out)
    code, as_json, err = _shipyard(initialised_example, "config", "show", "--json")
    assert code == 0, err
    assert shown == json.loads(as_json)
    assert shown["model"]["purpose"] == purpose


def test_events_are_one_line_each_in_a_pipe(trained_copy: Config) -> None:
    project = project_of(trained_copy)
    long_subject = "project:" + "a-rather-long-subject-name-" * 8
    try:
        project.store.record(EventKind.KEYS_CREATED, long_subject, {"fingerprint": "x"})
        code, out, err = _shipyard(trained_copy.root, "events", "--limit", "1000")
        total = len(project.store.events(limit=1000))  # the command may have added one
    finally:
        project.close()
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == total
    assert sum(long_subject in row for row in rows) == 1
    (row,) = (row for row in rows if long_subject in row)
    assert row.split("│")[3].strip() == "keys.created"


def test_a_check_with_brackets_prints_as_written(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(
        "schema_type: dataframe\napi: pandas\ncolumns:\n  code:\n    dtype: str\n"
        "    checks:\n      str_matches:\n        pattern: ^[a-z]+$\n"
    )
    (tmp_path / "codes.csv").write_text("code\nabc\nAB1\n")
    code, out, err = _shipyard(tmp_path, "data", "validate", "codes.csv", "--schema", "schema.yaml")
    assert code == 1, err
    assert "str_matches(pattern=^[a-z]+$)" in out


def test_help_keeps_setting_references_in_brackets(tmp_path: Path) -> None:
    code, out, err = _shipyard(tmp_path, "serve", "--help")
    assert code == 0, err
    assert "[serving.host]" in out and "[serving.port]" in out
    code, out, err = _shipyard(tmp_path, "rollout", "start", "--help")
    assert code == 0, err
    assert "[delivery.step_seconds]" in out


@pytest.mark.parametrize("no_color", [False, True])
def test_no_color_is_honoured(trained_project: Config, no_color: bool) -> None:
    env = {"FORCE_COLOR": "1"} | ({"NO_COLOR": "1"} if no_color else {})
    code, out, err = _shipyard(trained_project.root, "models", "list", env=env)
    assert code == 0, err
    assert "churn" in out
    assert ("\x1b[" in out) is not no_color


def test_the_command_list_matches_each_commands_own_help() -> None:
    """``--help`` lists commands from summaries without importing them: each summary must
    be what the command says of itself."""
    import typer
    import typer.main

    root = typer.main.get_command(app)
    context = typer.Context(root)
    assert root.list_commands(context) == list(COMMANDS)  # type: ignore[attr-defined]
    for name, entry in COMMANDS.items():
        command = root.get_command(context, name)  # type: ignore[attr-defined]
        assert command is not None, name
        assert command.get_short_help_str(limit=1000) == entry.summary, name


# Commands that run until stopped or write a document: the README says so.
WITHOUT_JSON = {"serve", "agent", "monitor watch", "config docs"}


def test_every_command_that_prints_a_result_takes_json() -> None:
    import typer
    import typer.main

    root = typer.main.get_command(app)
    context = typer.Context(root)
    without = set()

    def walk(command: object, path: list[str]) -> None:
        if hasattr(command, "list_commands"):
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*path, name])  # type: ignore[attr-defined]
        elif not any("--json" in param.opts for param in command.params):  # type: ignore[attr-defined]
            without.add(" ".join(path))

    walk(root, [])
    assert without == WITHOUT_JSON
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert all(f"`shipyard {name}`" in readme for name in WITHOUT_JSON)


def test_init_and_traffic_answer_in_json(tmp_path: Path, trained_copy: Config) -> None:
    code, out, err = _shipyard(tmp_path, "init", "fresh", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["config"] == str(tmp_path / "fresh" / "shipyard.yaml")
    assert answer["token"] == "issued" and not answer["config_kept"]
    code, out, err = _shipyard(
        trained_copy.root, "traffic", "set", "churn", "--challenger", "1=10%", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["challengers"] == {"1": 0.1}
    code, out, err = _shipyard(trained_copy.root, "traffic", "clear", "churn", "--json")
    assert code == 0, err
    cleared = json.loads(out)
    assert cleared["challengers"] == {} and cleared["generation"] > 1
