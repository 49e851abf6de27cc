from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shipyard.config import Config, load_config
from shipyard.errors import NotReproducible
from shipyard.registry import parse_ref
from shipyard.store import Store
from shipyard.training import reproduce, train
from tests.support import project_of


def test_reproduce_a_deterministic_version(trained_project: Config) -> None:
    report = reproduce(project_of(trained_project), parse_ref("churn/1"))
    assert report.reproduced, report.differences
    assert report.predictions_compared == 3000
    assert report.predictions_differing == 0
    assert {m.name for m in report.metrics} == {"roc_auc", "accuracy"}
    assert all(m.within_tolerance for m in report.metrics)
    events = Store(trained_project.db_url, actor="tester").events(kind="model_version.reproduced")
    assert events[0].subject == "model:churn/1"
    assert events[0].payload["reproduced"] is True


NONDETERMINISTIC = textwrap.dedent("""
    import os

    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score

    def train(ctx):
        X, y = ctx.features()
        X = X.select_dtypes("number")
        # Seeded from the OS on purpose: this function ignores ctx.seed.
        seed = int.from_bytes(os.urandom(4), "little")
        model = RandomForestClassifier(n_estimators=5, max_features=1, random_state=seed)
        model.fit(X, y)
        Xv, yv = ctx.features(ctx.validation)
        scores = model.predict_proba(Xv.select_dtypes("number"))[:, 1]
        ctx.log_metric("roc_auc", roc_auc_score(yv, scores))
        return NumericOnly(model)

    class NumericOnly:
        def __init__(self, model):
            self.model = model

        def predict(self, X):
            return self.model.predict_proba(X.select_dtypes("number"))[:, 1]
""")


def test_nondeterministic_training_is_not_reproduced(initialised_example: Path) -> None:
    (initialised_example / "nondet.py").write_text(NONDETERMINISTIC)
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.entrypoint": "nondet:train"},
    )
    result = train(project_of(config))
    report = reproduce(project_of(config), parse_ref(f"churn/{result.version}"))
    assert not report.reproduced
    assert report.predictions_differing > 0
    assert any(line.startswith("predictions:") for line in report.differences)
    assert any(line.startswith("metric roc_auc") for line in report.differences)


def test_reproduce_rejects_a_version_not_trained_by_shipyard(initialised_example: Path) -> None:
    from tests.support import register_with_plain_mlflow

    config = load_config(initialised_example / "shipyard.yaml", environ={})
    register_with_plain_mlflow(config, "plain")
    with pytest.raises(NotReproducible, match="not trained by `shipyard train`"):
        reproduce(project_of(config), parse_ref("plain/1"))
