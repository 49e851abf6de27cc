"""evaluate → promote → approve → rollback → history through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.config import Config


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_promotion_commands(
    trained_copy: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    example_project = trained_copy.root  # churn/1, trained by "tester"
    monkeypatch.chdir(example_project)
    monkeypatch.setenv("SHIPYARD_SIGNING__PRIVATE_KEY", str(tmp_path / "keys" / "k.pem"))

    code, out, err = cli(capsys, "evaluate", "churn/1", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["passed"] is True and record["failing"] == []
    assert Path(record["report_path"]).is_file()
    code, out, _ = cli(capsys, "evaluate", "churn/1")
    assert code == 0 and "PASSED" in out and "roc_auc" in out

    code, _, err = cli(capsys, "promote", "churn/1", "--to", "champion")
    assert code == 1 and "needs an approval" in err and "Traceback" not in err
    code, _, err = cli(capsys, "approve", "churn/1", "--comment", "mine")
    assert code == 6 and "may not approve" in err  # separation of duties: Forbidden

    code, reviewer, _ = cli(capsys, "tokens", "create", "--name", "reviewer", "--role", "admin")
    monkeypatch.setenv("SHIPYARD_TOKEN", reviewer.strip())  # another person approves
    assert cli(capsys, "approve", "churn/1", "--comment", "reviewed")[0] == 0
    monkeypatch.delenv("SHIPYARD_TOKEN")
    assert cli(capsys, "keys", "init")[0] == 0
    assert (example_project / "shipyard.pub").is_file()
    code, out, err = cli(capsys, "promote", "churn/1", "--to", "champion", "--json")
    assert code == 0, err
    assert json.loads(out)["signed"] is True
    code, out, err = cli(capsys, "models", "verify", "churn/1")
    assert code == 0 and "verified" in out, out + err

    code, _, err = cli(capsys, "rollback", "churn")
    assert code == 1 and "no previous champion" in err
    code, out, _ = cli(capsys, "models", "history", "churn", "--json", "--at", "2999-01-01")
    history = json.loads(out)
    assert [e["action"] for e in history["entries"]] == ["approve", "promote"]
    assert history["champion_at"]["version"] == "1"
    code, out, _ = cli(capsys, "models", "prune", "churn", "--keep", "0")
    assert code == 0 and "Nothing to prune" in out

    code, _, err = cli(capsys, "promote", "churn/1", "--to", "production")
    assert code == 1 and "--to champion" in err
