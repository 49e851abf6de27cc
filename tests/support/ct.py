"""A churn project set up for continuous training: data folder, light scorecard, champion.

The CT loop tests and the step-by-step (orchestrator) tests start from the same project:
``build_ct_project`` trains and promotes churn/1 once per module; each test works on its
own ``copy_workspace`` of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from shipyard.config import load_config
from shipyard.registry import Tracking
from shipyard.store import Store
from tests.support import copy_example, project_of

__all__ = ["SCORECARD", "build_ct_project", "write_config"]

SCORECARD = {"primary": {"metric": "roc_auc", "min": 0.7, "min_margin": -0.05}}


def write_config(root: Path, **changes: Any) -> None:
    """Set dotted keys (``"ct.cooldown_seconds": 0``) in ``root``'s shipyard.yaml."""
    path = root / "shipyard.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))


def build_ct_project(root: Path) -> Path:
    """The churn example at ``root`` with a data folder, a light scorecard and a champion
    (churn/1)."""
    from shipyard.evaluation.evaluate import evaluate_version
    from shipyard.governance.promotion import promote
    from shipyard.registry.refs import ModelRef
    from shipyard.training import train

    root = copy_example(root)
    folder = root / "data" / "train"
    folder.mkdir()
    shutil.move(root / "data" / "train.csv", folder / "0000-initial.csv")
    (root / "scorecard.yaml").write_text(yaml.safe_dump(SCORECARD))
    write_config(
        root,
        **{
            "train.data": "data/train",
            "train.params.n_estimators": 30,
            "promotion.approval": "none",
            "ct.cooldown_seconds": 0,
            "ct.min_performance_loss": None,
            "ct.recent_labelled": 0,
            "ct.step_seconds": 0,
            "ct.min_requests": 0,
        },
    )
    config = load_config(root / "shipyard.yaml", environ={})
    store = Store(config.db_url, actor="tester")
    Tracking(config)
    train(project_of(config))
    evaluate_version(project_of(config), ModelRef("churn", version="1"))
    promote(project_of(config), ModelRef("churn", version="1"), to="champion")
    store.close()
    return root
