"""Training-serving skew in the monitor run: value skew, distribution skew and freshness.

For a model version trained on feature views (its ``shipyard.features`` tag), a monitor
run adds three verdicts, each a :data:`~shipyard.levels.Level` from its bands:

- **value skew** (:mod:`shipyard.features.skew`): a sample of the window's requests
  recomputed offline as served, compared value by value; one signal per feature,
  ``skew:value:<view:feature>``, scored by its mismatch rate against
  ``features.skew.mismatch_bands``;
- **freshness**: the age of the served values against each view's ``freshness_sla``;
  one signal per view, ``skew:freshness:<view>``, scored by the share of stale values
  against ``features.skew.stale_bands``;
- **distribution skew**: the served feature columns against the training set's
  statistics. That is exactly the run's feature drift of those columns (the reference is
  the model's training snapshot), so it is not computed twice: those ``feature:<column>``
  signals are marked ``"skew": "distribution"`` and the verdict is their worst level.

The signals route like every other (alerts, the retrain request that starts a CT
cycle, the pause). A model without features gets none of this and pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from shipyard.levels import Level, worst

if TYPE_CHECKING:
    from shipyard.features.skew_check import SkewCheck
    from shipyard.monitoring.log_window import LogWindow
    from shipyard.monitoring.results import MonitorResult
    from shipyard.project import Project

__all__ = [
    "SKEW_PREFIX",
    "add_feature_skew",
    "distribution_skew",
    "skew_report",
    "skew_signals",
    "skew_summary",
]

SKEW_PREFIX = "skew:"
"""Every skew signal's name starts with it: ``skew:value:…``, ``skew:freshness:…``."""


def add_feature_skew(project: Project, result: MonitorResult, current: LogWindow) -> bool:
    """Judge skew on the run's window and store it on ``result`` (``result.skew``).

    Marks the served columns' feature results as distribution skew. False (and nothing
    changed) when the version uses no features.
    """
    from shipyard.errors import ShipyardError
    from shipyard.features.skew import ServedRows
    from shipyard.features.skew_check import check_skew

    rows = ServedRows(current.inputs, current.times, current.request_ids)
    try:
        check = check_skew(project, result.model, result.version, rows=rows)
    except ShipyardError as error:  # drift and performance must not go blind with it
        result.skew = {"level": "unknown", "error": error.message, "hint": error.hint}
        return True
    if check is None:
        return False
    served = _served_columns(check)
    for feature in result.features:
        if feature["feature"] in served:
            feature["skew"] = "distribution"
    result.skew = skew_summary(check, result.features)
    minimum = project.config.monitoring.min_rows
    if result.rows < minimum:  # the run judges no feature drift below it, nor this
        result.skew["distribution"].update(
            level="unknown",
            note=f"not judged: {result.rows} rows, fewer than monitoring.min_rows {minimum}",
        )
        result.skew["level"] = _worst_known([check.value.level, check.freshness.level])
    return True


def skew_report(
    project: Project, name: str, *, version: str | None = None, window: str | None = None
) -> dict[str, Any] | None:
    """The three skew verdicts of ``name``/``version`` (default: champion) over ``window``
    (default ``monitoring.window``), without storing a run or alerting; None when the
    version uses no features. Needs ``models:read``.

    Distribution skew is the drift of the served columns against the training reference,
    scored as the monitor scores them.
    """
    from shipyard.access import Scope
    from shipyard.errors import DataError
    from shipyard.features.skew import ServedRows
    from shipyard.features.skew_check import check_skew
    from shipyard.logs.root import project_log_root
    from shipyard.models.served import load_served_model
    from shipyard.monitoring.calibrated_bands import window_bands
    from shipyard.monitoring.engines import engine_feature_drift
    from shipyard.monitoring.log_window import WindowSpec, load_window
    from shipyard.monitoring.references import reference_set
    from shipyard.registry import get_version, parse_ref
    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version

    project.authorize(Scope.MODELS_READ, name)
    config, client = project.config, project.client
    settings = config.monitoring
    spec = WindowSpec.parse(window or settings.window)
    version = version or (  # the champion servers serve, else the newest (as monitor run)
        trusted_version(project.store, name, CHAMPION)
        or str(get_version(client, parse_ref(name)).version)
    )
    current = load_window(
        project_log_root(config), name, spec, version=version, include_shadow=True
    )
    if current.rows == 0:
        raise DataError(
            f"No predictions of {name}/{version} in the window ({spec.describe()}).",
            hint="Serve the model with its features and send traffic, or widen --window.",
        )
    rows = ServedRows(current.inputs, current.times, current.request_ids)
    check = check_skew(project, name, version, rows=rows)
    if check is None:
        return None
    served = sorted(_served_columns(check))
    reference = reference_set(
        config, client, load_served_model(client, name, version), digest=settings.reference
    ).reference
    columns = [c for c in served if c in reference.columns and c in current.inputs.columns]
    features: list[dict[str, Any]] = []
    if columns and current.rows >= settings.min_rows:
        bands = window_bands(config, reference, current.inputs)
        for item, _bands in engine_feature_drift(settings.engine, reference, current.inputs, bands):
            if item.feature in columns:
                features.append(
                    {
                        "feature": item.feature,
                        "method": item.method,
                        "score": item.score,
                        "level": item.band or ("inspect" if item.drifted else "ok"),
                        "skew": "distribution",
                    }
                )
    summary = skew_summary(check, features)
    summary.update(model=name, version=version, window=spec.describe())
    summary["freshness"]["store"] = _store_freshness(project, check)
    if not features:
        summary["distribution"]["note"] = (
            f"not judged: {current.rows} rows, fewer than monitoring.min_rows {settings.min_rows}"
            if columns
            else "no served column is in the training reference"
        )
    return summary


