"""Grafana dashboards made from the web dashboard's panel list (``shipyard grafana export``).

The web UI and Grafana draw the same :data:`~shipyard.ui.panels.PANELS`: each panel
becomes one Grafana panel over the Prometheus queries in its targets, on the dashboard
of its page (``fleet`` or ``model``). Nothing here lists the panels a second time; what
is added is only Grafana's frame around them:

- a ``datasource`` variable (any Prometheus that scrapes the servers' ``/metrics``) and a
  ``model`` variable (``label_values(shipyard_requests_total, model)``) that the panels'
  ``$model`` matchers read;
- rows (serving, drift and quality, business KPIs), laid out on Grafana's 24-column grid;
- units from each panel, money in the project's ``cost.currency``;
- annotations: firing alerts (``ALERTS``) and traffic changes (a new champion,
  challenger or shadow, a share moved, a rollback), drawn on the panels marked
  ``annotated``, with the route arm (champion / challenger / shadow) as a tag.

A panel without targets (a KPI computed from the team's own tables) cannot be drawn
from Prometheus: it becomes a text panel that links to the model's page in the web UI.

    for name, dashboard in grafana_dashboards(config).items():
        Path(f"shipyard-{name}.json").write_text(json.dumps(dashboard, indent=2))
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.ui.panels import PANELS, Page, Panel

if TYPE_CHECKING:
    from shipyard.config import Config

__all__ = [
    "ANNOTATION_QUERIES",
    "DATASOURCE",
    "MODEL_QUERY",
    "SCHEMA_VERSION",
    "AnnotationQuery",
    "dashboard_file",
    "grafana_dashboards",
    "money_unit",
]

SCHEMA_VERSION = 39  # Grafana 10.x; newer versions migrate it on import
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
MODEL_QUERY = "label_values(shipyard_requests_total, model)"
_GRID = 24  # Grafana's grid is 24 columns wide
_TITLES: dict[Page, str] = {"fleet": "Shipyard fleet", "model": "Shipyard model"}

# Grafana's own currency units (packages/grafana-data valueFormats, "Currency"); any other
# ISO 4217 code is written after the number.
# fmt: off
_CURRENCIES = frozenset((
    "USD", "GBP", "EUR", "JPY", "RUB", "UAH", "BRL", "DKK", "ISK",
    "NOK", "SEK", "CZK", "CHF", "PLN", "ZAR", "INR", "KRW",
))
# fmt: on

# Series the monitor exports from its latest run: panels reading only these form the
# "Drift and quality" row; the rest read the live request counters.
_MONITOR_SERIES = re.compile(
    r"\bshipyard_(feature_drift|prediction_drift|estimated_performance|"
    r"realized_performance|label_coverage|scorecard)"
)
# Width and height on the grid, per Grafana panel type.
_SIZES: dict[str, tuple[int, int]] = {
    "timeseries": (12, 8),
    "heatmap": (12, 8),
    "stat": (8, 6),
    "table": (24, 8),
    "text": (24, 4),
}
# How each arm's line is drawn where a panel splits by arm: the challenger dashed, the
# shadow dotted, the champion solid (as on the web UI's charts).
_ARM_STYLES: dict[str, dict[str, Any]] = {
    "challenger": {"fill": "dash", "dash": [10, 10]},
    "shadow": {"fill": "dot", "dash": [0, 10]},
}


@dataclass(frozen=True)
class AnnotationQuery:
    """One Prometheus annotation query of both dashboards: a series that marks events."""

    name: str
    expr: str
    title: str
    text: str
    tags: tuple[str, ...]
    color: str


ANNOTATION_QUERIES: tuple[AnnotationQuery, ...] = (
    AnnotationQuery(
        "Alerts",
        'ALERTS{alertstate="firing", model=~"$model"}',
        "{{alertname}}",
        "{{model}} {{version}}: {{signal}} {{severity}}",
        ("severity", "signal", "version"),
        "red",
    ),
    AnnotationQuery(
        "Traffic changes",
        # A share that moved, or a version that started taking traffic in some arm (a
        # promotion, a new challenger or shadow, a rollback to the previous champion).
        'changes(shipyard_traffic_weight{model=~"$model"}[2m]) > 0'
        ' or (shipyard_traffic_weight{model=~"$model"}'
        ' unless shipyard_traffic_weight{model=~"$model"} offset 2m)',
        "traffic: {{version}} {{role}}",
        "{{model}} version {{version}} as {{role}}",
        ("role", "version"),
        "blue",
    ),
)
"""The events drawn on the annotated panels; their series come from Prometheus's
``ALERTS`` (the rules in deploy/prometheus/alerts.yaml) and the servers' traffic gauge."""


