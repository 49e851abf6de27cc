"""Running a model as a team: the maturity level, ROI metrics, runbooks and postmortems.

Everything here is read from what the project already holds (configuration, the event
log, the registry), so it describes what happened rather than what was planned.

    assess_maturity(project).to_dict()          # level 0/1/2, per characteristic
    roi_metrics(project, period="7d").to_dict()  # iteration time, MTTD, MTTR … with trends
    write_runbook(project, "churn")              # the on-call runbook (Markdown)
    write_incident(project, "churn", since)      # a postmortem draft (Markdown)
"""

from __future__ import annotations

from shipyard.operations.characteristics import Characteristic, Evidence
from shipyard.operations.incident import IncidentReport, incident_report, write_incident
from shipyard.operations.maturity import MaturityReport, assess_maturity
from shipyard.operations.roi import RoiMetric, RoiReport, TrendPoint, roi_metrics
from shipyard.operations.runbook import write_runbook
from shipyard.operations.timings import Incident, incidents

__all__ = [
    "Characteristic",
    "Evidence",
    "Incident",
    "IncidentReport",
    "MaturityReport",
    "RoiMetric",
    "RoiReport",
    "TrendPoint",
    "assess_maturity",
    "incident_report",
    "incidents",
    "roi_metrics",
    "write_incident",
    "write_runbook",
]
