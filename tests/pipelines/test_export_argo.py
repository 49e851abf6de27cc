"""The cycle exported to Argo Workflows (built with hera): steps, order, parameters, image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.cli import run
from tests.support import copy_example
from tests.support.environment import clean_environment

IMAGE = "registry.example.com/churn:3"
GATES = ["validate", "retrain", "scorecard", "feature_skew", "shadow", "canary", "promote"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The workflow exported once; the tests below only read it."""
    tmp_path = tmp_path_factory.mktemp("argo")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_environment(monkeypatch, tmp_path)
        monkeypatch.chdir(copy_example(tmp_path / "churn"))
        out = tmp_path / "out" / "workflow.yaml"
        argv = ["pipeline", "export", "churn", "--to", "argo", "--image", IMAGE, "--out", str(out)]
        assert run([*argv, "--timeout", "7200", "--namespace", "ml"]) == 0
    workflow: dict[str, Any] = yaml.safe_load(out.read_text())
    return workflow


def test_the_workflow_runs_start_then_each_gate_in_order(exported: dict[str, Any]) -> None:
    assert exported["apiVersion"] == "argoproj.io/v1alpha1" and exported["kind"] == "Workflow"
    assert exported["metadata"]["generateName"] == "shipyard-ct-churn-"
    assert exported["metadata"]["namespace"] == "ml"
    spec = exported["spec"]
    assert spec["entrypoint"] == "cycle"
    templates = {t["name"]: t for t in spec["templates"]}
    steps = [group for group in templates["cycle"]["steps"]]
    # One step per group: each waits for the one before, and a failure stops the rest.
    assert all(len(group) == 1 for group in steps)
    assert [group[0]["name"] for group in steps] == ["start", *GATES]
    assert [group[0]["template"] for group in steps] == ["start", *GATES]


def test_the_cause_parameter_reaches_the_first_step_and_the_cycle_id_every_gate(
    exported: dict[str, Any],
) -> None:
    spec = exported["spec"]
    cause = spec["arguments"]["parameters"][0]
    assert cause["name"] == "cause" and '"kind": "manual"' in cause["value"]
    templates = {t["name"]: t for t in spec["templates"]}
    steps = [group[0] for group in templates["cycle"]["steps"]]
    assert steps[0]["arguments"]["parameters"] == [
        {"name": "cause", "value": "{{workflow.parameters.cause}}"}
    ]
    for step in steps[1:]:
        assert step["arguments"]["parameters"] == [
            {"name": "cycle", "value": "{{steps.start.outputs.parameters.cycle}}"}
        ]
    start = templates["start"]
    args = start["container"]["args"]
    id_file = args[args.index("--id-file") + 1]
    assert start["outputs"]["parameters"] == [{"name": "cycle", "valueFrom": {"path": id_file}}]


def test_every_step_runs_the_shipyard_cli_in_the_image(exported: dict[str, Any]) -> None:
    templates = {t["name"]: t for t in exported["spec"]["templates"]}
    start = templates["start"]["container"]
    assert start["image"] == IMAGE and start["command"] == ["shipyard"]
    assert start["args"][:5] == ["ct", "start", "churn", "--cause", "{{inputs.parameters.cause}}"]
    for gate in GATES:
        container = templates[gate]["container"]
        assert container["image"] == IMAGE and container["command"] == ["shipyard"]
        expected = ["ct", "step", "{{inputs.parameters.cycle}}", gate]
        if gate in ("shadow", "canary", "promote"):
            expected += ["--timeout", "7200"]
        assert container["args"] == expected
        assert container["securityContext"]["runAsNonRoot"] is True


def test_the_secrets_are_references_only(exported: dict[str, Any]) -> None:
    for template in exported["spec"]["templates"]:
        if "container" not in template:
            continue
        env = {e["name"]: e for e in template["container"]["env"]}
        assert set(env) == {"SHIPYARD_DATABASE_URL", "SHIPYARD_TOKEN"}
        assert all("value" not in e for e in env.values())
        assert env["SHIPYARD_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "shipyard",
            "key": "database-url",
        }


def test_hera_reads_the_workflow_back(exported: dict[str, Any]) -> None:
    """The YAML round-trips through hera's models of Argo's own API (field names, types)."""
    from hera.workflows import Workflow

    again = Workflow.from_dict(exported)
    assert again.to_dict() == exported


def test_more_secrets_are_added_and_a_default_one_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(copy_example(tmp_path / "churn"))
    out = tmp_path / "workflow.yaml"
    argv = ["pipeline", "export", "churn", "--to", "argo", "--image", IMAGE, "--out", str(out)]
    more = ["--secret", "AWS_ACCESS_KEY_ID=shipyard-storage/AWS_ACCESS_KEY_ID"]
    other = ["--secret", "SHIPYARD_TOKEN=ct-pipeline/token"]
    assert run([*argv, *more, *other]) == 0
    workflow = yaml.safe_load(out.read_text())
    start = next(t for t in workflow["spec"]["templates"] if t["name"] == "start")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in start["container"]["env"]}
    assert refs == {
        "SHIPYARD_DATABASE_URL": {"name": "shipyard", "key": "database-url"},
        "SHIPYARD_TOKEN": {"name": "ct-pipeline", "key": "token"},
        "AWS_ACCESS_KEY_ID": {"name": "shipyard-storage", "key": "AWS_ACCESS_KEY_ID"},
    }