def money_unit(currency: str) -> str:
    """Grafana's unit for amounts in ``currency`` (``currencyEUR``, or ``suffix: CAD``)."""
    return f"currency{currency}" if currency in _CURRENCIES else f"suffix: {currency}"


def dashboard_file(page: Page) -> str:
    """The file name ``shipyard grafana export`` writes the page's dashboard to."""
    return f"shipyard-{page}.json"


def grafana_dashboards(config: Config) -> dict[Page, dict[str, Any]]:
    """One Grafana dashboard per page of the web UI (``fleet``, ``model``), as JSON data."""
    return {page: _dashboard(page, config) for page in ("fleet", "model")}


def _dashboard(page: Page, config: Config) -> dict[str, Any]:
    web = f"http://{config.ui.host}:{config.ui.port}"
    panels = [p for p in PANELS if p.page == page]
    laid_out = _layout(panels, config.cost.currency, web)
    annotated = [item["id"] for item, panel in laid_out if panel is not None and panel.annotated]
    other: Page = "model" if page == "fleet" else "fleet"
    return {
        "uid": f"shipyard-{page}",
        "title": _TITLES[page],
        "description": f"The {page} page of Shipyard's web dashboard, over Prometheus.",
        "tags": ["shipyard"],
        "editable": True,
        "graphTooltip": 1,  # a shared crosshair
        "timezone": "utc",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": f"now-{config.ui.default_range}", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "type": "dashboards",
                "title": _TITLES[other],
                "tags": ["shipyard"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "dashboard",
                "tooltip": "",
                "url": "",
            },
            {
                "type": "link",
                "title": "Web dashboard",
                "url": web + ("/models/${model}" if page == "model" else "/"),
                "tags": [],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": False,
                "targetBlank": True,
                "icon": "external link",
                "tooltip": "Shipyard's own dashboard (shipyard ui): KPIs, roll-outs, audit",
            },
        ],
        "templating": {"list": [_datasource_variable(), _model_variable(page)]},
        "annotations": {"list": [_builtin_annotations(), *_annotations(annotated)]},
        "panels": [item for item, _ in laid_out],
    }


def _section(panel: Panel) -> str:
    if not panel.targets:
        return "Business KPIs"
    if all(_MONITOR_SERIES.search(target.expr) for target in panel.targets):
        return "Drift and quality"
    return "Serving"


def _layout(
    panels: Iterable[Panel], currency: str, web: str
) -> list[tuple[dict[str, Any], Panel | None]]:
    """Rows in order of their first panel, each panel flowed left to right on the grid."""
    sections: dict[str, list[Panel]] = {}
    for panel in panels:
        sections.setdefault(_section(panel), []).append(panel)
    laid_out: list[tuple[dict[str, Any], Panel | None]] = []
    y = 0
    for title, members in sections.items():
        laid_out.append((_row(len(laid_out) + 1, title, y), None))
        y += 1
        x = line = 0
        for panel in members:
            kind = panel.kind if panel.targets else "text"
            width, height = _SIZES[kind]
            if x + width > _GRID:
                x, y, line = 0, y + line, 0
            grid = {"x": x, "y": y, "w": width, "h": height}
            item = _panel(panel, len(laid_out) + 1, grid, currency, web)
            laid_out.append((item, panel))
            x, line = x + width, max(line, height)
        y += line
    return laid_out


