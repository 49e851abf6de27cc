"""``shipyard monitor run``: one window of live predictions against the training reference.

A run reads the window from the prediction log, scores every feature against its bands
and the model's outputs against its reference predictions (with the label-free estimate
beside them). Performance is measured on a window of its own, chosen by label arrival
(``monitoring.performance_window``, :mod:`~shipyard.monitoring.label_window`), so labels
that arrive after their predictions left the feature window still count. Every run says
how many labels there are and how late they come; with fewer than
``monitoring.min_labelled`` the ``performance:unknown`` signal is raised, with when
enough labels are expected. Every signal gets a level (ok, inspect, retrain, pause); the
run is stored in the control plane with its HTML report, and the signals go to the
alert routes.

A window whose log lost rows says so (``log_coverage``). Below
``monitoring.min_log_coverage`` the run is stored with every signal at ``unknown``
and routes no alert: neither an action nor a resolution rests on an incomplete window.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.access import Scope
from shipyard.errors import DataError
from shipyard.jsonable import plain
from shipyard.levels import worst
from shipyard.logs.root import project_log_root
from shipyard.monitoring.calibrated_bands import window_bands
from shipyard.monitoring.dataset_drift import dataset_verdict
from shipyard.monitoring.engines import engine_feature_drift
from shipyard.monitoring.feature_skew import add_feature_skew, skew_signals
from shipyard.monitoring.label_window import LabelWindowSpec, load_label_window
from shipyard.monitoring.log_window import LogWindow, WindowSpec, load_window
from shipyard.monitoring.references import ReferenceSet, reference_set
from shipyard.monitoring.results import Bands, DriftResult, MonitorResult
from shipyard.monitoring.run_outputs import score_outputs
from shipyard.store import EventKind, MonitorRunRow
from shipyard.store.monitor_runs import monitor_history, save_monitor_run

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shipyard.config import Config
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "MonitorResult",
    "champion_or_newest",
    "run_monitor",
]

Step = Callable[[str], None]


def run_monitor(
    project: Project,
    name: str,
    *,
    version: str | None = None,
    window: str | None = None,
    performance_window: str | None = None,
    alerts: bool = True,
    report: bool = True,
    step: Step = lambda _text: None,
) -> MonitorResult:
    """Monitor ``name`` (its champion unless ``version`` is given) over ``window``, and
    its performance over ``performance_window`` (default: the configured ones).

    Needs the ``monitor:run`` scope on the model (a run is stored, and may alert).
    """
    project.authorize(Scope.MONITOR_RUN, name)
    from shipyard.models.served import load_served_model

    config, store, client = project.config, project.store, project.client
    settings = config.monitoring
    spec = WindowSpec.parse(window or settings.window)
    labelled_spec = LabelWindowSpec.parse(performance_window or settings.performance_window)
    version = version or champion_or_newest(store, client, name)
    step(f"Loading {name}/{version} and its reference")
    model = load_served_model(client, name, version)
    reference = reference_set(config, client, model, digest=settings.reference)
    step(f"Reading the window ({spec.describe()}) from the prediction log")
    current = load_window(
        project_log_root(config),
        name,
        spec,
        version=version,
        include_shadow=settings.include_shadow,
    )
    if current.rows == 0:
        raise DataError(
            f"No predictions of {name}/{version} in the window ({spec.describe()}).",
            hint="Serve the model (`shipyard serve`) and send traffic, or widen --window.",
        )
    step(f"Reading the performance window ({labelled_spec.describe()}) from the label log")
    labels = load_label_window(
        project_log_root(config),
        name,
        labelled_spec,
        version=version,
        include_shadow=settings.include_shadow,
    )
    step(f"Scoring {len(reference.reference.columns)} features on {current.rows} predictions")
    drift = engine_feature_drift(
        settings.engine,
        reference.reference,
        current.inputs,
        window_bands(config, reference.reference, current.inputs),
    )
    result = MonitorResult(
        model=name,
        version=version,
        window=spec.describe(),
        rows=current.rows,
        created_at=datetime.now(UTC),
        features=[_feature(item, bands) for item, bands in drift],
    )
    if current.rows >= settings.min_rows:  # below it no feature is judged, nor the dataset
        verdict = dataset_verdict((item for item, _ in drift), settings.dataset_drift)
        result.dataset = verdict.to_dict()
    if current.coverage is not None:
        minimum = settings.min_log_coverage
        result.log_coverage = {
            **current.coverage.to_dict(),
            "minimum": minimum,
            "enough": current.coverage.enough(minimum),
        }
    step("Scoring predictions and performance")
    score_outputs(result, model, reference, current, labels, config)
    if add_feature_skew(project, result, current) and result.skew is not None:
        step(f"Training-serving skew of the served features: {result.skew['level']}")
    result.signals = [*_signals(result, config), *skew_signals(result.skew)]
    result.level = worst(s["level"] for s in result.signals)
    complete = _complete_enough(result)
    if not complete:
        result.level = "unknown"
        if current.coverage is not None:
            step(f"The window is incomplete, so nothing acts on it: {current.coverage.describe()}")
    if report:
        step("Writing the report")
        history = [*monitor_history(store, name), (result.created_at, _scaled(result))]
        result.report_path = _write_report(config, result, reference, current, history)
    _save(store, result)
    if alerts and not complete:
        coverage = result.log_coverage or {}
        result.alerts = {
            "held": f"the window's log coverage {coverage.get('ratio', 0):.1%} is below "
            f"monitoring.min_log_coverage {coverage.get('minimum', 1):.1%}: no alert is "
            "opened or resolved on it",
        }
    elif alerts:
        step("Routing alerts")
        result.alerts = _route_alerts(config, store, result)
    ran: dict[str, Any] = {"window": result.window, "rows": result.rows, "level": result.level}
    if result.log_coverage is not None and result.log_coverage["lost"]:
        ran["log_coverage"] = result.log_coverage
    store.record(EventKind.MONITOR_RAN, f"model:{name}/{version}", ran)
    return result


def _complete_enough(result: MonitorResult) -> bool:
    """Whether the window's log coverage lets the run act (unknown coverage: it does)."""
    coverage = result.log_coverage
    if coverage is None or coverage["enough"]:
        return True
    for signal in result.signals:  # the numbers stay in the report; nothing acts on them
        signal["level"] = "unknown"
        signal["held"] = "incomplete log"
    return False


