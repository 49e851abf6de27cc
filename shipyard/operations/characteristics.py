"""The characteristics of the maturity model: one function each, judged on what was found.

A judge takes the :class:`Findings` (configuration, history, exported pipelines, leases)
and returns a :class:`Characteristic`: the level it reaches (0, 1 or 2), the evidence
behind it, and what it lacks for its next level. :data:`CHARACTERISTICS` lists them in
the order the report shows; a new characteristic is one more function there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shipyard.config import Config
from shipyard.jsonable import Record
from shipyard.operations.exports import ExportedPipeline
from shipyard.operations.history import History, is_champion_move
from shipyard.store.events import Event

__all__ = [
    "CHARACTERISTICS",
    "Characteristic",
    "Evidence",
    "Findings",
    "Judge",
]


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
class Findings:
    """What the characteristics are judged on."""

    config: Config
    history: History
    exported: tuple[ExportedPipeline, ...] = ()
    leases: tuple[str, ...] = ()  # names of leases ever held (the agent's: "agent")


Judge = Callable[[Findings], Characteristic]


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
