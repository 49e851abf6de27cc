"""The ``monitoring`` section: windows, threshold bands, alert routes and the pause action."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shipyard.config._section import Section
from shipyard.levels import AlertLevel

__all__ = ["AlertRoute", "BandSettings", "MonitoringSettings"]


class BandSettings(Section):
    """Inspect / retrain / pause levels of one signal (a score at or above a level breaches it)."""

    inspect: float = Field(ge=0, description="Level that asks a person to look.")
    retrain: float = Field(ge=0, description="Level that requests a retrain.")
    pause: float = Field(ge=0, description="Level that triggers the pause action.")
    method: str | None = Field(
        None, description="Drift method for this feature (psi, kl, js, wasserstein, ks, …)."
    )


class AlertRoute(Section):
    """Where alerts go: a JSON webhook, a Slack incoming webhook, or PagerDuty Events v2."""

    kind: Literal["webhook", "slack", "pagerduty"] = Field(description="Payload format.")
    url: str = Field(
        description="Endpoint; for PagerDuty usually https://events.pagerduty.com/v2/enqueue."
    )
    routing_key: str | None = Field(
        None,
        description="PagerDuty integration key (or ${ENV_VAR} to read it from the environment).",
    )
    min_level: AlertLevel = Field("inspect", description="Lowest level this route receives.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. an Authorization token."
    )


class MonitoringSettings(Section):
    """Drift and performance monitoring, threshold bands, and where alerts go."""

    window: str = Field(
        "last:5000",
        description="Default window: last:N predictions, since:6h (a duration back from now), "
        "or range:START/END (ISO times).",
    )
    reference: str | None = Field(
        None, description="Reference snapshot digest; default: the version's training snapshot."
    )
    include_shadow: bool = Field(False, description="Count shadow predictions in the window.")
    min_rows: int = Field(
        200,
        ge=1,
        description="Fewest predictions in the window before feature drift may alert "
        "(small samples inflate PSI and KL).",
    )
    min_labelled: int = Field(
        50, ge=1, description="Fewest labelled predictions before performance may alert."
    )
    min_log_coverage: float = Field(
        0.99,
        ge=0,
        le=1,
        description="Share of a window's answered predictions that must have reached the log "
        "before a decision (alert action, guardrail, retrain) acts on it; below it the "
        "decision says the window is incomplete and does not act.",
    )
    bands: dict[str, BandSettings] | Path = Field(
        default_factory=dict,
        description="Per-feature band overrides (feature name → levels), inline or in a "
        "YAML file; `shipyard monitor calibrate --write` writes bands.yaml.",
    )
    routes: list[AlertRoute] = Field(default_factory=list, description="Alert routes.")
    pause_action: Literal["none", "fallback"] = Field(
        "none",
        description="What a pause-level breach does: nothing more than alert, or send all "
        "traffic to fallback_version.",
    )
    fallback_version: str | None = Field(
        None, description="Version that takes all traffic on a pause (pause_action: fallback)."
    )
    every_seconds: float | None = Field(
        None, gt=0, description="The agent runs the monitor this often; null: only by hand."
    )
    retries: int = Field(4, ge=0, description="Delivery attempts after the first, per route.")
    backoff_seconds: float = Field(
        1.0, ge=0, description="First retry delay; doubles on each further retry."
    )
