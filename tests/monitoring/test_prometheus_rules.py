"""deploy/prometheus/alerts.yaml: its structure, its numbers, and promtool's verdict.

The structural tests always run. ``promtool check rules`` and ``promtool test rules``
(synthetic series in, expected alerts out) run when promtool is on PATH: Debian's
``prometheus`` package installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.monitoring import KL_BANDS, PSI_BANDS
from shipyard.monitoring.alerting import LEVELS, SEVERITY

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"

# The monitoring gauges the issue names, each with the labels it carries.
GAUGES = {
    "shipyard_feature_drift_score": {"model", "version", "feature", "method"},
    "shipyard_prediction_drift_score": {"model", "version"},
    "shipyard_estimated_performance": {"model", "version", "metric"},
    "shipyard_realized_performance": {"model", "version", "metric"},
    "shipyard_label_coverage": {"model", "version"},
}
# Referenced by the prediction-drift rules: the per-model inspect
# band of the latest window, so that rules can compare the score with 1.5 × and 3 × it.
BAND_GAUGE = {"shipyard_prediction_drift_band": {"model", "version"}}

_DURATION = re.compile(r"^(\d+[smhdwy])+$")
_METRIC = re.compile(r"\b(shipyard[_:][A-Za-z0-9_:]*)")

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None,
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
        assert labels["level"] in LEVELS, name
        assert labels["severity"] == SEVERITY[labels["level"]], name  # as the routes send it
        assert labels["signal"], name
        assert {"summary", "description", "owner"} <= set(annotations), name
        assert "$labels.owner" in annotations["owner"], name


def test_rules_read_only_the_monitoring_gauges() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    referenced = {name for rule in rules() for name in _METRIC.findall(rule["expr"])}
    assert referenced <= set(GAUGES) | set(BAND_GAUGE) | recorded
    assert set(GAUGES) <= referenced, "every gauge has a rule"
    assert all(re.fullmatch(r"shipyard:[a-z_]+:[a-z_]+", name) for name in recorded)


def test_the_gauges_are_what_the_server_exports() -> None:
    """Every gauge the rules read is exported from a monitor run, with the rules' labels."""
    from shipyard.serving.metrics import ServerMetrics

    run = {
        "model": "churn",
        "version": "3",
        "features": [{"feature": "plan", "method": "psi", "score": 0.3}],
        "prediction": {"score": 0.06, "bands": {"inspect": 0.03}},
        "estimated": {"roc_auc": {"value": 0.9}},
        "performance": {"metrics": {"roc_auc": 0.88}, "coverage": 0.5},
    }
    metrics = ServerMetrics(None, list)  # type: ignore[arg-type]
    metrics.monitor = lambda: run
    metrics._monitored()
    exported = {
        family.name: {label for sample in family.samples for label in sample.labels}
        for family in metrics.registry.collect()
    }
    assert {name: exported.get(name) for name in {**GAUGES, **BAND_GAUGE}} == {
        **GAUGES,
        **BAND_GAUGE,
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
def test_promtool_checks_the_rules() -> None:
    assert promtool is not None
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
        where + f"labelled {labels['metric']} degraded by {value} from last week, the {level} level"
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
    assert promtool is not None
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
