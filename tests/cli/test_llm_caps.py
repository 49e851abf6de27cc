"""``shipyard llm caps set|list|remove`` and ``shipyard tokens create --tenant``, run
through the real CLI on a real SQLite project (no provider is involved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.store import EventKind, Store

Capture = pytest.CaptureFixture[str]

CONFIG = """\
project: caps
model:
  name: assistant
  task: llm
llm:
  caps:
    policies:
      - {quota: 100, window_seconds: 60}
"""


def cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> Path:
    (tmp_path / "shipyard.yaml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "init")[0] == 0
    return tmp_path


def test_set_list_remove_round_trip(folder: Path, capsys: Capture) -> None:
    code, out, err = cli(capsys, "llm", "caps", "set", "--tenant", "acme", "--quota", "10",
                         "--window", "1m", "--reason", "trial plan")  # fmt: skip
    assert code == 0, err
    assert "tenant acme, 10 requests per 60 s" in out
    code, out, err = cli(capsys, "llm", "caps", "set", "--tenant", "*", "--quota", "250",
                         "--unit", "cents", "--window", "1d", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["unit"] == "cents" and json.loads(out)["window_seconds"] == 86400
    code, out, _ = cli(capsys, "llm", "caps", "list", "--json")
    listed = [(r["tenant"], r["quota"], r["unit"], r["source"]) for r in json.loads(out)]
    assert listed == [
        ("*", 100, "request", "config"),
        ("*", 250, "cents", "stored"),
        ("acme", 10, "request", "stored"),
    ]
    code, out, _ = cli(capsys, "llm", "caps", "list")
    assert code == 0 and "250 cents" in out and "shipyard.yaml" in out
    code, out, _ = cli(capsys, "llm", "caps", "usage")
    assert code == 0 and "No tenant used assistant" in out
    code, out, _ = cli(capsys, "llm", "caps", "usage", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, err = cli(capsys, "llm", "caps", "remove", "--tenant", "acme", "--window", "60s")
    assert code == 0, err
    assert "removed" in out
    code, _, err = cli(capsys, "llm", "caps", "remove", "--tenant", "acme", "--window", "60s")
    assert code == 3 and "no stored cap for tenant 'acme' of requests per 60 s" in err
    store = Store(f"sqlite:///{folder / '.shipyard' / 'shipyard.db'}", actor="t")
    events = store.events(kind=EventKind.LLM_CAP_SET.value)
    store.close()
    assert [e.payload["action"] for e in events] == ["remove", "set", "set"]
    assert events[-1].reason == "trial plan"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--quota", "10", "--window", "soon"], "--window"),
        (["--quota", "10", "--window", "1h", "--unit", "tokens"], "--unit"),
        (["--quota", "-1"], "--quota"),
        (["--quota", "10", "--tenant", "two words"], "--tenant"),
    ],
)
def test_bad_options_exit_2_naming_them(
    folder: Path, capsys: Capture, args: list[str], named: str
) -> None:
    base = [] if "--tenant" in args else ["--tenant", "acme"]
    code, _, err = cli(capsys, "llm", "caps", "set", *base, *args)
    assert code == 2 and named in err and "Traceback" not in err


def test_a_viewer_token_may_list_but_not_set(
    folder: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, token, err = cli(capsys, "tokens", "create", "--name", "val", "--role", "viewer")
    assert code == 0, err
    monkeypatch.setenv("SHIPYARD_TOKEN", token.strip())
    code, _, err = cli(capsys, "llm", "caps", "set", "--tenant", "acme", "--quota", "1")
    assert code == 6 and "models:deploy" in err
    code, out, _ = cli(capsys, "llm", "caps", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 1


def test_tokens_take_a_tenant(folder: Path, capsys: Capture) -> None:
    code, out, err = cli(capsys, "tokens", "create", "--name", "acme-app", "--role", "labeller",
                         "--tenant", "acme", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["grants"] == ["*:*:USE", "tenant:acme:USE"]
    code, out, _ = cli(capsys, "tokens", "list")
    assert code == 0 and "for tenant acme" in out
    code, _, err = cli(capsys, "tokens", "create", "--name", "x", "--role", "labeller",
                       "--tenant", "no good")  # fmt: skip
    assert code == 2 and "--tenant" in err
