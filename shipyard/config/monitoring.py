"""The ``monitoring`` section: windows, threshold bands, alert routes and the pause action."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from shipyard.config._section import Section
from shipyard.config.sequential import SequentialSettings
from shipyard.levels import AlertLevel

__all__ = ["DRIFT_METHODS", "P_VALUE_METHODS", "AlertRoute", "BandSettings", "MonitoringSettings"]

# The drift methods a feature's bands may name (shipyard.monitoring.methods.DETECTORS).
DRIFT_METHODS = ("auto", "psi", "kl", "jensenshannon", "wasserstein", "ks", "chisquare", "z")
# Statistical tests whose levels are p-values: the smaller, the stronger the evidence.
P_VALUE_METHODS = ("ks", "chisquare", "z")
# The largest Jensen–Shannon distance with natural logarithms.
_JS_MAX = math.sqrt(math.log(2))


class BandSettings(Section):
    """Inspect / retrain / pause levels of one signal.

    For a distance (psi, kl, jensenshannon, wasserstein) a score at or above a level
    breaches it: inspect ≤ retrain ≤ pause. For a test (ks, chisquare, z) the levels are
    p-values in (0, 1) and a p-value at or below a level breaches it: inspect ≥ retrain ≥
    pause, e.g. 0.05 / 0.01 / 0.001.
    """

    inspect: float = Field(ge=0, description="Level that asks a person to look.")
    retrain: float = Field(ge=0, description="Level that requests a retrain.")
    pause: float = Field(ge=0, description="Level that triggers the pause action.")
    method: str | None = Field(
        None,
        description="Drift method for this feature: psi, kl, jensenshannon, wasserstein "
        "(levels are distances), or ks, chisquare, z (levels are p-values).",
    )

    @model_validator(mode="after")
    def _levels_on_the_methods_scale(self) -> Self:
        levels = (self.inspect, self.retrain, self.pause)
        if self.method is not None and self.method not in DRIFT_METHODS:
            raise ValueError(
                f"method {self.method!r} is not a drift method; use one of "
                f"{', '.join(DRIFT_METHODS)}"
            )
        if self.method in P_VALUE_METHODS:
            if not all(0 < level < 1 for level in levels):
                raise ValueError(
                    f"{self.method} levels are p-values: inspect, retrain and pause must lie "
                    f"between 0 and 1 (got {self._shown()})"
                )
            if not self.inspect >= self.retrain >= self.pause:
                raise ValueError(
                    f"{self.method} levels are p-values, where smaller is more severe: "
                    f"inspect ≥ retrain ≥ pause, e.g. 0.05 / 0.01 / 0.001 (got {self._shown()})"
                )
            return self
        if not self.inspect <= self.retrain <= self.pause:
            raise ValueError(
                f"levels must rise with severity: inspect ≤ retrain ≤ pause (got {self._shown()})"
            )
        if self.method == "jensenshannon" and self.inspect > _JS_MAX:
            raise ValueError(
                f"a Jensen–Shannon distance is at most {_JS_MAX:.4f}; inspect {self.inspect:g} "
                "could never be reached"
            )
        return self

    def _shown(self) -> str:
        return f"inspect {self.inspect:g}, retrain {self.retrain:g}, pause {self.pause:g}"


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
    engine: Literal["duckdb", "chunked", "spark"] = Field(
        "duckdb",
        description="How feature drift is computed: duckdb scores the window in one pass; "
        "chunked merges per-chunk summaries (reference bin counts, KS cell counts, value "
        "maps), in memory that follows the reference, not the window; spark runs the same "
        "summary step on a local Spark session (needs the spark extra and Java 17). The "
        "verdicts are the same; past 262,144 distinct values in a column, chunked "
        "Wasserstein is approximate and its result gives the error bound.",
    )
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
    performance_window: str = Field(
        "last:2000",
        description="Which labelled predictions performance is measured on, independent of "
        "the feature window: last:N (the newest N predictions that have a label) or "
        "since:7d (labels that arrived in that period).",
    )
    performance_unknown_level: AlertLevel = Field(
        "inspect",
        description="Level of the 'performance unknown' signal, raised when fewer than "
        "min_labelled labelled predictions are in the performance window.",
    )
    calibration: Literal["auto", "off"] = Field(
        "auto",
        description="auto: per-feature bands are calibrated from the reference at "
        "false_alarm_rate whenever it has calibration_min_rows rows (the shipped PSI/KL "
        "table is the fallback); off: the shipped table unless bands says otherwise.",
    )
    false_alarm_rate: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description="False alarms per window and feature that calibrated bands allow "
        "(the inspect level's rate under no drift).",
    )
    calibration_min_rows: int = Field(
        1000, ge=100, description="Fewest reference rows before bands are calibrated."
    )
    dataset_drift: Literal["share", "any_retrain"] = Field(
        "share",
        description="When the dataset counts as drifted: share (Evidently's rule, at least "
        "half the columns drift) or any_retrain (any one feature at retrain or worse).",
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

    sequential: SequentialSettings = Field(
        default_factory=SequentialSettings,  # type: ignore[arg-type]
        description="Sequential change detectors fed as rows and labels arrive.",
    )

    @field_validator("performance_window")
    @classmethod
    def _performance_window_form(cls, value: str) -> str:
        """``last:N`` or ``since:…`` (the moment itself is read when a run starts)."""
        kind, _, rest = value.strip().partition(":")
        if (kind == "last" and rest.strip().isdigit() and int(rest) > 0) or (
            kind == "since" and rest.strip()
        ):
            return value
        raise ValueError(
            f"performance_window {value!r} is not understood; write last:2000 (the newest "
            "2,000 labelled predictions) or since:7d (labels that arrived in the last 7 days)"
        )

    @field_validator("bands", mode="before")
    @classmethod
    def _each_feature_on_its_methods_scale(cls, value: object) -> object:
        """Name the feature and the level at fault (a union's own error names neither)."""
        if not isinstance(value, dict):
            return value
        for feature, levels in value.items():
            try:
                BandSettings.model_validate(levels)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in (feature, *error["loc"]))
                raise ValueError(f"{where}: {error['msg'].removeprefix('Value error, ')}") from None
        return value
