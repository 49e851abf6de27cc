"""deploy/prometheus/alerts.yaml: its structure, its numbers, and promtool's verdict.

The structural tests always run. ``promtool check rules`` and ``promtool test rules``
(the repository's deploy/prometheus/alerts_test.yaml, and synthetic series made here
from the shipped bands) run when promtool is on PATH: Debian's ``prometheus`` package
installs it, and ``.ci/run`` installs that package. In CI (``CI`` set) a missing
promtool is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shipyard.config import Config
from shipyard.monitoring import KL_BANDS, PSI_BANDS
from shipyard.monitoring.alerting import LEVELS, SEVERITY
from tests.support import in_process

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = RULES.with_name("alerts_test.yaml")

# Every series the rules read, with the labels the server gives it (besides owner and
# team, which every shipyard series carries).
GAUGES = {
    "shipyard_feature_drift_score": {"model", "version", "feature", "method"},
    "shipyard_prediction_drift_score": {"model", "version"},
    "shipyard_estimated_performance": {"model", "version", "metric"},
    "shipyard_realized_performance": {"model", "version", "metric"},
    "shipyard_label_coverage": {"model", "version"},
    "shipyard_scorecard_bound": {"model", "metric", "bound"},
    "shipyard_scorecard_latency_seconds": {"model", "quantile"},
    "shipyard_request_seconds_bucket": {"model", "version", "protocol", "le"},
    "shipyard_request_seconds_count": {"model", "version", "protocol"},
    "shipyard_requests_total": {"model", "version", "role", "protocol", "status"},
    "shipyard_degraded": {"reason"},
}
# Referenced by the prediction-drift rules: the per-model inspect
# band of the latest window, so that rules can compare the score with 1.5 × and 3 × it.
BAND_GAUGE = {"shipyard_prediction_drift_band": {"model", "version"}}
# Signals about the server rather than the model: a severity, no monitoring level.
OPERATIONAL = {"latency", "errors", "degraded"}

_DURATION = re.compile(r"^(\d+[smhdwy])+$")
_METRIC = re.compile(r"\b(shipyard[_:][A-Za-z0-9_:]*)")

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None and not os.environ.get("CI"),
    reason="promtool is not installed (Debian package prometheus); the structural tests ran",
)


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def test_groups_and_rules_are_well_formed() -> None:
    document = yaml.safe_load(RULES.read_text())
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names)) and all(group["rules"] for group in document["groups"])
    assert len({rule["alert"] for rule in alerts()}) == len(alerts())
    for rule in rules():
        assert ("alert" in rule) != ("record" in rule), rule
        assert rule["expr"].strip()


def test_every_alert_has_a_duration_a_severity_and_an_owner() -> None:
    for rule in alerts():
        name = rule["alert"]
        assert name.startswith("Shipyard"), name
        assert _DURATION.match(rule["for"]), name
        labels, annotations = rule["labels"], rule["annotations"]
        assert labels["signal"], name
        if labels["signal"] in OPERATIONAL:
            assert "level" not in labels and labels["severity"] in {"warning", "critical"}, name
        else:
            assert labels["level"] in LEVELS, name
            assert labels["severity"] == SEVERITY[labels["level"]], name  # as routes send it
        assert {"summary", "description", "owner"} <= set(annotations), name
        assert "$labels.owner" in annotations["owner"], name


def test_rules_read_only_the_monitoring_gauges() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    referenced = {name for rule in rules() for name in _METRIC.findall(rule["expr"])}
    assert referenced <= set(GAUGES) | set(BAND_GAUGE) | recorded
    assert set(GAUGES) <= referenced, "every gauge has a rule"
    assert all(re.fullmatch(r"shipyard:[a-z_]+:[a-z0-9_]+", name) for name in recorded)


def test_the_series_are_what_the_server_exports(trained_project: Config) -> None:
    """Every series the rules read is on ``/metrics``, with the rules' labels, owner, team."""
    from shipyard.models.served import load_served_model
    from shipyard.registry import Tracking
    from shipyard.serving.app import create_app
    from shipyard.serving.metrics import ScorecardBounds, Teams

    run = {
        "model": "churn",
        "version": "1",
        "rows": 1000,
        "features": [{"feature": "plan", "method": "psi", "score": 0.3}],
        "prediction": {"score": 0.06, "bands": {"inspect": 0.03}},
        "estimated": {"roc_auc": {"value": 0.9}},
        "performance": {"metrics": {"roc_auc": 0.88}, "coverage": 0.5, "labelled": 500},
    }
    served = load_served_model(Tracking(trained_project).client, "churn", "1")
    app = create_app(served)
    metrics = app.state.metrics
    metrics.monitor = lambda: [run]
    metrics.teams = Teams(owner="ana", team="risk")
    metrics.bounds = ScorecardBounds(0.025, (("roc_auc", "min", 0.8),))
    rows = pd.read_csv(trained_project.root / "data" / "golden.csv").head(1)
    body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
    with in_process(app) as client:
        assert client.call("/v1/models/churn:predict", body.encode())[0] == 200
        text = client.call("/metrics")[2].decode()
    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    wanted = {**GAUGES, **BAND_GAUGE}
    assert {name: exported.get(name) for name in wanted} == {
        name: labels | {"owner", "team"} for name, labels in wanted.items()
    }


