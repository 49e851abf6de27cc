"""The ``monitoring.sequential`` section: change detectors that run as rows and labels arrive."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.config._section import Section

__all__ = ["SequentialSettings"]


class SequentialSettings(Section):
    """Sequential change detectors on the labelled error stream, the predictions and features.

    The agent feeds them incrementally from the prediction and label logs; their state
    is stored in the control plane, so a restarted agent resumes. An alarm is a signal
    routed through the same alerts and continuous-training triggers as a window's.
    """

    enabled: bool = Field(
        True, description="Run the detectors from the agent (with monitoring.every_seconds)."
    )
    error: Literal["adwin", "page_hinkley", "cusum", "off"] = Field(
        "adwin", description="Detector on the labelled error stream (0/1 errors or |residual|)."
    )
    prediction: Literal["adwin", "page_hinkley", "cusum", "off"] = Field(
        "page_hinkley", description="Detector on the prediction stream (score or value)."
    )
    features: Literal["adwin", "page_hinkley", "cusum", "off"] = Field(
        "cusum", description="Detector on each numeric feature, standardised by the reference."
    )
    every_seconds: float | None = Field(
        None,
        gt=0,
        description="How often the agent feeds the detectors; null: every agent tick "
        "(delivery.poll_seconds), since each feed reads only what is new.",
    )
    false_alarm_rate: float = Field(
        5e-5,
        gt=0,
        lt=0.1,
        description=(
            "Stated false alarms per row with no change, for all of a model's streams "
            "together (each stream gets an equal share)."
        ),
    )
    min_samples: int = Field(
        100, ge=1, description="Samples a detector sees before it may raise an alarm."
    )
    level: Literal["inspect", "retrain", "pause"] = Field(
        "retrain", description="Level of the signal an alarm on the error stream raises."
    )
    drift_level: Literal["inspect", "retrain", "pause"] = Field(
        "inspect", description="Level of an alarm on the prediction or a feature stream."
    )