def champion_or_newest(store: Store, client: MlflowClient, name: str) -> str:
    """The champion Shipyard recorded (what servers serve), else the newest version."""
    from shipyard.registry import get_version, parse_ref
    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version

    return trusted_version(store, name, CHAMPION) or str(
        get_version(client, parse_ref(name)).version
    )


def _feature(item: DriftResult, bands: Bands | None) -> dict[str, Any]:
    return {
        "bands": None if bands is None else asdict(bands),
        "feature": item.feature,
        "method": item.method,
        "kind": item.kind,
        "score": item.score,
        "p_value": item.p_value,
        "level": item.band or ("inspect" if item.drifted else "ok"),
        "drifted": item.drifted,
        "n_reference": item.n_reference,
        "n_current": item.n_current,
        "current_nan": item.current_nan,
        "unseen_categories": item.unseen_categories,
        "note": item.note,
    }


def _signals(result: MonitorResult, config: Config) -> list[dict[str, Any]]:
    """The run's signals; too small a window neither alerts nor resolves.

    Performance is never silently ok: below ``min_labelled`` labelled predictions the
    ``performance:unknown`` signal is at ``performance_unknown_level`` and no metric
    signal is given; with enough it is ok (resolving its alert), and each metric is a
    signal of its own, ok unless it breaches.
    """
    settings = config.monitoring
    enough_rows = result.rows >= settings.min_rows
    signals = [
        {
            "name": f"feature:{f['feature']}",
            "method": f["method"],
            "score": f["score"] if enough_rows else None,
            "level": f["level"] if enough_rows else "ok",
            "bands": f.get("bands"),
            **({"skew": f["skew"]} if f.get("skew") else {}),
        }
        for f in result.features
    ]
    if result.prediction is not None:
        signals.append({"name": "prediction", **result.prediction})
    performance = result.performance or {}
    labelled = int(performance.get("labelled") or 0)
    enough = labelled >= settings.min_labelled
    signals.append(
        {
            "name": "performance:unknown",
            "method": "labels",
            "score": labelled,
            "level": "ok" if enough else settings.performance_unknown_level,
            "bands": None,
            "expected": performance.get("expected"),
        }
    )
    if enough:
        breaches = performance.get("breaches", [])
        breached = {b["name"] for b in breaches}
        signals.extend(breaches)
        signals.extend(
            {
                "name": f"performance:{metric}",
                "method": "scorecard",
                "score": value,
                "level": "ok",
                "bands": None,
            }
            for metric, value in (performance.get("metrics") or {}).items()
            if f"performance:{metric}" not in breached and value is not None
        )
    return signals