@pytest.mark.parametrize("level", LEVELS)
def test_feature_drift_alerts_use_the_shipped_bands(level: str) -> None:
    (rule,) = [r for r in alerts() if r["alert"] == f"ShipyardFeatureDrift{level.capitalize()}"]
    assert rule["labels"]["level"] == level
    for method, bands in (("psi", PSI_BANDS), ("kl", KL_BANDS)):
        found = re.search(rf'method="{method}"\}}\s*>=\s*([0-9.]+)', rule["expr"])
        assert found is not None and float(found.group(1)) == getattr(bands, level)


def test_prediction_drift_alerts_use_band_multiples() -> None:
    multiples = {
        rule["labels"]["level"]: float(rule["expr"].rsplit(">=", 1)[1])
        for rule in alerts()
        if rule["labels"]["signal"] == "prediction_drift"
    }
    assert multiples == {"inspect": 1.0, "retrain": 1.5, "pause": 3.0}


@needs_promtool
def test_promtool_passes_the_repository_rule_tests() -> None:
    """deploy/prometheus/alerts_test.yaml: latency, errors, scorecard, short history …"""
    assert promtool is not None, "promtool is missing: apt-get install prometheus (.ci/run does)"
    done = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = {
        case["alertname"]
        for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    }
    signals = {"latency", "errors", "degraded", "scorecard", "realized_performance"}
    assert signals <= {r["labels"]["signal"] for r in alerts() if r["alert"] in tested}


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    assert promtool is not None, "promtool is missing: apt-get install prometheus (.ci/run does)"
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules())} rules found" in done.stdout


def _summary(kind: str, labels: dict[str, str], value: str, level: str) -> str:
    where = f"{labels['model']} v{labels['version']}: "
    if kind == "feature":
        return (
            where + f"feature {labels['feature']} drift {value} ({labels['method']}) "
            f"reached the {level} band"
        )
    if kind == "prediction":
        return where + f"prediction drift at {value} × its band reached the {level} level"
    return (
        where
        + f"labelled {labels['metric']} degraded by {value} from its baseline, the {level} level"
    )


def _expected(rule_name: str, kind: str, labels: dict[str, str], value: str) -> dict[str, Any]:
    (rule,) = [r for r in alerts() if r["alert"] == rule_name]
    level = rule["labels"]["level"]
    return {
        "exp_labels": {**labels, **rule["labels"]},
        "exp_annotations": {
            "summary": _summary(kind, labels, value, level),
            "description": rule["annotations"]["description"],
            "owner": labels.get("owner", "model.owner in shipyard.yaml"),
        },
    }


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


