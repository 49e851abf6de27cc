"""The dashboard's panels: one list that both the web UI and the Grafana export draw.

Each :class:`Panel` names what it shows once. The web UI computes the panel's series
from the prediction log and the control plane (``shipyard.ui`` looks up a series
function by :attr:`Panel.id`); the Grafana export turns the same panel into a Grafana
panel over the Prometheus metrics in :attr:`Panel.targets`. A test holds the two
together: every panel has a series function in the UI, and every PromQL query names
only metrics and labels that ``GET /metrics`` really exports. A panel with no targets
(a KPI read from the user's own tables) exists only in the web UI; the Grafana export
shows a text panel pointing there instead.

    for panel in panels_for("model"):
        print(panel.id, panel.title, [t.expr for t in panel.targets])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PANELS", "Kind", "Page", "Panel", "Target", "panel_named", "panels_for"]

Page = Literal["fleet", "model"]
Kind = Literal["timeseries", "heatmap", "stat", "table"]

# Grafana's variables: the dashboard's model selector and its rate window.
_M = 'model=~"$model"'
_RATE = "$__rate_interval"


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel, and the legend each of its series gets in Grafana."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One chart or figure, the same in the web UI and in Grafana.

    ``unit`` is Grafana's unit id (``s``, ``reqps``, ``percentunit``, ``currencyUSD``,
    ``none``); ``annotated`` panels show audited events (promotions, rollbacks, traffic
    changes) and alerts as annotations; ``by_arm`` panels split their series by route
    arm (champion / challenger / shadow).
    """

    id: str
    title: str
    page: Page
    kind: Kind
    unit: str
    description: str
    targets: tuple[Target, ...] = ()
    annotated: bool = True
    by_arm: bool = False


