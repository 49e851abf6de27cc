"""The cycle exported to Kubeflow Pipelines v2 (compiled by kfp): steps, order, parameters.

The file is KFP's own IR YAML: the pipeline spec, then the Kubernetes platform spec that
kfp-kubernetes writes for the Secret references.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shipyard.cli import run
from tests.support import copy_example
from tests.support.environment import clean_environment

IMAGE = "registry.example.com/churn:3"
GATES = ["validate", "retrain", "scorecard", "feature_skew", "shadow", "canary", "promote"]
CAUSE = '{"kind": "schedule", "fired_at": "2026-12-01T03:00:00Z"}'


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The pipeline compiled once; the tests below only read it."""
    tmp_path = tmp_path_factory.mktemp("kfp")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_environment(monkeypatch, tmp_path)
        monkeypatch.chdir(copy_example(tmp_path / "churn"))
        out = tmp_path / "pipeline.yaml"
        argv = ["pipeline", "export", "churn", "--to", "kfp", "--image", IMAGE, "--out", str(out)]
        assert run([*argv, "--cause", CAUSE, "--timeout", "600"]) == 0
    return list(yaml.safe_load_all(out.read_text()))


def _tasks(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["taskInfo"]["name"]: t for t in pipeline["root"]["dag"]["tasks"].values()}


def _executor(pipeline: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    component = pipeline["components"][task["componentRef"]["name"]]
    container: dict[str, Any] = pipeline["deploymentSpec"]["executors"][component["executorLabel"]][
        "container"
    ]
    return container


def test_the_pipeline_runs_start_then_each_gate_in_order(
    compiled: list[dict[str, Any]],
) -> None:
    pipeline = compiled[0]
    assert pipeline["pipelineInfo"]["name"] == "shipyard-ct-churn"
    assert pipeline["schemaVersion"].startswith("2.")
    tasks = _tasks(pipeline)
    assert set(tasks) == {"start", *GATES}
    keys = {t["taskInfo"]["name"]: key for key, t in pipeline["root"]["dag"]["tasks"].items()}
    previous = "start"
    assert "dependentTasks" not in tasks["start"]
    for gate in GATES:
        assert sorted(tasks[gate]["dependentTasks"]) == sorted({keys["start"], keys[previous]})
        previous = gate
    for task in tasks.values():  # a gate acts on the control plane: never a cached result
        assert not task.get("cachingOptions", {}).get("enableCache", False)


def test_the_cause_parameter_reaches_the_first_step_and_the_cycle_id_every_gate(
    compiled: list[dict[str, Any]],
) -> None:
    pipeline = compiled[0]
    cause = pipeline["root"]["inputDefinitions"]["parameters"]["cause"]
    assert cause["parameterType"] == "STRING" and cause["defaultValue"] == CAUSE
    tasks = _tasks(pipeline)
    assert tasks["start"]["inputs"]["parameters"]["cause"] == {"componentInputParameter": "cause"}
    keys = {t["taskInfo"]["name"]: key for key, t in pipeline["root"]["dag"]["tasks"].items()}
    for gate in GATES:
        assert tasks[gate]["inputs"]["parameters"]["cycle"] == {
            "taskOutputParameter": {"outputParameterKey": "cycle", "producerTask": keys["start"]}
        }


def test_every_step_runs_the_shipyard_cli_in_the_image(compiled: list[dict[str, Any]]) -> None:
    pipeline = compiled[0]
    tasks = _tasks(pipeline)
    start = _executor(pipeline, tasks["start"])
    assert start["image"] == IMAGE and start["command"] == ["shipyard"]
    assert start["args"] == [
        "ct",
        "start",
        "churn",
        "--cause",
        "{{$.inputs.parameters['cause']}}",
        "--id-file",
        "{{$.outputs.parameters['cycle'].output_file}}",
    ]
    for gate in GATES:
        container = _executor(pipeline, tasks[gate])
        expected = ["ct", "step", "{{$.inputs.parameters['cycle']}}", gate]
        if gate in ("shadow", "canary", "promote"):
            expected += ["--timeout", "600"]
        assert container["image"] == IMAGE and container["command"] == ["shipyard"]
        assert container["args"] == expected


def test_the_secrets_are_references_in_the_platform_spec(compiled: list[dict[str, Any]]) -> None:
    pipeline, platform = compiled
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(pipeline["deploymentSpec"]["executors"])
    for config in executors.values():
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == "shipyard"
        assert secret["keyToEnv"] == [
            {"envVar": "SHIPYARD_DATABASE_URL", "secretKey": "database-url"},
            {"envVar": "SHIPYARD_TOKEN", "secretKey": "token"},
        ]
    for container in pipeline["deploymentSpec"]["executors"].values():
        assert "env" not in container["container"]  # no literal value anywhere


def test_kfp_loads_the_compiled_pipeline(compiled: list[dict[str, Any]]) -> None:
    from kfp import components

    loaded = components.load_component_from_text(yaml.safe_dump_all(compiled))
    assert loaded.name == "shipyard-ct-churn"
    assert list(loaded.component_spec.inputs or {}) == ["cause"]