@needs_promtool
def test_promtool_fires_each_level_at_its_threshold(tmp_path: Path) -> None:
    """Synthetic series through ``promtool test rules``: what fires, and when."""
    assert promtool is not None, "promtool is missing: apt-get install prometheus (.ci/run does)"
    plan = {"model": "churn", "version": "3", "feature": "plan", "method": "psi", "owner": "risk"}
    age = {"model": "churn", "version": "3", "feature": "age", "method": "kl"}
    income = {"model": "churn", "version": "3", "feature": "income", "method": "kl"}
    model = {"model": "churn", "version": "3"}
    auc = {**model, "metric": "roc_auc"}
    rmse = {**model, "metric": "rmse"}
    drift_test = {
        "interval": "1m",
        "input_series": [
            _series("shipyard_feature_drift_score", plan, "0.3x120"),  # PSI: retrain band
            _series("shipyard_feature_drift_score", age, "0.04x120"),  # KL: within bands
            _series("shipyard_feature_drift_score", income, "0.35x120"),  # KL: pause band
            _series("shipyard_prediction_drift_score", model, "0.06x120"),
            _series("shipyard_prediction_drift_band", model, "0.03x120"),  # 2 × the band
        ],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "ShipyardFeatureDriftRetrain", "exp_alerts": []},
            {
                "eval_time": "20m",
                "alertname": "ShipyardFeatureDriftPause",
                "exp_alerts": [
                    _expected("ShipyardFeatureDriftPause", "feature", income, "0.35"),
                ],
            },
            {
                "eval_time": "31m",
                "alertname": "ShipyardFeatureDriftRetrain",
                "exp_alerts": [
                    _expected("ShipyardFeatureDriftRetrain", "feature", plan, "0.3"),
                    _expected("ShipyardFeatureDriftRetrain", "feature", income, "0.35"),
                ],
            },
            {
                "eval_time": "61m",
                "alertname": "ShipyardFeatureDriftInspect",
                "exp_alerts": [
                    _expected("ShipyardFeatureDriftInspect", "feature", plan, "0.3"),
                    _expected("ShipyardFeatureDriftInspect", "feature", income, "0.35"),
                ],
            },
            {
                "eval_time": "61m",
                "alertname": "ShipyardPredictionDriftRetrain",
                "exp_alerts": [
                    _expected("ShipyardPredictionDriftRetrain", "prediction", model, "2"),
                ],
            },
            {"eval_time": "61m", "alertname": "ShipyardPredictionDriftPause", "exp_alerts": []},
        ],
    }
    performance_test = {
        "interval": "10m",
        "input_series": [
            # Eight days at 0.90, then 0.84: a drop of 0.06 from last week's median.
            _series("shipyard_realized_performance", auc, "0.9x1152 0.84x60"),
            _series("shipyard_realized_performance", rmse, "1x1152 1.15x60"),  # errors +15 %
            _series("shipyard_label_coverage", model, "0.01x160"),
        ],
        "alert_rule_test": [
            {
                "eval_time": "190h",
                "alertname": "ShipyardRealizedPerformanceInspect",
                "exp_alerts": [],
            },
            {
                "eval_time": "200h",
                "alertname": "ShipyardRealizedPerformanceRetrain",
                "exp_alerts": [
                    _expected("ShipyardRealizedPerformanceRetrain", "performance", auc, "0.06"),
                    _expected("ShipyardRealizedPerformanceRetrain", "performance", rmse, "0.15"),
                ],
            },
            {
                "eval_time": "200h",
                "alertname": "ShipyardRealizedPerformancePause",
                "exp_alerts": [],
            },
            {"eval_time": "23h", "alertname": "ShipyardLabelCoverageLow", "exp_alerts": []},
            {
                "eval_time": "25h",
                "alertname": "ShipyardLabelCoverageLow",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            **model,
                            "severity": "info",
                            "level": "inspect",
                            "signal": "label_coverage",
                        },
                        "exp_annotations": {
                            "summary": "churn v3: only 1% of predictions have a label",
                            "description": next(
                                r["annotations"]["description"]
                                for r in alerts()
                                if r["alert"] == "ShipyardLabelCoverageLow"
                            ),
                            "owner": "model.owner in shipyard.yaml",
                        },
                    }
                ],
            },
        ],
    }
    # Drift is evaluated every minute; a week of performance history every 10 minutes,
    # in step with its samples, so none goes stale between two evaluations.
    specs = []
    for name, interval, test in (
        ("drift", "1m", drift_test),
        ("performance", "10m", performance_test),
    ):
        spec = tmp_path / f"{name}_test.yaml"
        document = {"rule_files": [str(RULES)], "evaluation_interval": interval, "tests": [test]}
        spec.write_text(yaml.safe_dump(document, allow_unicode=True))
        specs.append(str(spec))

    done = subprocess.run(
        [promtool, "test", "rules", *specs], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stdout + done.stderr