def _row(panel_id: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": _GRID, "h": 1},
        "panels": [],
    }


def _panel(
    panel: Panel, panel_id: int, grid: dict[str, int], currency: str, web: str
) -> dict[str, Any]:
    common = {
        "id": panel_id,
        "title": panel.title,
        "description": panel.description,
        "gridPos": grid,
    }
    if not panel.targets:
        return {**common, "type": "text", "options": _text(panel, web)}
    unit = money_unit(currency) if panel.unit.startswith("currency") else panel.unit
    table = panel.kind == "table"
    targets = [
        {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": target.expr,
            "legendFormat": target.legend or "__auto",
            "format": "table" if table else "time_series",
            "range": not table,
            "instant": table,
        }
        for index, target in enumerate(panel.targets)
    ]
    overrides = _arm_overrides() if panel.by_arm and panel.kind == "timeseries" else []
    return {
        **common,
        "type": panel.kind,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": _defaults(panel, unit), "overrides": overrides},
        "options": _options(panel),
    }


def _defaults(panel: Panel, unit: str) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 0,
            "showPoints": "never",
            "spanNulls": False,
        }
        defaults["min"] = 0
    elif panel.kind == "stat":
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
        defaults["color"] = {"mode": "thresholds"}
    return defaults


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "timeseries":
        return {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        }
    if panel.kind == "heatmap":
        # Each series (one per feature) is one row of the heatmap, named by its legend:
        # Grafana draws non-numeric bucket names as an ordinal axis.
        return {
            "calculate": False,
            "rowsFrame": {"layout": "auto"},
            "yAxis": {"axisPlacement": "left", "reverse": False},
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5},
            "cellValues": {"unit": panel.unit},
            "showValue": "never",
            "tooltip": {"show": True, "yHistogram": False},
            "legend": {"show": True},
        }
    if panel.kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "auto",
            "textMode": "value_and_name",
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
        }
    return {"showHeader": True, "cellHeight": "sm"}


def _arm_overrides() -> list[dict[str, Any]]:
    """Series whose name ends with an arm (the panels' legends end with ``{{role}}``)."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": f"/ {arm}$/"},
            "properties": [{"id": "custom.lineStyle", "value": style}],
        }
        for arm, style in _ARM_STYLES.items()
    ]


def _text(panel: Panel, web: str) -> dict[str, Any]:
    page = f"{web}/models/${{model}}"
    content = (
        f"**{panel.title}** come from the team's own tables, not from Prometheus: "
        f"{panel.description}\n\n"
        f"See them on the model's page of the web dashboard (`shipyard ui`): [{page}]({page})"
    )
    return {"mode": "markdown", "content": content}


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def _model_variable(page: Page) -> dict[str, Any]:
    fleet = page == "fleet"  # the fleet shows every model; a model page one at a time
    return {
        "name": "model",
        "label": "Model",
        "type": "query",
        "datasource": DATASOURCE,
        "definition": MODEL_QUERY,
        "query": {"query": MODEL_QUERY, "refId": "ModelVariable", "qryType": 1},
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if fleet else {},
        "hide": 0,
        "includeAll": fleet,
        "allValue": ".*" if fleet else None,
        "multi": fleet,
        "options": [],
        "refresh": 2,  # on a time-range change: a new model appears without a reload
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }


def _builtin_annotations() -> dict[str, Any]:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def _annotations(panel_ids: list[int]) -> list[dict[str, Any]]:
    # Only the panels marked ``annotated`` show them (a stat shows none anyway).
    shown = {"filter": {"exclude": False, "ids": panel_ids}} if panel_ids else {}
    return [
        {
            "name": query.name,
            "datasource": DATASOURCE,
            "enable": True,
            "hide": False,
            "iconColor": query.color,
            "expr": query.expr,
            "step": "60s",
            "titleFormat": query.title,
            "textFormat": query.text,
            "tagKeys": ",".join(query.tags),
            "useValueForTime": False,
            **shown,
        }
        for query in ANNOTATION_QUERIES
    ]
