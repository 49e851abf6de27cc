"""``shipyard llm evaluate`` and ``shipyard llm evals`` through the real CLI.

The provider is the deterministic stand-in (tests/support/llm_provider.py, a real HTTP
server on 127.0.0.1) that the assistant example's llm.providers point at; versions are
registered with plain MLflow (tests/support/llm_evals.py). Real SQLite project.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.config import Config
from tests.support.llm_evals import GOOD, WORSE, llm_project, register_version
from tests.support.llm_provider import stand_in

Capture = pytest.CaptureFixture[str]


def cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Config]:
    """The example on the stand-in with v1 (GOOD) and v2 (WORSE) registered."""
    with stand_in() as provider:
        found = llm_project(tmp_path, provider)
        assert [register_version(found, GOOD), register_version(found, WORSE)] == ["1", "2"]
        monkeypatch.chdir(found.root)
        yield found


def test_evaluate_then_list_the_runs_and_signals(config: Config, capsys: Capture) -> None:
    """Stand-in provider: v1 passes its judge scorecard, v2 fails it (exit 1)."""
    v1, v2 = "1", "2"
    code, out, err = cli(capsys, "llm", "evaluate", f"assistant/{v1}")
    assert code == 0, err
    assert f"assistant/{v1} gold" in out and "passed" in out and "judge vs people: kappa" in out
    code, out, err = cli(capsys, "promote", f"assistant/{v1}", "--to", "champion")
    assert code == 0, err
    code, out, err = cli(capsys, "llm", "evaluate", f"assistant/{v2}", "--json")
    assert code == 1
    run_ = json.loads(out)
    assert run_["passed"] is False and run_["champion_version"] == v1 and run_["rows"] == 12
    code, out, err = cli(capsys, "llm", "evals", "--version", v2, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [r["version"] for r in listed["runs"]] == [v2]
    levels = {s["name"]: s["level"] for s in listed["signals"]}
    assert levels["llm:judge"] == "pause" and levels["llm:guardrail"] == "unknown"
    code, out, _ = cli(capsys, "llm", "evals")
    assert code == 0 and out.count("assistant/") == 2 and "FAILED" in out


def test_bad_input_is_refused_clearly(config: Config, capsys: Capture) -> None:
    code, out, err = cli(capsys, "llm", "evaluate", "assistant/1", "--kind", "nightly")
    assert code != 0 and "--kind 'nightly' is not gold or production" in err + out
    code, out, err = cli(capsys, "llm", "evaluate", "assistant/7")
    assert code != 0 and "Traceback" not in err
    code, out, _ = cli(capsys, "llm", "evals")
    assert code == 0 and "No judge runs of assistant yet" in out
