"""``shipyard llm register|show``, then the classical commands (promote, traffic, rollout, rollback)
on LLM versions, unchanged.

Real SQLite database and MLflow registry; no LLM provider is called, so the provider
stand-in is not needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.llm.prompts import label_prompt, register_prompt
from shipyard.store import EventKind
from shipyard.store.traffic import read_traffic
from tests.support import copy_workspace, load, project_of

YAML = """\
project: llm-cli-test
model:
  name: assistant
  task: llm
llm:
  prompt: support
  providers:
    - name: primary
      base_url: http://127.0.0.1:9/v1
    - name: backup
      base_url: http://127.0.0.1:8/v1
"""


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with prompt support v1 (production) and v2, copied by each test."""
    root = tmp_path_factory.mktemp("llm-cli")
    (root / "shipyard.yaml").write_text(YAML)
    project = project_of(load(root))
    register_prompt(project, "support", "You help with {{product}}.")
    register_prompt(project, "support", "Be brief about {{product}}.")
    label_prompt(project, "support", "production", "1")
    return root


@pytest.fixture
def project_dir(_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_workspace(_template, tmp_path / "p")
    monkeypatch.chdir(root)
    return root


def test_register_show_then_promote_traffic_rollout_and_roll_back(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = "--prompt support@production --param temperature=0 -p max_tokens=64"
    argv = ["llm", "register", "--provider", "primary", "--model", "gpt-a", *first.split()]
    assert run([*argv, "--description", "first"]) == 0
    out = capsys.readouterr().out
    assert "registered assistant/1: primary/gpt-a with prompt support/1" in out
    assert run(["llm", "register", "--provider", "backup", "--model", "gpt-b", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["version"], second["prompt_version"]) == ("2", "1")  # llm.prompt@production
    assert run(["llm", "register", "--provider", "primary", "--model", "gpt-c",
                "--prompt", "support/2"]) == 0  # fmt: skip
    capsys.readouterr()

    assert run(["llm", "show", "assistant/1"]) == 0
    shown = capsys.readouterr().out
    assert "prompt: support/1" in shown and "params: max_tokens=64, temperature=0" in shown
    assert "You help with {{product}}." in shown
    assert run(["llm", "show", "assistant/3", "--json"]) == 0
    third = json.loads(capsys.readouterr().out)
    assert third["template"] == "Be brief about {{product}}." and third["model"] == "gpt-c"

    # The classical commands, unchanged.
    for version in ("1", "3"):
        argv = ["promote", f"assistant/{version}", "--to", "champion", "--force", "--reason", "x"]
        assert run(argv) == 0
    assert run(["traffic", "set", "assistant", "--challenger", "2=10%"]) == 0
    assert read_traffic(project_of(load(project_dir)).store, "assistant")[1].challengers == {
        "2": 0.1
    }
    capsys.readouterr()
    assert run(["rollback", "assistant", "--reason", "judge fell"]) == 0
    capsys.readouterr()
    assert run(["llm", "show", "assistant@champion", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1"
    project = project_of(load(project_dir))
    assert run(["rollout", "start", "assistant/3", "--steps", "10,50,100"]) == 0
    assert read_traffic(project.store, "assistant")[1].challengers == {"3": 0.1}
    assert run(["rollout", "abort", "assistant", "--reason", "judge fell"]) == 0
    assert read_traffic(project.store, "assistant")[1].challengers == {}
    registered = project.store.events(kind=EventKind.MODEL_VERSION_REGISTERED)
    assert [e.subject for e in registered] == [f"model:assistant/{n}" for n in ("3", "2", "1")]


def test_mistakes_are_refused_with_a_hint(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["llm", "register", "--model", "gpt-a"]
    assert run([*base, "--provider", "openai"]) == 2
    assert "not one of llm.providers (primary, backup)" in capsys.readouterr().err
    assert run([*base, "--provider", "primary", "--param", "temperature"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert run([*base, "--provider", "primary", "--param", "temp=0"]) == 2
    assert "params.temp" in capsys.readouterr().err
    assert run([*base, "--provider", "primary", "--prompt", "support@canary"]) == 3
    err = capsys.readouterr().err
    assert "no label 'canary'" in err and "shipyard prompts label support canary" in err
    assert run([*base, "--provider", "primary", "--prompt", "other/1"]) == 3
    assert "no prompt 'other'" in capsys.readouterr().err
    assert project_of(load(project_dir)).store.events(kind=EventKind.MODEL_VERSION_REGISTERED) == []
    assert run(["llm", "show", "assistant/1"]) == 3
