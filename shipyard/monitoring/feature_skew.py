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
    from shipyard.features.skew import SkewCheck
    from shipyard.monitoring.log_window import LogWindow
    from shipyard.monitoring.results import MonitorResult
    from shipyard.project import Project

__all__ = ["SKEW_PREFIX", "add_feature_skew", "distribution_skew", "skew_signals", "skew_summary"]

SKEW_PREFIX = "skew:"
"""Every skew signal's name starts with it: ``skew:value:…``, ``skew:freshness:…``."""


def add_feature_skew(project: Project, result: MonitorResult, current: LogWindow) -> bool:
    """Judge skew on the run's window and store it on ``result`` (``result.skew``).

    Marks the served columns' feature results as distribution skew. False (and nothing
    changed) when the version uses no features.
    """
    from shipyard.features.skew import ServedRows, check_skew

    rows = ServedRows(current.inputs, current.times, current.request_ids)
    check = check_skew(project, result.model, result.version, rows=rows)
    if check is None:
        return False
    served = _served_columns(check)
    for feature in result.features:
        if feature["feature"] in served:
            feature["skew"] = "distribution"
    result.skew = skew_summary(check, result.features)
    return True


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
    known = [level for level in levels if level != "unknown"]
    return {
        "features": check.features,
        "rows": check.rows,
        "value": value,
        "distribution": distribution,
        "freshness": freshness,
        "level": worst(known) if known else "unknown",
    }


def skew_signals(skew: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The run's skew signals (value per feature, freshness per view) from ``result.skew``.

    A verdict that could not be reached (``unknown``: too few values, a column missing)
    is a signal at ``ok`` without a score, which neither alerts nor resolves.
    """
    if not skew:
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
