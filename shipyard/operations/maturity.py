"""Where the project stands on Google's MLOps maturity model, one characteristic at a time.

Level 0 is a manual process; level 1 automates the ML pipeline (continuous training,
tracked data, gated promotions, monitoring); level 2 automates delivery as well (staged
roll-outs on statistical guardrails, automatic rollback, the pipeline run by an
orchestrator). Each characteristic is judged on what the project holds, not on what is
planned: the configuration, the event log, the control-plane tables and the files in the
project folder. A characteristic reaches a level when its evidence meets that level's
test; the project's level is the lowest any characteristic reaches.

    report = assess_maturity(project)
    report.level                              # 0, 1 or 2
    report.characteristic("rollback").missing # what it lacks for its next level
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from shipyard.access import Scope
from shipyard.config import Config
from shipyard.jsonable import Record
from shipyard.operations.exports import ExportedPipeline, find_exported_pipelines
from shipyard.operations.history import History, is_champion_move, load_history
from shipyard.store import LeaseRow
from shipyard.store.events import Event

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = [
    "CHARACTERISTICS",
    "Characteristic",
    "Evidence",
    "Findings",
    "MaturityReport",
    "assess_maturity",
    "judge_maturity",
]

LEVELS = {
    0: "manual process",
    1: "ML pipeline automation (continuous training)",
    2: "CI/CD pipeline automation",
}


@dataclass(frozen=True)
class Evidence(Record):
    """One thing found: where (``event``, ``config``, ``table``, ``file``), what, and refs."""

    source: str
    detail: str
    refs: tuple[str, ...] = ()  # event ids (``event:12``), config keys, paths


@dataclass(frozen=True)
class Characteristic(Record):
    """One characteristic of the maturity model, with the level its evidence reaches."""

    key: str
    name: str
    level: int  # 0, 1 or 2
    meets_level_1: bool
    meets_level_2: bool
    evidence: tuple[Evidence, ...]
    missing: str  # what it needs for its next level ("" at level 2)


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


@dataclass(frozen=True)
class Findings:
    """What the characteristics are judged on."""

    config: Config
    history: History
    exported: tuple[ExportedPipeline, ...] = ()
    leases: tuple[str, ...] = ()  # names of leases ever held (the agent's: "agent")


Judge = Callable[[Findings], Characteristic]


def assess_maturity(project: Project) -> MaturityReport:
    """Judge the project on every characteristic (needs ``models:read``)."""
    project.authorize(Scope.MODELS_READ)
    history = load_history(
        project.store,
        kinds=(
            "dataset.snapshotted",
            "model_version.registered",
            "model_version.evaluated",
            "alias.promote",
            "alias.override",
            "alias.rollback",
            "rollout.started",
            "rollout.rolled_back",
            "rollout.aborted",
            "alert.opened",
            "alert.delivered",
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


def _judged(
    key: str, name: str, tests: tuple[bool, bool], evidence: list[Evidence], needs: tuple[str, str]
) -> Characteristic:
    one, two = tests[0], tests[0] and tests[1]
    level = 2 if two else 1 if one else 0
    missing = "" if level == 2 else needs[level]
    return Characteristic(key, name, level, one, two, tuple(evidence), missing)


def _ids(events: list[Event]) -> tuple[str, ...]:
    """Event refs, the latest ten (the count says how many there are)."""
    return tuple(f"event:{event.id}" for event in events[-10:])


def data_versions(found: Findings) -> Characteristic:
    """Runs are tracked with the digest of the data they trained on."""
    registered = found.history.events_of("model_version.registered")
    tracked = [e for e in registered if e.payload.get("data_digest")]
    schema = found.config.train.data_schema
    evidence = [
        Evidence(
            "event",
            f"{len(tracked)} of {len(registered)} registered versions carry a data digest",
            _ids(tracked),
        ),
        Evidence(
            "config",
            f"train.schema: {schema}"
            if schema
            else "train.schema is not set: data is not validated before training",
            ("train.schema",),
        ),
    ]
    return _judged(
        "data_versions",
        "Runs are tracked with data versions",
        (bool(tracked), len(tracked) == len(registered) and schema is not None),
        evidence,
        (
            "train a version through `shipyard train` so its run records the data digest",
            "set train.schema so every training run validates its data, and register "
            "every version through a tracked run",
        ),
    )


def retraining(found: Findings) -> Characteristic:
    """Retraining is triggered by evidence, not by hand, and has fired."""
    ct = found.config.ct
    triggers = [
        name
        for name, on in (
            ("on_drift", ct.on_drift),
            ("schedule", ct.schedule),
            ("on_new_data", ct.on_new_data),
        )
        if on
    ]
    fired = [
        c
        for c in found.history.cycles
        if c.trigger_kind != "manual" and c.state not in ("skipped", "deferred")
    ]
    shipped = [c for c in fired if c.state == "promoted"]
    evidence = [
        Evidence(
            "config",
            f"ct.enabled: {str(ct.enabled).lower()}; triggers: {', '.join(triggers) or 'none'}",
            ("ct.enabled", *(f"ct.{name}" for name in triggers)),
        ),
        Evidence(
            "table",
            f"{len(fired)} automatically triggered cycles ran, {len(shipped)} promoted "
            f"({len(found.history.cycles)} cycles in all)",
            tuple(f"ct_cycle:{c.id}" for c in fired[-10:]),
        ),
    ]
    return _judged(
        "retraining",
        "Retraining is triggered automatically, and has fired",
        (ct.enabled and bool(triggers) and bool(fired), bool(shipped)),
        evidence,
        (
            "set ct.enabled: true with a trigger (on_drift, schedule or on_new_data) and "
            "run the agent until a cycle fires",
            "let an automatically triggered cycle go through every gate to promotion",
        ),
    )


def promotion_gates(found: Findings) -> Characteristic:
    """Champion promotions passed the scorecard (and approvals), none forced."""
    history, config = found.history, found.config
    promotions = [e for e in history.events_of("alias.promote") if is_champion_move(e)]
    overrides = [e for e in history.events_of("alias.override") if is_champion_move(e)]
    passed = {
        e.subject.removeprefix("model:")
        for e in history.events_of("model_version.evaluated")
        if e.payload.get("passed")
    }
    unscored = [
        e
        for e in promotions
        if f"{e.subject.removeprefix('model:').split('@')[0]}/{e.payload['to_version']}"
        not in passed
    ]
    evidence = [
        Evidence(
            "event",
            f"{len(promotions)} champion promotions passed their checks, {len(overrides)} "
            "were forced past them",
            _ids(promotions + overrides),
        ),
        Evidence(
            "config",
            f"evaluation.golden: {config.evaluation.golden or 'not set'}; "
            f"promotion.approval: {config.promotion.approval}",
            ("evaluation.golden", "evaluation.scorecard", "promotion.approval"),
        ),
    ]
    if unscored:
        evidence.append(
            Evidence("event", f"{len(unscored)} promotions without a passing scorecard event")
        )
    return _judged(
        "promotion_gates",
        "Promotions pass gates",
        (
            bool(promotions) and config.evaluation.golden is not None,
            not overrides and not unscored,
        ),
        evidence,
        (
            "configure evaluation.golden and a scorecard, then promote with `shipyard promote`",
            "stop forcing promotions (--force): every champion must pass its scorecard",
        ),
    )


def drift_monitoring(found: Findings) -> Characteristic:
    """The monitor runs, on a schedule, and its alerts reach someone."""
    monitoring = found.config.monitoring
    runs = found.history.monitor_runs
    alerts = found.history.events_of("alert.opened")
    evidence = [
        Evidence(
            "table",
            f"{len(runs)} monitor runs"
            + (f", the latest at {runs[-1].at.isoformat(timespec='seconds')}" if runs else ""),
            tuple(f"monitor_run:{r.id}" for r in runs[-10:]),
        ),
        Evidence(
            "config",
            f"monitoring.every_seconds: {monitoring.every_seconds or 'null'}; "
            f"{len(monitoring.routes)} alert routes",
            ("monitoring.every_seconds", "monitoring.routes"),
        ),
        Evidence("event", f"{len(alerts)} alerts opened", _ids(alerts)),
    ]
    return _judged(
        "drift_monitoring",
        "Drift is monitored",
        (bool(runs), monitoring.every_seconds is not None and bool(monitoring.routes)),
        evidence,
        (
            "run `shipyard monitor run NAME` over the prediction log",
            "set monitoring.every_seconds (the agent runs the monitor) and an alert route "
            "in monitoring.routes",
        ),
    )


def staged_rollouts(found: Findings) -> Characteristic:
    """Candidates reach traffic in steps, each held to statistical guardrails."""
    rollouts = found.history.rollouts
    judged = [
        r
        for r in rollouts
        if r.state in ("promoted", "rolled_back")
        and any(entry.get("evidence") for entry in r.history[1:])
    ]
    strategies = sorted({r.strategy for r in rollouts})
    evidence = [
        Evidence(
            "table",
            f"{len(rollouts)} roll-outs ({', '.join(strategies) or 'none'}); {len(judged)} "
            "ended on their guardrails' verdicts",
            tuple(f"rollout:{r.id}" for r in rollouts[-10:]),
        )
    ]
    return _judged(
        "staged_rollouts",
        "Roll-outs are staged with statistical guardrails",
        (bool(rollouts), bool(judged)),
        evidence,
        (
            "roll a candidate out in steps: `shipyard rollout start NAME/VERSION`",
            "run the agent so roll-outs advance (or roll back) on the guardrails' verdicts",
        ),
    )


def rollback(found: Findings) -> Characteristic:
    """A rollback has been exercised, and one happened without a person."""
    history = found.history
    by_hand = [e for e in history.events_of("alias.rollback") if is_champion_move(e)]
    aborted = history.events_of("rollout.aborted")
    automatic = history.events_of("rollout.rolled_back")
    evidence = [
        Evidence("event", f"{len(by_hand)} champion rollbacks by hand", _ids(by_hand)),
        Evidence("event", f"{len(aborted)} roll-outs aborted by hand", _ids(aborted)),
        Evidence(
            "event",
            f"{len(automatic)} automatic rollbacks (a guardrail breached)",
            _ids(automatic),
        ),
    ]
    return _judged(
        "rollback",
        "An automatic rollback has happened",
        (bool(by_hand or aborted or automatic), bool(automatic)),
        evidence,
        (
            "rehearse a rollback: `shipyard rollback NAME` (or abort a roll-out)",
            "let a guardrail roll a roll-out back (rehearse one with a deliberately "
            "worse candidate), so the automatic path is known to work",
        ),
    )


def orchestrated(found: Findings) -> Characteristic:
    """The pipeline runs unattended: by the agent, and exported to an orchestrator."""
    agent = "agent" in found.leases
    recorded = found.history.events_of("pipeline.exported")
    evidence = [
        Evidence(
            "table",
            "the agent has held its lease (it ran the loop)" if agent else "the agent never ran",
            ("lease:agent",) if agent else (),
        ),
        Evidence(
            "file",
            f"{len(found.exported)} exported pipelines found in the project folder "
            + (
                f"({', '.join(f'{p.target}: {p.path}' for p in found.exported)})"
                if found.exported
                else ""
            )
            + "; no event records an export, so the folder is searched for the files "
            "`shipyard pipeline export` writes",
            tuple(str(p.path) for p in found.exported),
        ),
    ]
    if recorded:
        evidence.append(Evidence("event", f"{len(recorded)} pipeline exports", _ids(recorded)))
    return _judged(
        "orchestrated",
        "The pipeline is exported to an orchestrator",
        (agent or bool(found.history.cycles), bool(found.exported or recorded)),
        evidence,
        (
            "run the agent (`shipyard agent`) so the loop runs unattended",
            "export the cycle (`shipyard pipeline export NAME --to kfp|argo|airflow --out "
            "pipelines/…`) and keep the file in the project",
        ),
    )


CHARACTERISTICS: tuple[Judge, ...] = (
    data_versions,
    retraining,
    promotion_gates,
    drift_monitoring,
    staged_rollouts,
    rollback,
    orchestrated,
)
"""Every characteristic, in the order the report shows them; one function each."""