def _scaled(result: MonitorResult) -> dict[str, float]:
    scaled: dict[str, float] = {}
    for feature in result.features:
        score = feature["score"]
        if score is None or not np.isfinite(score):
            continue
        retrain = (feature.get("bands") or {}).get("retrain")
        scaled[feature["feature"]] = float(score) / retrain if retrain else float(score)
    return scaled


def _write_report(
    config: Config,
    result: MonitorResult,
    reference: ReferenceSet,
    current: LogWindow,
    history: list[tuple[datetime, dict[str, float]]],
) -> str:
    """Write the HTML report where the project's reports go; its path or URL.

    ``evaluation.reports`` (``.shipyard/reports``), or ``<artifact_root>/reports`` in a
    bucket, so a monitor run on any host leaves its report where every host can read it.
    """
    from shipyard.evaluation.evaluate import reports_location
    from shipyard.monitoring.report import write_monitor_report

    stamp = result.created_at.strftime("%Y%m%dT%H%M%S")
    name = f"monitor/{result.model}/{result.version}-{stamp}.html"
    where = reports_location(config)
    minimum = config.monitoring.min_rows
    if where.is_local:
        path = where.local_path() / name
        write_monitor_report(
            path, result, reference.frame, current.inputs, history, min_rows=minimum
        )
        return str(path)
    with tempfile.TemporaryDirectory(prefix="shipyard-report-") as folder:
        local = write_monitor_report(
            Path(folder) / "report.html",
            result,
            reference.frame,
            current.inputs,
            history,
            min_rows=minimum,
        )
        return where.write_bytes(name, local.read_bytes())


def _save(store: Store, result: MonitorResult) -> None:
    data = result.to_dict()
    data["scaled"] = _scaled(result)
    save_monitor_run(
        store,
        MonitorRunRow(
            model=result.model,
            version=result.version,
            window_spec=result.window,
            rows=result.rows,
            level=result.level,
            result=plain(data),  # strict JSON for the database: NaN and ±inf as null
            report_path=result.report_path,
            created_at=result.created_at,
        ),
    )


# What a skew signal's alert carries besides the score (see monitoring.feature_skew).
_SKEW_EVIDENCE = (
    "skew",
    "compared",
    "mismatched",
    "examples",
    "sla_seconds",
    "p50_age_seconds",
    "p95_age_seconds",
)


def _route_alerts(config: Config, store: Store, result: MonitorResult) -> dict[str, Any]:
    """Open, escalate or resolve the alert of every signal; say what happened."""
    from shipyard.monitoring.alerting import Alerter, Signal

    signals = [
        Signal(
            model=result.model,
            version=result.version,
            name=signal["name"],
            level=None if signal["level"] == "ok" else signal["level"],
            score=signal.get("score"),
            bands=Bands(**signal["bands"]) if signal.get("bands") else None,
            evidence={
                "window": result.window,
                "rows": result.rows,
                "method": signal.get("method"),
                "report": result.report_path,
                "log_coverage": result.log_coverage,
                **({"expected": signal["expected"]} if signal.get("expected") else {}),
                **{key: signal[key] for key in _SKEW_EVIDENCE if key in signal},
            },
        )
        for signal in result.signals
    ]
    outcome = Alerter(config, store).process(signals)
    return {
        "opened": [a.signal.name for a in outcome.opened],
        "escalated": [a.signal.name for a in outcome.escalated],
        "resolved": [a.signal.name for a in outcome.resolved],
        "retrain_requested": bool(outcome.retrain_requested),
        "paused": bool(outcome.paused),
        "held": [s.name for s in outcome.held],
        "failed_deliveries": [d.route for d in outcome.failed],
    }
