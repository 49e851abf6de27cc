"""``shipyard prompts register|label|list|show|history|rollback`` on a real project.

Real SQLite database, MLflow prompt registry and tokens; no LLM provider is called, so
the provider stand-in is not needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.llm.prompts import register_prompt
from shipyard.store import EventKind
from tests.support import copy_workspace, load, project_of, token_for

YAML = """\
project: prompts-cli-test
model:
  name: assistant
  task: llm
llm:
  prompt: support
  providers:
    - name: primary
      base_url: http://127.0.0.1:9/v1
"""


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty LLM project whose database MLflow has set up, copied by each test."""
    root = tmp_path_factory.mktemp("prompts-cli")
    (root / "shipyard.yaml").write_text(YAML)
    project_of(load(root)).tracking.experiment_id()
    return root


@pytest.fixture
def project_dir(_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_workspace(_template, tmp_path / "p")
    monkeypatch.chdir(root)
    return root


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_register_label_show_history_rollback(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "v1.txt").write_text("You help with {{product}}.\n")
    chat = [{"role": "system", "content": "Be brief about {{product}} for {{customer}}."}]
    (project_dir / "v2.json").write_text(json.dumps({"messages": chat}))

    assert run(["prompts", "register", "support", "--file", "v1.txt", "-m", "first"]) == 0
    assert "registered support/1 (product" in capsys.readouterr().out
    assert run(["prompts", "register", "support", "-f", "v2.json", "--json"]) == 0
    second = _json(capsys)
    assert isinstance(second, dict)
    assert second["version"] == "2" and second["template"] == chat
    assert run(["prompts", "register", "support", "--template", "Hi {{name}}"]) == 0
    capsys.readouterr()

    assert run(["prompts", "label", "support", "production", "--version", "1"]) == 0
    assert "support@production → 1" in capsys.readouterr().out
    assert run(["prompts", "label", "support", "production", "-v", "2", "--reason", "r"]) == 0
    assert "(was 1)" in capsys.readouterr().out
    assert run(["prompts", "label", "support", "staging", "-v", "3"]) == 0
    capsys.readouterr()

    assert run(["prompts", "list"]) == 0
    assert "[production=2, staging=3]" in capsys.readouterr().out
    assert run(["prompts", "list", "support"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == ["support/1", "support/2", "support/3"]
    assert "[production]" in listed[1] and "[staging]" in listed[2] and "first" in listed[0]
    assert run(["prompts", "show", "support@production"]) == 0
    shown = capsys.readouterr().out
    assert "support/2" in shown and "[system] Be brief about {{product}}" in shown
    assert run(["prompts", "show", "support/1", "--json"]) == 0
    first = _json(capsys)
    assert isinstance(first, dict)
    assert (first["version"], first["message"], first["labels"]) == ("1", "first", [])
    assert first["template"] == "You help with {{product}}.\n"
    assert first["variables"] == ["product"] and len(first["digest"]) == 16

    assert run(["prompts", "rollback", "support", "--reason", "judge fell"]) == 0
    assert "rolled back 2 → 1" in capsys.readouterr().out
    assert run(["prompts", "history", "support", "--label", "production", "--json"]) == 0
    history = _json(capsys)
    assert isinstance(history, list)
    assert [(m["to_version"], m["action"]) for m in history] == [
        ("1", "label"),
        ("2", "label"),
        ("1", "rollback"),
    ]
    assert run(["prompts", "history", "support", "--at", history[1]["at"], "--json"]) == 0
    held = _json(capsys)
    assert isinstance(held, dict) and held["version"] == "2"
    assert run(["prompts", "history", "support"]) == 0
    assert "rollback by tester  judge fell" in capsys.readouterr().out

    events = project_of(load(project_dir)).store.events(kind=EventKind.PROMPT_LABELLED)
    assert len(events) == 4 and events[0].payload["reason"] == "judge fell"


def test_mistakes_are_refused_with_a_hint(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["prompts", "register", "support", "--template", "Hi {{ name }"]) == 2
    assert "unbalanced braces" in capsys.readouterr().err
    assert run(["prompts", "register", "support"]) == 2
    assert "--file PATH or --template TEXT" in capsys.readouterr().err
    assert run(["prompts", "register", "support", "--file", "missing.txt"]) == 2
    capsys.readouterr()
    assert run(["prompts", "show", "support"]) == 3
    assert "shipyard prompts register" in capsys.readouterr().err

    assert run(["prompts", "register", "support", "--template", "Hi {{name}}"]) == 0
    assert run(["prompts", "show", "support@canary"]) == 3
    assert "no label 'canary'" in capsys.readouterr().err
    assert run(["prompts", "label", "support", "production", "--version", "5"]) == 3
    assert "no version '5'" in capsys.readouterr().err
    assert run(["prompts", "rollback", "support"]) != 0
    assert "no earlier version" in capsys.readouterr().err
    assert run(["prompts", "list", "--json"]) == 0
    assert _json(capsys) == [
        {"name": "support", "latest_version": "1", "versions": 1, "labels": {}}
    ]


def test_production_needs_a_deployer(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_of(load(project_dir))
    assert run(["prompts", "register", "support", "--template", "Hi {{name}}"]) == 0
    monkeypatch.setenv("SHIPYARD_TOKEN", token_for(project, "trainer", name="tina"))
    assert run(["prompts", "label", "support", "staging", "--version", "1"]) == 0
    capsys.readouterr()
    assert run(["prompts", "label", "support", "production", "--version", "1"]) == 6
    assert "models:deploy" in capsys.readouterr().err
    monkeypatch.setenv("SHIPYARD_TOKEN", token_for(project, "deployer", name="dora"))
    assert run(["prompts", "label", "support", "production", "--version", "1"]) == 0
    actors = [e.actor for e in project.store.events(kind=EventKind.PROMPT_LABELLED)]
    assert actors == ["dora", "tina"]


def test_label_moves_and_reads_never_import_mlflow(project_dir: Path) -> None:
    """An operator's prompt rollback is fast: no `import mlflow` (a second or more)."""
    import subprocess
    import sys

    project = project_of(load(project_dir))
    register_prompt(project, "support", "Hi {{name}}")
    register_prompt(project, "support", "Hello {{name}}")
    script = (
        "import sys\nfrom shipyard.cli import run\n"
        "codes = [run(a.split()) for a in ('prompts label support production -v 1', "
        "'prompts label support production -v 2', 'prompts rollback support', "
        "'prompts history support', 'prompts show support@production', 'prompts list')]\n"
        "print(codes, 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project_dir, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[0, 0, 0, 0, 0, 0] False"
