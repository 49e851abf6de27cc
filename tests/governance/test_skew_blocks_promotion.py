"""A version whose served features differ from the offline ones (value skew at the pause
band) cannot be promoted; once its newest traffic is clean it can."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.config import Config
from shipyard.errors import PromotionRefused
from shipyard.evaluation.evaluate import evaluate_version
from shipyard.features.repo import load_repo
from shipyard.governance.promotion import promote
from shipyard.pipelines.gates import feature_skew_gate
from shipyard.registry import parse_ref
from shipyard.store.tables import MaterializationRow
from tests.support import TrainedExamples, project_of
from tests.support.features import log_served_churn

NOW = pd.Timestamp.now(tz="UTC").floor("s")
SAMPLE = 40
FEATURES = ("tenure_months", "monthly_charges")
COLUMNS = ("tenure_months", "monthly_charges", "contract", "support_calls", "region")

FEATURES_PY = """\
from datetime import timedelta

from shipyard.features import Entity, Feature, FeatureView, FileSource

customer = Entity("customer", join_keys=("customer_id",))

customer_stats = FeatureView(
    "customer_stats",
    entities=("customer",),
    source=FileSource("data/customer_stats.parquet"),
    ttl=timedelta(days=1),
    features=(Feature("tenure_months", "int64"), Feature("monthly_charges", "float64")),
)
"""


def _log(config: Config, frame: pd.DataFrame, start: pd.Timestamp, factor: float) -> None:
    log_served_churn(config, frame, start, factor, role="shadow", step=pd.Timedelta(seconds=1))


def _features(config: Config) -> pd.DataFrame:
    """customer_stats from the golden rows, materialised once; churn/1 tagged as its user."""
    (config.root / "features.py").write_text(FEATURES_PY)
    frame = pd.read_csv(config.root / "data" / "golden.csv").head(SAMPLE)
    frame["customer_id"] = np.arange(1, SAMPLE + 1)
    frame["event_timestamp"] = (NOW - pd.Timedelta(minutes=30)).as_unit("us")
    frame[["customer_id", "event_timestamp", *FEATURES]].to_parquet(
        config.root / "data" / "customer_stats.parquet", index=False
    )
    project = project_of(config)
    version = load_repo(config).views["customer_stats"].version
    tag = {
        "features": [f"customer_stats:{name}" for name in FEATURES],
        "columns": {f"customer_stats:{name}": name for name in FEATURES},
        "views": {"customer_stats": version},
        "entity_keys": ["customer_id"],
        "request_inputs": ["contract", "support_calls", "region"],
        "entities_digest": "test",
        "mode": "event_time",
    }
    project.client.set_model_version_tag("churn", "1", "shipyard.features", json.dumps(tag))
    with project.store.session() as session:
        session.add(
            MaterializationRow(
                view="customer_stats",
                version=version,
                backend="sqlite",
                start_ts=None,
                end_ts=(NOW - pd.Timedelta(minutes=20)).to_pydatetime(),
                started_at=(NOW - pd.Timedelta(minutes=20)).to_pydatetime(),
                finished_at=(NOW - pd.Timedelta(minutes=19)).to_pydatetime(),
                rows=SAMPLE,
                status="done",
            )
        )
    project.close()
    return frame


def test_pause_level_value_skew_refuses_promotion(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    config = trained_examples.copy(
        tmp_path / "churn", {}, overrides={"features.skew.sample": SAMPLE}
    )
    frame = _features(config)
    project = project_of(config)
    try:
        assert evaluate_version(project, parse_ref("churn/1")).passed
        _log(config, frame, NOW - pd.Timedelta(minutes=10), 1.1)
        with pytest.raises(PromotionRefused) as refused:
            promote(project, parse_ref("churn/1"), to="challenger")
        message = refused.value.message
        assert "training-serving value skew at the pause band" in message
        assert f"customer_stats:monthly_charges {SAMPLE}/{SAMPLE} (100.0%)" in message
        assert "tenure_months" not in message.split("pause band")[1].split("e.g.")[0]
        assert "shipyard features skew churn --version 1" in message

        # The CT gate before traffic halts a candidate reading these features.
        gate = feature_skew_gate(project, "churn", "1", champion="1")
        assert not gate.passed and gate.status == "failed"
        assert "monthly_charges differs in 40 of 40" in gate.reason
        assert gate.evidence["level"] == "pause" and gate.evidence["served_by"] == "1"

        # The newest sample is clean (the online pipeline was fixed): promotion passes.
        _log(config, frame, NOW - pd.Timedelta(minutes=5), 1.0)
        assert feature_skew_gate(project, "churn", "1", champion="1").status == "passed"
        result = promote(project, parse_ref("churn/1"), to="challenger")
        assert result.alias == "challenger" and not result.forced
    finally:
        project.close()


def test_a_model_without_features_is_not_checked(
    trained_examples: TrainedExamples, tmp_path: Path
) -> None:
    config = trained_examples.copy(tmp_path / "churn", {})
    (config.root / "features.py").write_text("raise RuntimeError('never imported')\n")
    project = project_of(config)
    try:
        assert evaluate_version(project, parse_ref("churn/1")).passed
        result = promote(project, parse_ref("churn/1"), to="challenger")
        gate = feature_skew_gate(project, "churn", "1", champion="1")
    finally:
        project.close()
    assert result.alias == "challenger" and result.overridden == []
    assert (
        gate.status == "skipped" and gate.evidence["note"] == "the candidate reads no feature views"
    )