def _store_freshness(project: Project, check: SkewCheck) -> dict[str, Any]:
    """Per view, what the online store holds now: its last run and its newest row's age."""
    from shipyard.features.materialize import freshness
    from shipyard.features.repo import load_repo

    repo = load_repo(project.config)
    return {
        view.view: freshness(project, repo.views[view.view]).to_dict()
        for view in check.freshness.views
        if view.view in repo.views
    }


def _served_columns(check: SkewCheck) -> set[str]:
    return {item.column for item in check.value.features}


def distribution_skew(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The distribution-skew verdict: the worst drift level of the served columns."""
    marked = [f for f in features if f.get("skew") == "distribution"]
    levels: list[Level] = [f["level"] for f in marked]
    return {
        "level": worst(levels) if marked else "unknown",
        "features": [
            {
                "feature": f["feature"],
                "method": f["method"],
                "score": f["score"],
                "level": f["level"],
            }
            for f in marked
        ],
        "note": "the run's feature drift of the served columns against the training snapshot",
    }


def skew_summary(check: SkewCheck, features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The three verdicts as JSON: value, distribution, freshness, and the worst level."""
    distribution = distribution_skew(features)
    value, freshness = check.value.to_dict(), check.freshness.to_dict()
    value["summary"] = check.value.describe()
    levels: list[Level] = [check.value.level, distribution["level"], check.freshness.level]
    return {
        "features": check.features,
        "rows": check.rows,
        "value": value,
        "distribution": distribution,
        "freshness": freshness,
        "level": _worst_known(levels),
    }


def _worst_known(levels: list[Level]) -> Level:
    known = [level for level in levels if level != "unknown"]
    return worst(known) if known else "unknown"


def skew_signals(skew: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The run's skew signals (value per feature, freshness per view) from ``result.skew``.

    A verdict that could not be reached (``unknown``: too few values, a column missing)
    is a signal at ``ok`` without a score, which neither alerts nor resolves.
    """
    if not skew or "value" not in skew:
        return []
    value, freshness = skew["value"], skew["freshness"]
    bands = dict(zip(("inspect", "retrain", "pause"), value["bands"], strict=True))
    signals = [
        _signal(
            f"{SKEW_PREFIX}value:{item['feature']}",
            "value_mismatch",
            item["rate"],
            item["level"],
            bands,
            compared=item["compared"],
            mismatched=item["mismatched"],
            examples=item["examples"],
            note=item.get("note"),
        )
        for item in value["features"]
    ]
    stale_bands = dict(zip(("inspect", "retrain", "pause"), freshness["bands"], strict=True))
    signals.extend(
        _signal(
            f"{SKEW_PREFIX}freshness:{view['view']}",
            "stale_share",
            view["stale_share"],
            view["level"],
            stale_bands if view["sla_seconds"] is not None else None,
            sla_seconds=view["sla_seconds"],
            p50_age_seconds=view["p50_age_seconds"],
            p95_age_seconds=view["p95_age_seconds"],
            note=view.get("note"),
        )
        for view in freshness["views"]
    )
    return signals


def _signal(
    name: str,
    method: str,
    score: float | None,
    level: Level,
    bands: dict[str, float] | None,
    **details: Any,
) -> dict[str, Any]:
    judged = level != "unknown"
    return {
        "name": name,
        "method": method,
        "score": score if judged else None,
        "level": level if judged else "ok",
        "bands": bands,
        "skew": name.split(":", 2)[1],
        **{key: item for key, item in details.items() if item is not None},
    }
