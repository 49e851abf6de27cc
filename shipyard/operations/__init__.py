"""Running a model as a team: the maturity level, ROI metrics, runbooks and postmortems.

Everything here is read from what the project already holds (configuration, the event
log, the registry), so it describes what happened rather than what was planned.
"""

from __future__ import annotations

__all__: list[str] = []