PANELS: tuple[Panel, ...] = (
    Panel(
        "throughput",
        "Throughput",
        "model",
        "timeseries",
        "reqps",
        "Answered prediction requests per second, by version and arm.",
        (
            Target(
                f'sum by (version, role) (rate(shipyard_requests_total{{{_M},status="200"}}'
                f"[{_RATE}]))",
                "{{version}} {{role}}",
            ),
        ),
        by_arm=True,
    ),
    Panel(
        "latency",
        "Latency p50 / p95 / p99",
        "model",
        "timeseries",
        "s",
        "Server-side time per answered request, by version.",
        tuple(
            Target(
                f"histogram_quantile({q}, sum by (le, version) "
                f"(rate(shipyard_request_seconds_bucket{{{_M}}}[{_RATE}])))",
                f"{{{{version}}}} p{round(q * 100)}",
            )
            for q in (0.5, 0.95, 0.99)
        ),
    ),
    Panel(
        "errors",
        "Error rate",
        "model",
        "timeseries",
        "percentunit",
        "Share of prediction requests answered with an error status, by version and arm.",
        (
            Target(
                f'sum by (version, role) (rate(shipyard_requests_total{{{_M},status!="200"}}'
                f"[{_RATE}])) / sum by (version, role) "
                f"(rate(shipyard_requests_total{{{_M}}}[{_RATE}]))",
                "{{version}} {{role}}",
            ),
        ),
        by_arm=True,
    ),
    Panel(
        "cost",
        "Compute cost per 1,000 predictions",
        "model",
        "timeseries",
        "currencyUSD",
        "Server CPU-seconds (and GPU time where priced) × the configured price, per 1,000 "
        "predictions, by version and arm.",
        (
            Target(
                f"1000 * sum by (version, role) (rate(shipyard_compute_cost_total{{{_M}}}"
                f"[{_RATE}])) / sum by (version, role) "
                f"(rate(shipyard_requests_total{{{_M}}}[{_RATE}]))",
                "{{version}} {{role}}",
            ),
        ),
        by_arm=True,
    ),
    Panel(
        "traffic",
        "Traffic shares",
        "model",
        "timeseries",
        "percentunit",
        "Share of live traffic per version and arm (shadow: the share copied).",
        (Target(f"shipyard_traffic_weight{{{_M}}}", "{{version}} {{role}}"),),
        by_arm=True,
    ),
    Panel(
        "feature_drift",
        "Feature drift",
        "model",
        "heatmap",
        "none",
        "Each monitor run's drift score per feature (heat: the score against its bands).",
        (Target(f"max by (feature) (shipyard_feature_drift_score{{{_M}}})", "{{feature}}"),),
    ),
    Panel(
        "prediction_drift",
        "Prediction drift against its band",
        "model",
        "timeseries",
        "none",
        "Drift of the model's outputs against its reference, with the model's band.",
        (
            Target(f"shipyard_prediction_drift_score{{{_M}}}", "{{version}} score"),
            Target(f"shipyard_prediction_drift_band{{{_M}}}", "{{version}} band"),
        ),
    ),
    Panel(
        "performance",
        "Realised and estimated performance",
        "model",
        "timeseries",
        "none",
        "Performance on the labelled predictions against the label-free estimate (CBPE), "
        "with the scorecard's bound.",
        (
            Target(f"shipyard_realized_performance{{{_M}}}", "{{version}} {{metric}} realised"),
            Target(f"shipyard_estimated_performance{{{_M}}}", "{{version}} {{metric}} estimated"),
            Target(f"shipyard_scorecard_bound{{{_M}}}", "{{metric}} {{bound}}"),
        ),
    ),
    Panel(
        "labels",
        "Label coverage",
        "model",
        "timeseries",
        "percentunit",
        "Share of predictions with a label in the latest monitor window.",
        (Target(f"shipyard_label_coverage{{{_M}}}", "{{version}}"),),
    ),
    Panel(
        "kpi",
        "Business KPIs",
        "model",
        "timeseries",
        "none",
        "Each KPI declared in shipyard.yaml (SQL over the team's own tables), next to model "
        "quality, per arm during a roll-out, with their correlation over time.",
        by_arm=True,
    ),
    Panel(
        "fleet_requests",
        "Requests per second",
        "fleet",
        "stat",
        "reqps",
        "Answered prediction requests per second, per model.",
        (
            Target(
                f'sum by (model) (rate(shipyard_requests_total{{{_M},status="200"}}[{_RATE}]))',
                "{{model}}",
            ),
        ),
        annotated=False,
    ),
    Panel(
        "fleet_latency",
        "p99 latency",
        "fleet",
        "stat",
        "s",
        "Server-side p99 per model.",
        (
            Target(
                "histogram_quantile(0.99, sum by (le, model) "
                f"(rate(shipyard_request_seconds_bucket{{{_M}}}[{_RATE}])))",
                "{{model}}",
            ),
        ),
        annotated=False,
    ),
    Panel(
        "fleet_errors",
        "Error rate",
        "fleet",
        "stat",
        "percentunit",
        "Share of prediction requests answered with an error status, per model.",
        (
            Target(
                f'sum by (model) (rate(shipyard_requests_total{{{_M},status!="200"}}[{_RATE}]))'
                f" / sum by (model) (rate(shipyard_requests_total{{{_M}}}[{_RATE}]))",
                "{{model}}",
            ),
        ),
        annotated=False,
    ),
    Panel(
        "fleet_cost",
        "Cost per 1,000 predictions",
        "fleet",
        "stat",
        "currencyUSD",
        "Compute cost per 1,000 predictions, per model.",
        (
            Target(
                f"1000 * sum by (model) (rate(shipyard_compute_cost_total{{{_M}}}[{_RATE}]))"
                f" / sum by (model) (rate(shipyard_requests_total{{{_M}}}[{_RATE}]))",
                "{{model}}",
            ),
        ),
        annotated=False,
    ),
    Panel(
        "fleet_degraded",
        "Degraded",
        "fleet",
        "stat",
        "none",
        "1 while some worker is degraded, by reason (readiness says why).",
        (Target("max by (reason) (shipyard_degraded)", "{{reason}}"),),
        annotated=False,
    ),
)
"""Every panel, in the order the pages show them."""


def panels_for(page: Page) -> tuple[Panel, ...]:
    """The panels of one page, in order."""
    return tuple(panel for panel in PANELS if panel.page == page)


def panel_named(panel_id: str) -> Panel:
    """The panel with this id (a KeyError naming the known ids otherwise)."""
    for panel in PANELS:
        if panel.id == panel_id:
            return panel
    raise KeyError(f"no panel {panel_id!r}; panels: {', '.join(p.id for p in PANELS)}")
