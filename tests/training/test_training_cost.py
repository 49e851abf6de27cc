"""Training cost: a fresh run measures its CPU (children included), wall and GPU time, prices
it, and records it on the MLflow run, in its events, and per version and CT cycle."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest

from shipyard.config import load_config
from shipyard.errors import TrainingFailed
from shipyard.monitoring.cost import training_cost
from shipyard.pipelines.cycles import start_cycle, update_cycle
from shipyard.registry import Tracking
from shipyard.training import train
from shipyard.training.cost import COST_METRIC, CPU_METRIC
from tests.support import project_of

CHILD_CPU = 0.3  # seconds of CPU the training function's child process burns

BURNING = textwrap.dedent(f"""
    import importlib.util, json, subprocess, sys
    from pathlib import Path

    HERE = Path(__file__).parent
    spec = importlib.util.spec_from_file_location("churn_train", HERE / "train.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # this project's train.py, whatever else is imported

    BURN = (
        "import time\\n"
        "while time.process_time() < {CHILD_CPU}: pass\\n"
        "print(time.process_time())"
    )

    def train(ctx):
        used = subprocess.run([sys.executable, "-c", BURN], capture_output=True, text=True)
        (HERE / "child_cpu.json").write_text(json.dumps(float(used.stdout)))
        return example.train(ctx)
""")

PRICES = {"cost.cpu_hour": 1.8, "cost.gpu_hour": 3.6, "cost.gpus_per_training": 2}


def test_a_fresh_run_records_its_cost(initialised_example: Path) -> None:
    (initialised_example / "burning.py").write_text(BURNING)
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.entrypoint": "burning:train", "cost.currency": "EUR", **PRICES},
    )
    project = project_of(config)
    result = train(project)
    child = json.loads((initialised_example / "child_cpu.json").read_text())
    assert child >= CHILD_CPU
    cost = result.cost
    assert cost is not None
    # The child's CPU counts (RUSAGE_CHILDREN), on top of this process's own.
    assert cost.cpu_seconds >= child
    assert cost.wall_seconds > 0
    assert math.isclose(cost.gpu_seconds, 2 * cost.wall_seconds, rel_tol=1e-6)
    expected = cost.cpu_seconds * 1.8 / 3600 + cost.gpu_seconds * 3.6 / 3600
    assert math.isclose(cost.amount, expected, rel_tol=1e-12)
    assert cost.currency == "EUR"
    # The same figures on the run, and in both events' payloads.
    run = Tracking(config).client.get_run(result.run_id)
    assert math.isclose(run.data.metrics[CPU_METRIC], cost.cpu_seconds, rel_tol=1e-9)
    assert math.isclose(run.data.metrics[COST_METRIC], cost.amount, rel_tol=1e-9)
    store = project.store
    finished = store.events(kind="run.finished", subject=f"run:{result.run_id}")[0]
    registered = store.events(
        kind="model_version.registered", subject=f"model:churn/{result.version}"
    )[0]
    for event in (finished, registered):
        assert event.payload["cost"] == cost.to_dict()
        assert set(event.payload["cost"]) == {
            "cpu_seconds",
            "gpu_seconds",
            "wall_seconds",
            "amount",
            "currency",
        }
    # Per version and per CT cycle: the cycle's candidate is the version it trained.
    cycle = start_cycle(store, "churn", "drift", {}, champion=None)
    update_cycle(store, cycle.id, candidate=result.version)
    start_cycle(store, "churn", "schedule", {}, champion=result.version)  # trained nothing
    found = training_cost(project, "churn")
    assert found.currency == "EUR"
    [version] = found.versions
    assert (version.version, version.amount, version.run_id) == (
        result.version,
        cost.amount,
        result.run_id,
    )
    assert [(c.cycle, c.candidate, c.amount) for c in found.cycles] == [
        (cycle.id + 1, None, None),
        (cycle.id, result.version, cost.amount),
    ]
    assert math.isclose(found.total, cost.amount) and math.isclose(found.retraining, cost.amount)
    assert found.to_dict()["versions"][0]["cpu_seconds"] == cost.cpu_seconds


def test_a_failed_run_records_what_it_cost(initialised_example: Path) -> None:
    (initialised_example / "broken.py").write_text("def train(ctx):\n    raise ValueError('nan')\n")
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.entrypoint": "broken:train"},
    )
    project = project_of(config)
    with pytest.raises(TrainingFailed):
        train(project)
    [failed] = project.store.events(kind="run.failed")
    cost = failed.payload["cost"]
    assert cost["cpu_seconds"] > 0 and cost["gpu_seconds"] == 0  # no GPU price by default
    assert math.isclose(cost["amount"], cost["cpu_seconds"] * 0.04 / 3600, rel_tol=1e-12)
    assert cost["currency"] == "USD"
    assert training_cost(project, "churn").versions == ()
