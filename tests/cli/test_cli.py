"""The command line, run in-process through ``shipyard.cli.run`` (exit codes and output)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.config import Config
from shipyard.store import HEAD_REVISION


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_does_not_import_mlflow_or_pandas() -> None:
    code = (
        "import sys\n"
        "from shipyard.cli import run\n"
        "assert run(['--help']) == 0\n"
        "heavy = [m for m in ('mlflow', 'pandas', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout
    assert "train" in done.stdout and "models" in done.stdout


def test_init_writes_commented_config_and_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "init", str(tmp_path / "proj"), "--model", "churn")
    assert code == 0
    text = (tmp_path / "proj" / "shipyard.yaml").read_text()
    assert "# Registered model name in the registry." in text
    assert "name: churn" in text
    assert (tmp_path / "proj" / ".shipyard" / "shipyard.db").exists()
    (tmp_path / "proj" / "shipyard.yaml").write_text("project: mine\n")
    code, out, _ = cli(capsys, "init", str(tmp_path / "proj"))
    assert code == 0 and "Kept existing" in out
    assert (tmp_path / "proj" / "shipyard.yaml").read_text() == "project: mine\n"


def test_db_upgrade_and_current(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example_project)
    assert cli(capsys, "db", "upgrade")[0] == 0
    code, out, _ = cli(capsys, "db", "current", "--json")
    assert code == 0 and json.loads(out) == {"revision": HEAD_REVISION, "head": HEAD_REVISION}


def test_data_commands(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example_project)
    code, out, _ = cli(capsys, "data", "snapshot", "data/train.csv", "--json")
    assert code == 0
    snap = json.loads(out)
    assert snap["rows"] == 3000 and snap["new"] is True
    code, out, _ = cli(capsys, "data", "snapshot", "data/train.csv", "--json")
    assert json.loads(out)["new"] is False and json.loads(out)["digest"] == snap["digest"]

    code, out, _ = cli(capsys, "data", "schema", "infer", "data/train.csv", "-o", "inferred.yaml")
    assert code == 0 and (example_project / "inferred.yaml").exists()
    code, out, _ = cli(capsys, "data", "schema", "infer", "data/train.csv", "-o", "inferred.yaml")
    assert code == 2  # refuses to overwrite without --force

    code, out, _ = cli(capsys, "data", "validate", "data/valid.csv", "--schema", "inferred.yaml")
    assert code == 0, out
    code, out, _ = cli(capsys, "data", "validate", "data/bad_batch.csv")  # train.schema
    assert code == 1
    assert "contract" in out and "weekly" in out and "coupon_code" in out
    code, out, _ = cli(capsys, "data", "validate", "data/bad_batch.csv", "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and len(report["failures"]) >= 4


def test_train_and_registry_views_end_to_end(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example_project)
    code, out, err = cli(capsys, "train", "-p", "n_estimators=20", "--seed", "3", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["name"] == "churn" and result["version"] == "1"

    code, out, _ = cli(capsys, "models", "list", "--json")
    assert [m["name"] for m in json.loads(out)] == ["churn"]
    code, out, _ = cli(capsys, "models", "show", "churn/1", "--json")
    shown = json.loads(out)
    assert shown["params"]["n_estimators"] == "20" and shown["params"]["seed"] == "3"
    code, out, _ = cli(capsys, "models", "lineage", "churn/1", "--json")
    assert json.loads(out)["dataset"]["digest"] == result["data_digest"]
    code, out, _ = cli(capsys, "models", "lineage", "churn/1")
    assert code == 0 and "dataset" in out and "trigger" in out

    code, out, _ = cli(capsys, "reproduce", "churn/1", "--json")
    assert code == 0 and json.loads(out)["reproduced"] is True
    code, out, _ = cli(capsys, "reproduce", "churn/1")
    assert code == 0 and "Reproduced" in out

    code, out, _ = cli(capsys, "events", "--json", "--kind", "model_version.registered")
    assert json.loads(out)[0]["subject"] == "model:churn/1"
    assert json.loads(out)[0]["actor"] == "tester"


def test_human_output_of_views(
    trained_project: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(trained_project.root)
    code, out, _ = cli(capsys, "models", "list")
    assert code == 0 and "churn" in out
    code, out, _ = cli(capsys, "models", "show", "churn/1")
    assert code == 0 and "roc_auc" in out and "registered by shipyard" in out


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["models", "show", "nosuch/1"], 3, "not found"),
        (["train", "-p", "novalue"], 2, "not key=value"),
        (["data", "snapshot", "missing.csv"], 4, "missing.csv"),
        (
            # `db current` needs no token; a shared database's other commands need one first
            ["--database-url", "postgresql+psycopg://postgres@127.0.0.1:1/x", "db", "current"],
            5,
            "127.0.0.1:1",
        ),
    ],
)
def test_errors_are_messages_with_exit_codes(
    initialised_example: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    exit_code: int,
    message: str,
) -> None:
    monkeypatch.chdir(initialised_example)
    code, _, err = cli(capsys, *args)
    assert code == exit_code, err
    assert message in err
    assert "Traceback" not in err
    assert "→" in err  # every error says what to do next


def test_missing_config_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "train")
    assert code == 2 and "shipyard init" in err


def test_invalid_config_names_key_and_line_without_traceback(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (example_project / "shipyard.yaml").write_text("project: x\ntrain:\n  seed: many\n")
    monkeypatch.chdir(example_project)
    code, _, err = cli(capsys, "train")
    assert code == 2
    assert "train.seed" in err and "line 3" in err and "Traceback" not in err


def test_demo_replaces_only_an_earlier_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: mine\n")
    code, _, err = cli(capsys, "demo", "--folder", str(tmp_path))
    assert code == 2 and "holds no earlier demo" in err
    assert (tmp_path / "shipyard.yaml").read_text() == "project: mine\n"

    from shipyard.demo.workspace import create_workspace

    earlier = create_workspace(tmp_path / "loans", rows=10, golden_rows=1)
    code, _, err = cli(capsys, "demo", "--folder", str(earlier.root), "--no-fresh")
    assert code == 2 and "--fresh" in err and earlier.config_file.exists()


def test_entry_point_script_renders_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "models", "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "No shipyard.yaml found" in done.stderr
    assert "Traceback" not in done.stderr
