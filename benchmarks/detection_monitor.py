"""Shipyard's monitor on one deployed stream, driven as the agent drives it, in-process.

Every ``poll`` samples the agent wakes up and sees what reached the logs since its last
tick: the new rows with their predictions, and the labels that arrived (each sample's
label arrives ``lag`` samples after its prediction). Two parts run on every tick:

- **sequential**: the :class:`~shipyard.monitoring.sequential.StreamBank` the agent's
  ``StreamWatch`` keeps, fitted on the training reference (and the golden set's scores
  and errors), is updated with the new rows, their scores and the errors of the labels
  that arrived, in label-arrival order. Each alarm is an event.
- **window**: a monitor run over the last ``window`` predictions: feature drift with the
  bands monitoring picks for the window (``calibrated_bands.window_bands``: calibrated
  from the reference for the window's size at ``monitoring.false_alarm_rate``), prediction drift
  (``PredictionDriftBand`` on the golden set's scores), and labelled accuracy on the last
  ``performance_window`` labelled predictions (labels matched to predictions of any age)
  against the scorecard floor ``golden accuracy − floor_margin``, once ``min_labelled``
  labels exist. An event is a signal's alert opening: its level leaves ``ok`` (escalations
  of an open alert and repeats are not new events, as the Alerter counts them).

Left out: HTTP, the journal and Parquet logs, DuckDB reads, the control-plane store and
alert routes (the same numbers reach the same functions without them), and the
"performance unknown" signal (it says labels are missing, not that something changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from detection_streams import Deployment

from shipyard.config import Config, MetricCriterion
from shipyard.monitoring.calibrated_bands import window_bands
from shipyard.monitoring.feature_drift import feature_drift
from shipyard.monitoring.log_window import WindowSpec
from shipyard.monitoring.performance import concept_drift, labelled_performance
from shipyard.monitoring.prediction_drift import PredictionDriftBand
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.sequential import StreamBank

__all__ = ["Event", "MonitorSettings", "shipyard_events"]


@dataclass(frozen=True)
class Event:
    """One alarm: which signal, the sample count when the monitor saw it, and the newest
    sample behind it (for the error stream and performance, ``lag`` older than ``seen``)."""

    signal: str
    seen: int
    evidence: int
    part: str  # "sequential" or "window"


def _last(spec: str) -> int:
    """N of a ``last:N`` window setting."""
    count = WindowSpec.parse(spec).count
    if count is None:
        raise ValueError(f"{spec} is not a last:N window")
    return count


@dataclass(frozen=True)
class MonitorSettings:
    """How the agent is driven: its tick, the label lag, when the window monitor runs,
    the scorecard floor, and the project's configuration (``monitoring.*`` as shipped,
    unless :meth:`configured` changes a setting)."""

    poll: int = 250
    lag: int = 1000
    window_every: int = 250  # samples between window monitor runs (a multiple of poll)
    floor_margin: float = 0.05  # scorecard floor: golden accuracy minus this
    config: Config = field(default_factory=lambda: Config.model_validate({}))

    @classmethod
    def configured(cls, monitoring: Mapping[str, Any], **driven: Any) -> MonitorSettings:
        """Settings whose configuration sets ``monitoring`` (a shipyard.yaml section)."""
        return cls(**driven, config=Config.model_validate({"monitoring": monitoring}))

    @property
    def window(self) -> int:
        """``monitoring.window``'s N (last:N)."""
        return _last(self.config.monitoring.window)

    @property
    def performance_window(self) -> int:
        """``monitoring.performance_window``'s N (last:N)."""
        return _last(self.config.monitoring.performance_window)


