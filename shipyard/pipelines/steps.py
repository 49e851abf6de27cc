"""A cycle one gate at a time, one process each: what an orchestrator's steps run.

``shipyard ct start NAME --cause JSON`` opens the cycle (:func:`parse_cause`, then
:meth:`ContinuousTraining.begin`, with the guards the agent applies), and ``shipyard ct
step CYCLE GATE`` runs one gate (:func:`run_step`). The steps share nothing but the
control plane: each one rebuilds what the earlier gates left (:func:`resume`) from the
stored cycle, the training data and the registry, then runs the same functions as the
agent (:meth:`~ContinuousTraining.run_gate`, :meth:`~ContinuousTraining.start_rollout`,
:meth:`~ContinuousTraining.follow`). The roll-out's gates (shadow, canary, promote) wait,
up to a deadline, for the agent to move the roll-out, and record it as the agent does.

A step is safe to run again: a gate the cycle already recorded is reported, not re-run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from shipyard.errors import ConfigError, DataError, ShipyardError
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.pipelines.cycles import Cycle, get_cycle, list_cycles
from shipyard.pipelines.gate_registry import (
    CycleRun,
    GateEvidence,
    GateResult,
    TrainingWindow,
    gate_named,
    registered_gates,
)
from shipyard.pipelines.gates import ROLLOUT_GATES, gate_names, training_window
from shipyard.pipelines.triggers import Trigger, TriggerKind, drift_trigger, manual_trigger

if TYPE_CHECKING:
    from shipyard.pipelines.loop import ContinuousTraining
    from shipyard.training import TrainResult

__all__ = [
    "CAUSE_EXAMPLE",
    "DEFAULT_TIMEOUT",
    "Recorded",
    "StepReport",
    "parse_cause",
    "parse_cause_text",
    "resume",
    "run_step",
    "start",
]

StepStatus = Literal["passed", "skipped", "failed", "timed_out"]
DEFAULT_TIMEOUT = 6 * 3600.0
"""How long a roll-out step waits for the agent to move the roll-out, by default (s)."""
CAUSE_EXAMPLE = '{"kind": "manual", "reason": "new quarter"}'


@dataclass(frozen=True)
class Recorded(GateEvidence):
    """A gate's evidence as the cycle stored it, for the gates of a later step."""

    stored: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The stored evidence itself."""
        return dict(self.stored)


@dataclass(frozen=True)
class StepReport(Record):
    """How one step went: the gate's recorded status, and the cycle after it."""

    gate: str
    status: StepStatus
    message: str
    cycle: Cycle

    @property
    def ok(self) -> bool:
        """Whether the orchestrator goes on to the next step."""
        return self.status in ("passed", "skipped")


# -- the first step: the trigger and the guards ------------------------------------------


def parse_cause(text: str, loop: ContinuousTraining) -> Trigger:
    """The trigger a ``--cause`` JSON names, built as the agent builds it.

    Either the trigger as a cycle stores it (``kind``, ``key``, ``cause`` and its
    details), or a short form the step completes the agent's way: ``{"kind": "manual",
    "reason": …}``, ``{"kind": "drift"}`` (the pending ``retrain_requested`` event),
    ``{"kind": "schedule", "fired_at": …}`` (``expression`` defaults to ``ct.schedule``)
    or ``{"kind": "new_data"}`` (the digest of ``train.data`` now).
    """
    data = parse_cause_text(text)
    kind = data["kind"]
    if "key" in data or "cause" in data:
        return _stored_form(data)
    if kind == "manual":
        return manual_trigger(_text_field(data, "reason", ""))
    if kind == "drift":
        return _pending_drift(loop)
    if kind == "schedule":
        return _schedule(data, loop)
    return _new_data(loop)


