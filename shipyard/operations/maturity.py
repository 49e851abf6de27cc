"""Where the project stands on Google's MLOps maturity model, one characteristic at a time.

Level 0 is a manual process; level 1 automates the ML pipeline (continuous training,
tracked data, gated promotions, monitoring); level 2 automates delivery as well (staged
roll-outs on statistical guardrails, automatic rollback, the pipeline run by an
orchestrator). Each characteristic (:mod:`shipyard.operations.characteristics`) is
judged on what the project holds, not on what is planned: the configuration, the event
log, the control-plane tables and the files in the project folder. The project's level
is the lowest any characteristic reaches.

    report = assess_maturity(project)
    report.level                              # 0, 1 or 2
    report.characteristic("rollback").missing # what it lacks for its next level
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from shipyard.access import Scope
from shipyard.jsonable import Record
from shipyard.operations.characteristics import CHARACTERISTICS, Characteristic, Findings
from shipyard.operations.exports import find_exported_pipelines
from shipyard.operations.history import load_history
from shipyard.store import LeaseRow

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["LEVELS", "MaturityReport", "assess_maturity", "judge_maturity"]

LEVELS = {
    0: "manual process",
    1: "ML pipeline automation (continuous training)",
    2: "CI/CD pipeline automation",
}


@dataclass(frozen=True)
class MaturityReport(Record):
    """The project's level, each characteristic behind it, and what the next level needs."""

    project: str
    level: int
    level_name: str
    next_level: int | None
    missing: tuple[str, ...]  # for the next level, one line per characteristic short of it
    characteristics: tuple[Characteristic, ...]
    assessed_at: datetime

    def characteristic(self, key: str) -> Characteristic:
        """The characteristic named ``key``."""
        for found in self.characteristics:
            if found.key == key:
                return found
        raise KeyError(f"no characteristic {key!r}")


def assess_maturity(project: Project) -> MaturityReport:
    """Judge the project on every characteristic (needs ``models:read``)."""
    project.authorize(Scope.MODELS_READ)
    history = load_history(
        project.store,
        kinds=(
            "model_version.registered",
            "model_version.evaluated",
            "alias.promote",
            "alias.override",
            "alias.rollback",
            "rollout.rolled_back",
            "rollout.aborted",
            "alert.opened",
            "pipeline.exported",  # not catalogued yet: counted if an exporter ever records it
        ),
    )
    with project.store.session() as session:
        leases = tuple(session.scalars(select(LeaseRow.name)))
    root = Path(project.config.root)
    findings = Findings(project.config, history, tuple(find_exported_pipelines(root)), leases)
    return judge_maturity(findings)


def judge_maturity(findings: Findings, *, now: datetime | None = None) -> MaturityReport:
    """The report for ``findings`` (a pure function of them)."""
    judged = tuple(judge(findings) for judge in CHARACTERISTICS)
    level = min(item.level for item in judged)
    short = tuple(f"{item.name}: {item.missing}" for item in judged if item.level == level < 2)
    return MaturityReport(
        project=findings.config.project,
        level=level,
        level_name=LEVELS[level],
        next_level=level + 1 if level < 2 else None,
        missing=short,
        characteristics=judged,
        assessed_at=now or datetime.now(UTC),
    )