def shipyard_events(deployment: Deployment, settings: MonitorSettings) -> list[Event]:
    """Every event of the sequential bank and the window monitor over the monitored part."""
    split = deployment.split
    reference = Reference.from_frame(deployment.reference)
    golden = slice(split.train, split.start)
    bank = StreamBank(settings.config.monitoring.sequential).fit(
        reference,
        reference_predictions=deployment.reference_scores,
        reference_errors=deployment.errors[golden],
        task="classification",
    )
    window = _WindowMonitor(deployment, reference, settings)
    events: list[Event] = []
    labelled_until = split.start  # the labels of the samples before this have arrived
    for seen in range(split.start + settings.poll, split.samples + 1, settings.poll):
        arrived_until = max(split.start, seen - settings.lag)
        events += _sequential(bank, deployment, seen, settings.poll, labelled_until, arrived_until)
        labelled_until = arrived_until
        if (seen - split.start) % settings.window_every == 0:
            events += window.run(seen, labelled_until)
    return events


def _sequential(
    bank: StreamBank,
    deployment: Deployment,
    seen: int,
    poll: int,
    labelled_from: int,
    labelled_until: int,
) -> list[Event]:
    """One tick of the bank: the last ``poll`` rows and the errors of the labels that arrived."""
    rows = slice(seen - poll, seen)
    alarms = bank.update(
        inputs=deployment.inputs.iloc[rows],
        predictions=deployment.scores[rows],
        errors=deployment.errors[labelled_from:labelled_until],
    )
    events = []
    for alarm in alarms:
        first = labelled_from if alarm.stream == "error" else rows.start
        events.append(Event(f"sequential:{alarm.stream}", seen, first + alarm.index, "sequential"))
    return events


class _WindowMonitor:
    """Monitor runs over the last ``window`` rows and ``performance_window`` labels."""

    def __init__(
        self, deployment: Deployment, reference: Reference, settings: MonitorSettings
    ) -> None:
        self.deployment = deployment
        self.reference = reference
        self.settings = settings
        self.band = PredictionDriftBand(window_size=settings.window).fit(
            deployment.reference_scores
        )
        floor = deployment.golden_accuracy - settings.floor_margin
        self.floor = [MetricCriterion.model_validate({"metric": "accuracy", "min": floor})]
        self.open: set[str] = set()

    def run(self, seen: int, labelled_until: int) -> list[Event]:
        """One run at sample ``seen``: the signals whose alert opens now."""
        signals = {**self._drift(seen), **self._performance(labelled_until)}
        events = []
        for signal, (alarming, evidence) in signals.items():
            if alarming and signal not in self.open:
                events.append(Event(signal, seen, evidence, "window"))
            if alarming:
                self.open.add(signal)
            else:
                self.open.discard(signal)  # the alert resolves
        return events

    def _drift(self, seen: int) -> dict[str, tuple[bool, int]]:
        """Feature and prediction drift of the last ``window`` rows (once ``min_rows`` exist)."""
        start = self.deployment.split.start
        rows = slice(max(start, seen - self.settings.window), seen)
        size = rows.stop - rows.start
        monitoring = self.settings.config.monitoring
        if size < monitoring.min_rows:
            return {}
        window = self.deployment.inputs.iloc[rows]
        bands = window_bands(self.settings.config, self.reference, window)
        signals = {}
        for result, _ in feature_drift(self.reference, window, bands):
            level = result.band or ("inspect" if result.drifted else "ok")
            signals[f"feature:{result.feature}"] = (level != "ok", seen - 1)
        drift = self.band.score(self.deployment.scores[rows])
        signals["prediction"] = (drift.level != "ok", seen - 1)
        return signals

    def _performance(self, labelled_until: int) -> dict[str, tuple[bool, int]]:
        """Accuracy of the last ``performance_window`` labelled predictions against the floor."""
        start = self.deployment.split.start
        rows = slice(max(start, labelled_until - self.settings.performance_window), labelled_until)
        if rows.stop - rows.start < self.settings.config.monitoring.min_labelled:
            return {}
        values = labelled_performance(
            self.deployment.labels[rows],
            self.deployment.predictions[rows],
            None,
            ["accuracy"],
            "classification",
            classes=np.array([0, 1]),
        )
        return {"performance:accuracy": (bool(concept_drift(values, self.floor)), rows.stop - 1)}
