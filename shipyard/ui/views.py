"""What the dashboard's pages show: typed records the data layer fills and templates render.

The data layer (:mod:`shipyard.ui.data`) reads the prediction log, the control plane
and the registry and returns these; the pages (:mod:`shipyard.ui.app`) only render
them. Every record turns into JSON with ``to_dict`` (the charts' data is embedded in
the page as JSON and drawn by plotly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shipyard.jsonable import Record
from shipyard.ui.panels import Panel

__all__ = [
    "Annotation",
    "AuditView",
    "Chart",
    "FleetRow",
    "Heatmap",
    "ModelView",
    "Series",
    "VersionView",
]


@dataclass(frozen=True)
class Series(Record):
    """One line of a chart: ``x`` are ISO-8601 UTC times, ``y`` the values (None: a gap).

    ``arm`` is champion, challenger or shadow where the panel splits by arm; ``dash``
    draws it dashed (a band, a bound, an estimate); a ``hidden`` series is listed in the
    legend and drawn when clicked there (plotly's ``legendonly``).
    """

    name: str
    x: list[str]
    y: list[float | None]
    arm: str | None = None
    dash: bool = False
    hidden: bool = False


@dataclass(frozen=True)
class Heatmap(Record):
    """A grid of values: ``z[i][j]`` is row ``y[i]`` (a feature) at column ``x[j]`` (a time)."""

    x: list[str]
    y: list[str]
    z: list[list[float | None]]


@dataclass(frozen=True)
class Annotation(Record):
    """An audited event or alert drawn on a chart at ``time``."""

    time: str
    kind: str
    text: str
    arm: str | None = None


@dataclass(frozen=True)
class Chart(Record):
    """One panel's data over the chosen range; ``error`` is shown on the panel instead."""

    panel: Panel
    series: list[Series] = field(default_factory=list)
    heatmap: Heatmap | None = None
    annotations: list[Annotation] = field(default_factory=list)
    error: str | None = None
    note: str | None = None  # e.g. a KPI's correlation with quality

    @property
    def points(self) -> int:
        """How many values the chart holds (0: an empty chart)."""
        cells = sum(len(row) for row in self.heatmap.z) if self.heatmap else 0
        return sum(len(s.y) for s in self.series) + cells


@dataclass(frozen=True)
class FleetRow(Record):
    """One model on the fleet page; ``attention`` orders the page (higher first)."""

    model: str
    champion: str | None
    challengers: dict[str, float]  # version → traffic share
    shadow: str | None
    requests_per_second: float | None
    latency_ms: dict[str, float | None]  # p50 / p95 / p99
    error_rate: float | None
    cost_per_1000: float | None
    drift_level: str  # a Level's value: ok / inspect / retrain / pause / unknown
    realized: dict[str, float]
    estimated: dict[str, float]
    label_coverage: float | None
    label_lag_seconds: float | None
    open_alerts: int
    attention: float
    reasons: list[str] = field(default_factory=list)  # why it needs attention


@dataclass(frozen=True)
class ModelView(Record):
    """The model page: charts over the range, roll-outs, CT cycles, alerts and events."""

    model: str
    since: datetime
    until: datetime
    champion: str | None
    versions: list[str]
    charts: list[Chart]
    rollouts: list[dict[str, Any]]
    cycles: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    events: list[dict[str, Any]]
    rollout_active: bool = False


@dataclass(frozen=True)
class VersionView(Record):
    """The version page: lineage, scorecard against the champion's, card, serving history."""

    model: str
    version: str
    lineage: dict[str, Any]
    scorecard: dict[str, Any] | None
    champion_scorecard: dict[str, Any] | None
    card: dict[str, Any]  # the signed card's status (signed / verified / unsigned, why)
    serving: list[dict[str, Any]]  # alias moves and traffic changes that involved it
    training_cost: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditView(Record):
    """The audit page: matching events, the log's verify status and the latest checkpoint."""

    events: list[dict[str, Any]]
    total: int
    verified: dict[str, Any]  # ok, size, root, problems
    checkpoint: dict[str, Any] | None
    query: str = ""
