"""The cycle exported to Airflow: a DAG file of KubernetesPodOperator tasks.

Airflow pins many packages, so it is never installed beside Shipyard: the file is parsed
here (``ast``) and its tasks, order, image and commands checked. When
``SHIPYARD_AIRFLOW_PYTHON`` names an interpreter with ``apache-airflow`` and the
cncf.kubernetes provider (a venv of its own), Airflow's DagBag also imports it.
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipyard.cli import run
from tests.support import copy_example
from tests.support.environment import clean_environment

IMAGE = "registry.example.com/churn:3"
GATES = ["validate", "retrain", "scorecard", "feature_skew", "shadow", "canary", "promote"]
XCOM = "{{ ti.xcom_pull(task_ids='start') }}"


@pytest.fixture(scope="module")
def dag_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DAG file exported once; the tests below only read it."""
    tmp_path = tmp_path_factory.mktemp("airflow")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_environment(monkeypatch, tmp_path)
        monkeypatch.chdir(copy_example(tmp_path / "churn"))
        out = tmp_path / "dags" / "shipyard_churn.py"
        cause = '{"kind": "drift"}'
        argv = ["pipeline", "export", "churn", "--to", "airflow", "--image", IMAGE]
        assert run([*argv, "--out", str(out), "--cause", cause]) == 0
    return out


def _constants(tree: ast.Module) -> dict[str, Any]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                found[node.targets[0].id] = node.value
    return found


def _tasks(tree: ast.Module) -> dict[str, dict[str, Any]]:
    """Every ``x = KubernetesPodOperator(...)``: variable → keyword arguments."""
    tasks = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "KubernetesPodOperator"
        ):
            keywords = {}
            for keyword in node.value.keywords:
                try:
                    keywords[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    keywords[keyword.arg] = ast.unparse(keyword.value)
            tasks[node.targets[0].id] = keywords  # type: ignore[attr-defined]
    return tasks


def _order(tree: ast.Module) -> list[str]:
    """The ``a >> b >> c`` chain, first to last."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.BinOp):
            names = []
            expression: ast.expr = node.value
            while isinstance(expression, ast.BinOp) and isinstance(expression.op, ast.RShift):
                names.append(expression.right.id)  # type: ignore[attr-defined]
                expression = expression.left
            names.append(expression.id)  # type: ignore[attr-defined]
            return names[::-1]
    return []


def test_the_dag_has_a_task_per_step_in_order(dag_file: Path) -> None:
    tree = ast.parse(dag_file.read_text())
    tasks = _tasks(tree)
    assert [tasks[name]["task_id"] for name in tasks] == ["start", *GATES]
    assert _order(tree) == ["start", *GATES]
    dag = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DAG"
    )
    options = {k.arg: k.value for k in dag.keywords}
    assert ast.literal_eval(options["dag_id"]) == "shipyard_ct_churn"
    assert ast.literal_eval(options["params"]) == {"cause": '{"kind": "drift"}'}
    assert ast.literal_eval(options["max_active_runs"]) == 1  # one cycle at a time


def test_each_task_runs_the_shipyard_cli_in_the_image(dag_file: Path) -> None:
    tree = ast.parse(dag_file.read_text())
    assert _constants(tree)["IMAGE"] == IMAGE
    tasks = _tasks(tree)
    start = tasks["start"]
    assert start["image"] == "IMAGE" and start["cmds"] == ["shipyard"]
    assert start["arguments"] == [
        "ct",
        "start",
        "churn",
        "--cause",
        "{{ params.cause }}",
        "--id-file",
        "/airflow/xcom/return.json",  # what KubernetesPodOperator pushes as the XCom
    ]
    assert start["do_xcom_push"] is True
    for gate in GATES:
        task = tasks[gate]
        assert task["image"] == "IMAGE" and task["cmds"] == ["shipyard"]
        assert task["arguments"] == ["ct", "step", XCOM, gate]
        assert task["do_xcom_push"] is False and task["secrets"] == "SECRETS"


def test_the_secrets_are_references_only(dag_file: Path) -> None:
    tree = ast.parse(dag_file.read_text())
    secrets = _constants(tree)["SECRETS"]
    calls = [ast.literal_eval(ast.List(elts=list(c.args))) for c in secrets.elts]
    assert calls == [
        ["env", "SHIPYARD_DATABASE_URL", "shipyard", "database-url"],
        ["env", "SHIPYARD_TOKEN", "shipyard", "token"],
    ]


AIRFLOW_PYTHON = os.environ.get("SHIPYARD_AIRFLOW_PYTHON")
DAGBAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("shipyard_ct_churn")
print(json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "image": t.image,
              "arguments": list(t.arguments), "cmds": list(t.cmds),
              "secrets": [[s.deploy_type, s.deploy_target, s.secret, s.key] for s in t.secrets]}
              for t in dag.tasks} if dag else None,
    "params": dict(dag.params) if dag else None,
}))
"""


@pytest.mark.skipif(
    not AIRFLOW_PYTHON,
    reason="SHIPYARD_AIRFLOW_PYTHON is not set (an interpreter with apache-airflow and "
    "apache-airflow-providers-cncf-kubernetes, in a venv of its own)",
)
def test_airflow_imports_the_dag(dag_file: Path, tmp_path: Path) -> None:
    import json

    environ = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    done = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", DAGBAG, str(dag_file.parent)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    tasks = found["tasks"]
    assert list(tasks) == ["start", *GATES]
    for before, after in zip(["start", *GATES], GATES, strict=False):
        assert tasks[after]["upstream"] == [before]
    assert tasks["retrain"]["arguments"] == ["ct", "step", XCOM, "retrain"]
    assert all(t["image"] == IMAGE and t["cmds"] == ["shipyard"] for t in tasks.values())
    assert tasks["start"]["secrets"][0] == [
        "env",
        "SHIPYARD_DATABASE_URL",
        "shipyard",
        "database-url",
    ]
    assert found["params"] == {"cause": '{"kind": "drift"}'}
