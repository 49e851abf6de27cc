"""``shipyard pipeline export``: what is shared by every target, and bad input.

The steps it exports are real CLI calls (parsed here by the CLI itself); secrets are
never in the output; kfp and hera load only inside their exporter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.config import load_config
from shipyard.errors import ConfigError
from shipyard.store import Store
from tests.support import copy_example, project_of, token_for

IMAGE = "registry.example.com/churn:3"
PASSWORD = "pw-7Hq2xK9z"
TARGETS = ["kfp", "argo", "airflow"]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    made = copy_example(tmp_path / "churn")
    monkeypatch.chdir(made)
    return made


@pytest.mark.parametrize("target", TARGETS)
def test_no_secret_value_reaches_the_exported_pipeline(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    config = load_config(root / "shipyard.yaml", environ={})
    store = Store(config.db_url, actor="tester")
    token = token_for(project_of(config), "admin")
    store.close()
    monkeypatch.setenv("SHIPYARD_TOKEN", token)
    monkeypatch.setenv(
        "SHIPYARD_DATABASE_URL", f"postgresql://shipyard:{PASSWORD}@db.internal:5432/shipyard"
    )
    out = tmp_path / f"pipeline-{target}"
    argv = ["pipeline", "export", "churn", "--to", target, "--image", IMAGE, "--out", str(out)]
    assert run(argv) == 0
    text = out.read_text()
    assert IMAGE in text and "SHIPYARD_DATABASE_URL" in text and "SHIPYARD_TOKEN" in text
    for secret in (PASSWORD, token, token[4:20], "db.internal"):
        assert secret not in text


def test_each_exported_step_is_a_command_the_cli_accepts(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from shipyard.cli import app

    capsys.readouterr()
    argv = ["pipeline", "export", "churn", "--to", "argo", "--image", IMAGE, "--json"]
    assert run(argv) == 0
    found = json.loads(capsys.readouterr().out)
    names = [step["name"] for step in found["steps"]]
    assert names == [
        "start",
        "validate",
        "retrain",
        "scorecard",
        "feature_skew",
        "shadow",
        "canary",
        "promote",
    ]
    filled = {"{cause}": '{"kind": "drift"}', "{cycle}": "7", "{id_file}": "/tmp/cycle-id"}
    group = typer.main.get_group(app)
    for step in found["steps"]:
        command = [filled.get(part, part) for part in step["command"]]
        assert command[0] == "shipyard" and "{" not in "".join(command[1:3])
        # Parse as the CLI would, without running: ct → start/step, its arguments, options.
        context = group.make_context("shipyard", command[1:], resilient_parsing=False)
        with context:
            name, sub, rest = group.resolve_command(context, command[1:])
            assert name == "ct"
            sub_context = sub.make_context(name, rest, parent=context)  # type: ignore[union-attr]
            inner_name, leaf, leaf_args = sub.resolve_command(sub_context, rest)  # type: ignore[union-attr]
            parsed = leaf.make_context(inner_name, leaf_args, parent=sub_context)  # type: ignore[union-attr]
            if step["name"] == "start":
                assert parsed.params["name"] == "churn"
                assert parsed.params["cause"] == '{"kind": "drift"}'
                assert str(parsed.params["id_file"]) == "/tmp/cycle-id"
            else:
                assert parsed.params["cycle_id"] == 7 and parsed.params["gate"] == step["name"]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--to", "spark", "--image", IMAGE], "--to 'spark' is not an orchestrator"),
        (["--to", "argo"], "--image is required"),
        (["--to", "argo", "--image", "bad image"], "is not an image reference"),
        (["--to", "argo", "--image", IMAGE, "--cause", "{drift}"], "--cause is not JSON"),
        (["--to", "argo", "--image", IMAGE, "--cause", '{"kind": "x"}'], "field 'kind'"),
        (["--to", "argo", "--image", IMAGE, "--secret", "TOKEN=shipyard"], "not ENV=SECRET/KEY"),
    ],
)
def test_bad_input_is_refused_naming_what_to_fix(
    root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    capsys.readouterr()
    assert run(["pipeline", "export", "churn", *argv]) == 2
    assert said in capsys.readouterr().err


def test_another_model_is_refused(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["pipeline", "export", "loans", "--to", "argo", "--image", IMAGE]) == 2
    assert "This project trains 'churn', not 'loans'" in capsys.readouterr().err


def test_kfp_and_hera_load_only_inside_their_exporter() -> None:
    code = (
        "import sys; import shipyard.cli.pipeline, shipyard.pipelines.export, "
        "shipyard.pipelines.export.to_airflow; "
        "print(sorted(m for m in ('kfp', 'hera') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("target", "extra"), [("kfp", "kfp"), ("argo", "hera")])
def test_a_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, target: str, extra: str
) -> None:
    from shipyard.pipelines.export import export_pipeline, pipeline_spec

    for name in list(sys.modules):
        if name == extra or name.startswith(f"{extra}."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, extra, None)  # as if it were not installed
    spec = pipeline_spec("churn", IMAGE, gates=("validate",), rollout_gates=(), secrets=())
    with pytest.raises(ConfigError) as raised:
        export_pipeline(spec, target)  # type: ignore[arg-type]
    assert f"pip install 'shipyard-mlops[{target}]'" in str(raised.value)
