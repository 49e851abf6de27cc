"""Running a model as a team: the maturity level, ROI metrics, runbooks and postmortems.

Everything here is read from what the project already holds (configuration, the event
log, the registry), so it describes what happened rather than what was planned.

    assess_maturity(project).to_dict()          # level 0/1/2, per characteristic
    roi_metrics(project, period="7d").to_dict()  # iteration time, MTTD, MTTR … with trends
"""

from __future__ import annotations

from shipyard.operations.maturity import (
    Characteristic,
    Evidence,
    MaturityReport,
    assess_maturity,
)
from shipyard.operations.roi import RoiMetric, RoiReport, TrendPoint, roi_metrics
from shipyard.operations.timings import Incident, incidents

__all__ = [
    "Characteristic",
    "Evidence",
    "Incident",
    "MaturityReport",
    "RoiMetric",
    "RoiReport",
    "TrendPoint",
    "assess_maturity",
    "incidents",
    "roi_metrics",
]