def parse_cause_text(text: str) -> dict[str, Any]:
    """``--cause`` as a JSON object with a known ``kind``, or a ConfigError naming the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"--cause is not JSON ({error.msg} at character {error.pos}).",
            hint=f"Pass a JSON object, e.g. --cause '{CAUSE_EXAMPLE}'.",
        ) from error
    if not isinstance(data, dict):
        raise ConfigError(
            f"--cause must be a JSON object, not {type(data).__name__}.",
            hint=f"Pass e.g. --cause '{CAUSE_EXAMPLE}'.",
        )
    kinds = get_args(TriggerKind)
    if data.get("kind") not in kinds:
        raise ConfigError(
            f"--cause field 'kind' is {data.get('kind')!r}; it must be one of {', '.join(kinds)}.",
            hint=f"Pass e.g. --cause '{CAUSE_EXAMPLE}'.",
        )
    if "key" in data or "cause" in data:
        _stored_form(data)
    return data


def start(loop: ContinuousTraining, trigger: Trigger, *, force: bool = False) -> Cycle:
    """Open the cycle for ``trigger`` (the guards first, unless ``force``).

    A trigger a finished cycle already spent is refused; one that a running cycle spent
    gives that cycle back, so a retried first step does not start a second one.
    """
    if trigger.kind != "manual":
        for cycle in list_cycles(loop.store, loop.model, limit=50):
            if cycle.trigger.get("key") != trigger.key or cycle.state == "deferred":
                continue
            if cycle.state == "running":
                return cycle
            raise ConfigError(
                f"Trigger {trigger.key} was already acted on by cycle {cycle.id} ({cycle.state}).",
                hint=f"See `shipyard ct status {loop.model}`; a new cycle needs a new trigger.",
            )
    return loop.begin(trigger, force=force)


def _stored_form(data: dict[str, Any]) -> Trigger:
    key, cause = data.get("key"), data.get("cause")
    for field, value in (("key", key), ("cause", cause)):
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"--cause field {field!r} must be a non-empty string (got {value!r}).",
                hint="Pass the trigger as a cycle stores it (kind, key, cause), or only its "
                'kind: {"kind": "drift"}.',
            )
    details = {k: v for k, v in data.items() if k not in ("kind", "key", "cause")}
    return Trigger(data["kind"], str(key), str(cause), details)


def _text_field(data: Mapping[str, Any], name: str, default: str) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(
            f"--cause field {name!r} must be a string (got {value!r}).",
            hint=f"Pass e.g. --cause '{CAUSE_EXAMPLE}'.",
        )
    return value


def _pending_drift(loop: ContinuousTraining) -> Trigger:
    from shipyard.pipelines.triggers import spent_keys

    # A running cycle's trigger still counts here, so that a retried first step finds the
    # cycle it started (``start`` gives it back) rather than nothing.
    finished = [c for c in list_cycles(loop.store, loop.model, limit=50) if c.state != "running"]
    spent = spent_keys(finished)
    found = drift_trigger(loop.store, loop.model, loop.champion(), spent)
    if found is None:
        raise ConfigError(
            f"{loop.model} has no pending retrain_requested event to act on.",
            hint="Monitoring raises one (`shipyard monitor run`); or pass the trigger "
            "with its key and cause, or a manual one.",
        )
    return found


def _schedule(data: Mapping[str, Any], loop: ContinuousTraining) -> Trigger:
    expression = _text_field(data, "expression", loop.config.ct.schedule or "")
    if not expression:
        raise ConfigError(
            "--cause field 'expression' is missing and ct.schedule is not set.",
            hint='Pass {"kind": "schedule", "expression": "0 3 * * 1", "fired_at": "…"}.',
        )
    fired_text = _text_field(data, "fired_at", "")
    try:
        fired = as_utc(datetime.fromisoformat(fired_text))
    except ValueError as error:
        raise ConfigError(
            f"--cause field 'fired_at' is {fired_text!r}, not an ISO 8601 time.",
            hint="Pass the scheduled time, e.g. Argo's {{workflow.scheduledTime}} or "
            "Airflow's {{ data_interval_end }}.",
        ) from error
    moment = fired.isoformat()
    return Trigger("schedule", f"schedule:{moment}", f"schedule:{expression}", {"fired_at": moment})


def _new_data(loop: ContinuousTraining) -> Trigger:
    if loop.watch is None:
        raise ConfigError(
            "A new_data trigger needs train.data.",
            hint="Set train.data to the file or folder new labelled data lands in.",
        )
    found = loop.watch.digest(time.monotonic())
    if found is None:
        raise DataError(f"{loop.watch.path} holds no data yet.", hint="Check train.data.")
    digest, rows = found
    return Trigger("new_data", f"new_data:{digest}", f"new_data:{digest[:12]}", {
        "digest": digest,
        "rows": rows,
    })  # fmt: skip


# -- one gate --------------------------------------------------------------------------


def run_step(
    loop: ContinuousTraining,
    cycle_id: int,
    gate: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_wait: Callable[[str], None] | None = None,
) -> StepReport:
    """Run gate ``gate`` of cycle ``cycle_id``, or wait for the roll-out to pass it.

    A registered gate runs once its predecessors passed; after the last one the roll-out
    starts. A roll-out gate waits up to ``timeout`` seconds for the agent, telling
    ``on_wait`` each time the roll-out moves. An error (not a verdict) ends the cycle
    ``failed`` and pages the owner, as in the agent, then is raised for the caller.
    """
    cycle = get_cycle(loop.store, cycle_id)
    if cycle.model != loop.model:
        raise ConfigError(
            f"Cycle {cycle_id} retrains {cycle.model!r}, not this project's {loop.model!r}.",
            hint=f"Run the step from {cycle.model}'s project (or pass --config).",
        )
    names = gate_names()
    if gate not in names:
        raise ConfigError(
            f"{gate!r} is not a gate of a cycle; the gates are {', '.join(names)}.",
            hint=f"Run e.g. `shipyard ct step {cycle_id} {names[0]}`.",
        )
    recorded = cycle.gate(gate)
    if recorded is not None:
        return _report(cycle, gate, recorded)
    registered = [g.name for g in registered_gates()]
    if gate in registered:
        return _run_registered(loop, cycle, gate, registered)
    return _follow(loop, cycle, gate, registered, timeout, poll, sleep, clock, on_wait)


def _report(cycle: Cycle, gate: str, recorded: dict[str, Any]) -> StepReport:
    from shipyard.pipelines.gates import gate_summary

    status: StepStatus = recorded["status"]
    summary = gate_summary(recorded)
    message = f"cycle {cycle.id} {gate} {status}" + (f": {summary}" if summary else "")
    if status == "failed" and cycle.reason:
        message += f" ({cycle.state}: {cycle.reason})"
    return StepReport(gate, status, message, cycle)


def _ended(cycle: Cycle, gate: str) -> StepReport:
    message = f"cycle {cycle.id} ended {cycle.state} before its {gate} gate" + (
        f": {cycle.reason}" if cycle.reason else ""
    )
    return StepReport(gate, "failed", message, cycle)


def _run_registered(
    loop: ContinuousTraining, cycle: Cycle, gate: str, registered: list[str]
) -> StepReport:
    if cycle.state != "running":
        return _ended(cycle, gate)
    earlier = registered[: registered.index(gate)]
    missing = next((name for name in earlier if cycle.gate(name) is None), None)
    if missing is not None:
        raise ConfigError(
            f"Cycle {cycle.id} has not run its {missing} gate, which comes before {gate}.",
            hint=f"Run `shipyard ct step {cycle.id} {missing}` first; the gates run in the "
            f"order {' → '.join(gate_names())}.",
        )
    step = gate_named(gate)
    assert step is not None  # in the registry: listed just above
    try:
        run = resume(loop, cycle, gate)
        halted = loop.run_gate(run, step)
        if halted is None and gate == registered[-1]:
            loop.start_rollout(run)
    except ShipyardError as error:
        loop.fail(get_cycle(loop.store, cycle.id), error)
        raise
    after = get_cycle(loop.store, cycle.id)
    recorded = after.gate(gate)
    assert recorded is not None  # run_gate records it, or raises
    return _report(after, gate, recorded)


def resume(loop: ContinuousTraining, cycle: Cycle, gate: str) -> CycleRun:
    """The cycle as its gate ``gate`` sees it, rebuilt from the control plane.

    The trigger and every recorded outcome come from the stored cycle; the training
    window is read again from ``train.data`` (and must have the digest the validate gate
    recorded) until the candidate is trained; the candidate comes from the registry.
    """
    trigger = _stored_form(
        {**cycle.trigger, "kind": cycle.trigger.get("kind", "manual"), "cause": cycle.cause}
    )
    run = CycleRun(loop.project, cycle, trigger, cycle.champion)
    for entry in cycle.gates:
        status = entry["status"]
        evidence = Recorded(dict(entry.get("evidence") or {}))
        run.results[entry["gate"]] = GateResult(
            status != "failed", evidence, skipped=status == "skipped"
        )
    validated = cycle.gate("validate")
    if gate != "validate" and validated is not None and cycle.candidate is None:
        run.window = _window_again(loop, cycle)
    if cycle.candidate is not None:
        run.candidate = _candidate(loop, cycle)
    scorecard = cycle.gate("scorecard")
    if scorecard is not None:
        report = (scorecard.get("evidence") or {}).get("golden", {}).get("report")
        run.rollout_context["evaluation_report"] = report
    return run


def _window_again(loop: ContinuousTraining, cycle: Cycle) -> TrainingWindow:
    config = loop.config
    window = training_window(config, config.workspace / "ct" / f"cycle-{cycle.id}")
    wanted = cycle.trigger.get("source_digest")
    if wanted is not None and window.source_digest != wanted:
        raise DataError(
            f"train.data changed after cycle {cycle.id} validated it "
            f"(digest {str(wanted)[:12]}, now {window.source_digest[:12]}): "
            "the retrain would not train on the data that was validated.",
            hint="Start a new cycle (`shipyard ct start`); let new data land between cycles, "
            "or in a new file that the next cycle reads.",
        )
    return window


def _candidate(loop: ContinuousTraining, cycle: Cycle) -> TrainResult:
    from shipyard.training import TrainResult

    version = loop.tracking.client.get_model_version(loop.model, cycle.candidate or "")
    retrain = (cycle.gate("retrain") or {}).get("evidence") or {}
    metrics = {str(k): float(v) for k, v in (retrain.get("metrics") or {}).items()}
    tags = version.tags or {}
    return TrainResult(
        name=loop.model,
        version=str(version.version),
        run_id=str(version.run_id or retrain.get("run_id") or ""),
        model_uri=str(version.source or ""),
        flavour=str(tags.get("shipyard.flavour", "")),
        data_digest=str(retrain.get("data_digest") or tags.get("shipyard.data_digest", "")),
        metrics=metrics,
        duration_seconds=float(metrics.get("training_duration_seconds", 0.0)),
        validated=True,
    )


def _follow(
    loop: ContinuousTraining,
    cycle: Cycle,
    gate: str,
    registered: list[str],
    timeout: float,
    poll: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    on_wait: Callable[[str], None] | None,
) -> StepReport:
    if cycle.state == "running" and cycle.rollout_id is None:
        missing = next((name for name in registered if cycle.gate(name) is None), None)
        if missing is not None:
            raise ConfigError(
                f"Cycle {cycle.id} has no roll-out yet: its {missing} gate has not run.",
                hint=f"Run `shipyard ct step {cycle.id} {missing}` first; the gates run in "
                f"the order {' → '.join(gate_names())}.",
            )
    deadline = clock() + timeout
    seen = ""
    while True:
        if cycle.state == "running":
            loop.follow(cycle)  # records whatever the roll-out has passed, once
            cycle = get_cycle(loop.store, cycle.id)
            if on_wait is not None and cycle.rollout_id is not None:
                where = _rollout_line(loop, cycle.rollout_id)
                if where != seen:
                    on_wait(where)
                    seen = where
        recorded = cycle.gate(gate)
        if recorded is not None:
            return _report(cycle, gate, recorded)
        if cycle.state != "running":
            return _ended(cycle, gate)
        if clock() >= deadline:
            waited = ", ".join(g for g in ROLLOUT_GATES if cycle.gate(g) is None)
            message = (
                f"cycle {cycle.id}: the roll-out did not pass its {gate} gate within "
                f"{timeout:g} s (still to come: {waited}); is `shipyard agent` running?"
            )
            return StepReport(gate, "timed_out", message, cycle)
        sleep(poll)
        cycle = get_cycle(loop.store, cycle.id)


def _rollout_line(loop: ContinuousTraining, rollout_id: int) -> str:
    """``roll-out 4: step 2/4 (10 % canary), running``: where the roll-out stands."""
    from shipyard.delivery.rollout import get_rollout

    rollout = get_rollout(loop.store, rollout_id)
    kind = "shadow" if rollout.step_index == 0 and rollout.strategy == "shadow-canary" else ""
    kind = kind or "canary"
    return (
        f"roll-out {rollout.id}: step {rollout.step_index + 1}/{len(rollout.steps)} "
        f"({rollout.step:g} % {kind}), {rollout.state}"
    )
