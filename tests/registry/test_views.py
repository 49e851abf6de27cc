from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from shipyard.config import Config, load_config
from shipyard.errors import NotFoundError
from shipyard.registry import Tracking, lineage, list_models, parse_ref, show_version
from tests.support import project_of, register_with_plain_mlflow


def test_list_and_show(trained_project: Config) -> None:
    client = Tracking(trained_project).client
    models = {m.name: m for m in list_models(client)}
    assert models["churn"].latest_version == "1"
    assert models["churn"].versions >= 1
    detail = show_version(client, parse_ref("churn/1"))
    assert detail.registered_by == "shipyard"
    assert detail.status == "READY"
    assert detail.params["max_depth"] == "3"
    assert "roc_auc" in detail.metrics
    assert show_version(client, parse_ref("churn")).version == models["churn"].latest_version


def test_show_by_alias(trained_project: Config) -> None:
    client = Tracking(trained_project).client
    client.set_registered_model_alias("churn", "champion", "1")
    assert show_version(client, parse_ref("churn@champion")).version == "1"
    assert list_models(client)[0].aliases.get("champion") == "1"


def test_lineage_chain(trained_project: Config) -> None:
    found = lineage(Tracking(trained_project).client, parse_ref("churn/1"))
    assert found.run["status"] == "FINISHED"
    assert len(found.dataset["digest"]) == 64
    assert found.dataset["source"].endswith("train.csv")
    assert len(found.environment["digest"]) == 64
    assert found.trigger == "manual"
    # the session's copy of the example lives outside any git repository
    assert found.missing == ["git commit"]


def test_lineage_records_git_commit_dirty_flag_and_dvc(example_project: Path) -> None:
    from shipyard.training import train

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": "/usr/bin:/bin",
    }
    md5 = hashlib.md5((example_project / "data" / "train.csv").read_bytes()).hexdigest()
    (example_project / "data" / "train.csv.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: 1\n  path: train.csv\n"
    )
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=example_project, check=True, env=env)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=example_project,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with (example_project / "train.py").open("a") as fh:
        fh.write("\n# an uncommitted edit\n")
    config = load_config(example_project / "shipyard.yaml", environ={})
    train(project_of(config))
    found = lineage(Tracking(config).client, parse_ref("churn/1"))
    assert found.git == {"commit": commit, "dirty": True}
    assert found.dataset["dvc_md5"] == md5
    assert found.dataset["dvc_path"] == "train.csv"
    assert found.missing == []


def test_plain_mlflow_versions_show_with_what_lineage_they_have(initialised_example: Path) -> None:
    config = load_config(initialised_example / "shipyard.yaml", environ={})
    register_with_plain_mlflow(config, "plain")
    client = Tracking(config).client
    assert [m.name for m in list_models(client)] == ["plain"]
    detail = show_version(client, parse_ref("plain/1"))
    assert detail.registered_by == "mlflow"
    assert detail.params == {"C": "1.0"}
    found = lineage(client, parse_ref("plain/1"))
    assert found.dataset["name"] == "customers"
    assert found.dataset["mlflow_digest"]
    assert "environment digest" in found.missing
    assert "trigger" in found.missing


@pytest.mark.parametrize("ref", ["nosuch", "churn/99", "churn@nosuchalias"])
def test_unknown_model_or_version_is_not_found(trained_project: Config, ref: str) -> None:
    with pytest.raises(NotFoundError):
        show_version(Tracking(trained_project).client, parse_ref(ref))


def test_malformed_reference() -> None:
    with pytest.raises(NotFoundError, match="NAME/VERSION"):
        parse_ref("churn/v1")
