"""A continuous-training retrain records the project's git state, never Shipyard's own.

MLflow tags a run with the git commit of ``sys.argv[0]``: under the agent or this test
runner that is Shipyard's installation. The retrain gate must record the project's commit,
or ``not a git repository``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard.config import Config
from shipyard.pipelines.gates import retrain_gate, training_window
from shipyard.registry import tags
from shipyard.registry.git import git_state
from tests.support import TrainedExamples, project_of


@pytest.fixture
def project_root(trained_examples: TrainedExamples, tmp_path: Path) -> Config:
    """The churn example with its workspace created, nothing trained."""
    return trained_examples.copy(tmp_path / "churn")


def retrain(config: Config) -> dict[str, str]:
    """One retrain gate on the whole of train.data; the run's and version's tags, merged."""
    project = project_of(config)
    window = training_window(config, config.workspace / "ct" / "cycle-test")
    result = retrain_gate(project, window, "drift")
    run_tags = project.client.get_run(result.run_id).data.tags
    version = project.client.get_model_version(result.name, result.version)
    assert version.tags[tags.GIT_COMMIT] == run_tags[tags.GIT_COMMIT]
    return run_tags


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_outside_a_git_repository_the_run_says_so(project_root: Config) -> None:
    assert git_state(project_root.root) is None  # a temporary folder, in no repository
    found = retrain(project_root)

    assert found[tags.GIT_COMMIT] == tags.NOT_A_GIT_REPOSITORY
    assert tags.MLFLOW_GIT_COMMIT not in found
    assert tags.MLFLOW_GIT_REPO_URL not in found
    assert tags.GIT_DIRTY not in found


def test_inside_the_projects_repository_the_run_has_its_commit(project_root: Config) -> None:
    root = project_root.root
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "shipyard.yaml")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "p")
    head = _git(root, "rev-parse", "HEAD")

    found = retrain(project_root)

    assert found[tags.GIT_COMMIT] == head
    assert found[tags.MLFLOW_GIT_COMMIT] == head
    assert found[tags.MLFLOW_GIT_BRANCH] == "main"
    assert tags.MLFLOW_GIT_REPO_URL not in found  # Shipyard's remote, when MLflow set it


def test_run_as_python_m_shipyard_from_its_checkout_keeps_the_projects_state(
    project_root: Config,
) -> None:
    # `python -m shipyard` (how an agent is often started from a checkout) puts Shipyard's
    # own __main__.py in sys.argv[0]: MLflow would tag the run with Shipyard's commit.
    shipyard_checkout = git_state(Path(shipyard.__file__).parent)
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "train", "--json"],
        cwd=project_root.root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    found = project_of(project_root).client.get_run(run_id).data.tags

    assert found[tags.GIT_COMMIT] == tags.NOT_A_GIT_REPOSITORY
    assert tags.MLFLOW_GIT_COMMIT not in found and tags.MLFLOW_GIT_BRANCH not in found
    if shipyard_checkout is not None:
        assert shipyard_checkout.commit not in found.values()


def test_a_project_in_an_ignored_folder_of_another_checkout_is_not_versioned(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    # `shipyard demo` puts its project in .demo/, which Shipyard's own checkout ignores.
    outer = tmp_path / "checkout"
    outer.mkdir()
    (outer / ".gitignore").write_text(".demo/\n")
    _git(outer, "init", "-q")
    _git(outer, "add", ".gitignore")
    _git(outer, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "o")
    config = trained_examples.copy(outer / ".demo" / "churn")
    assert _git(config.root, "rev-parse", "HEAD")  # git itself would answer the outer commit

    assert git_state(config.root) is None
    assert retrain(config)[tags.GIT_COMMIT] == tags.NOT_A_GIT_REPOSITORY
