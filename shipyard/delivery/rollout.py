"""Roll-outs: a candidate's way from first traffic to champion, as a state machine.

A roll-out lives in ``shipyard_rollouts``; servers never read it. Each step it enters
writes the traffic settings servers follow (``shipyard_deployments``):

- **canary**: the candidate is a challenger with the step's share of live traffic
  (default steps 10 %, 50 %, 100 %);
- **shadow**: the candidate sees copies of the step's share of requests, answering none;
- **bluegreen**: a shadow validation step, then all traffic to the candidate at once;
  a breach switches it all back;
- **shadow-canary**: a shadow step, then canary steps (what continuous training uses).

States: ``running`` → (``paused`` ⇄ ``running``) → ``promoting`` → ``promoted``; or
``rolled_back`` (a guardrail breached) or ``aborted`` (by hand). The champion keeps its
alias, and takes back all traffic on a rollback or abort, until the candidate is
promoted; the promotion itself (with the project's approval rules) is the caller's.
:func:`advance` is the one decision the agent makes at every poll: given the guardrail
verdict for the current step, stay, roll back, move to the next step, or hand over for
promotion. Every transition is appended to the roll-out's history and recorded as an
event, in one transaction with the row and the traffic it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from shipyard.errors import ConfigError, NotFoundError
from shipyard.moments import as_utc
from shipyard.store import EventKind, RolloutRow, kind_of
from shipyard.store.bound_rows import bound_digest, record_row
from shipyard.store.traffic import TrafficSettings, write_traffic

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = [
    "ACTIVE",
    "DEFAULT_STEPS",
    "Rollout",
    "Strategy",
    "abort_rollout",
    "active_rollout",
    "active_rollouts",
    "advance",
    "complete_rollout",
    "get_rollout",
    "pause_rollout",
    "resume_rollout",
    "start_rollout",
    "step_kind",
    "traffic_for",
]

Strategy = Literal["canary", "shadow", "bluegreen", "shadow-canary"]
State = Literal["running", "paused", "promoting", "promoted", "rolled_back", "aborted"]
ACTIVE: tuple[State, ...] = ("running", "paused", "promoting")
DEFAULT_STEPS: dict[str, tuple[float, ...]] = {
    "canary": (10.0, 50.0, 100.0),
    "shadow": (100.0,),
    "bluegreen": (100.0, 100.0),  # validate in shadow, then switch everything
    "shadow-canary": (100.0, 10.0, 50.0, 100.0),  # shadow first, then canary steps
}


@dataclass(frozen=True)
class Rollout:
    """A roll-out as stored."""

    id: int
    model: str
    candidate: str
    champion: str | None
    strategy: Strategy
    steps: tuple[float, ...]
    step_index: int
    step_seconds: float
    min_requests: int
    state: State
    reason: str
    step_started_at: datetime
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def step(self) -> float:
        """The current step's traffic percentage."""
        return self.steps[self.step_index]

    @property
    def last_step(self) -> bool:
        """Whether the current step is the final one."""
        return self.step_index == len(self.steps) - 1

    def remaining(self, now: datetime) -> float:
        """Seconds left in the current step (0 when its duration has passed)."""
        elapsed = (as_utc(now) - as_utc(self.step_started_at)).total_seconds()
        return max(0.0, self.step_seconds - elapsed)

    def describe_step(self) -> str:
        """Human form of the current step, e.g. ``canary 50 %`` or ``shadow 100 %``."""
        kind = step_kind(self.strategy, self.step_index)
        return f"{kind} {self.step:g} %"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "id": self.id,
            "model": self.model,
            "candidate": self.candidate,
            "champion": self.champion,
            "strategy": self.strategy,
            "steps": list(self.steps),
            "step_index": self.step_index,
            "step": self.describe_step(),
            "step_seconds": self.step_seconds,
            "min_requests": self.min_requests,
            "state": self.state,
            "reason": self.reason,
            "step_started_at": as_utc(self.step_started_at).isoformat(),
            "history": list(self.history),
        }


def traffic_for(
    strategy: str, steps: tuple[float, ...], index: int, candidate: str
) -> TrafficSettings:
    """The traffic settings of step ``index`` of a roll-out."""
    share = steps[index] / 100.0
    if step_kind(strategy, index) == "shadow":
        return TrafficSettings(shadow=candidate, shadow_share=share)
    return TrafficSettings(challengers={candidate: share})


def start_rollout(
    store: Store,
    model: str,
    candidate: str,
    *,
    champion: str | None,
    strategy: Strategy = "canary",
    steps: tuple[float, ...] | None = None,
    step_seconds: float = 600.0,
    min_requests: int = 500,
    now: datetime | None = None,
    context: dict[str, Any] | None = None,
) -> Rollout:
    """Start rolling ``candidate`` out: check the plan, enter its first step.

    ``context`` (e.g. the continuous-training cycle and its evaluation report) is kept
    with the first history entry and travels with any rollback alert.
    """
    if strategy not in DEFAULT_STEPS:
        raise ConfigError(
            f"Unknown roll-out strategy {strategy!r}.",
            hint="Use canary, shadow, bluegreen or shadow-canary.",
        )
    chosen = tuple(float(s) for s in (steps or DEFAULT_STEPS[strategy]))
    _check_plan(strategy, chosen, step_seconds, min_requests)
    if candidate == champion:
        raise ConfigError(
            f"{model}/{candidate} is already the champion.",
            hint="Roll out a different version.",
        )
    running = active_rollout(store, model)
    if running is not None:
        raise ConfigError(
            f"{model} already has a roll-out in progress: {running.candidate} "
            f"({running.state}, {running.describe_step()}).",
            hint=f"Finish it first: `shipyard rollout abort {model}` or `… promote {model}`.",
        )
    from shipyard.store.experiments import active_experiment

    experiment = active_experiment(store, model)
    if experiment is not None:  # a roll-out would overwrite the experiment's traffic split
        raise ConfigError(
            f"{model} has an A/B experiment in progress: {experiment.name} ({experiment.state}).",
            hint=f"Let it decide, or stop it first: `shipyard experiment stop {model}`.",
        )
    moment = as_utc(now or datetime.now(UTC))
    row = RolloutRow(
        model=model,
        candidate=candidate,
        champion=champion,
        strategy=strategy,
        steps=list(chosen),
        step_index=0,
        step_seconds=float(step_seconds),
        min_requests=int(min_requests),
        state="running",
        reason="",
        step_started_at=moment,
        history=[_entry(moment, None, "running", 0, "started", dict(context or {}))],
        created_at=moment,
        updated_at=moment,
    )
    with store.session() as session:  # the row, its traffic and their leaves: all or nothing
        session.add(row)
        session.flush()
        write_traffic(store, model, traffic_for(strategy, chosen, 0, candidate), session=session)
        rollout = _rollout(row)
        record_row(
            store, session, EventKind.ROLLOUT_STARTED, f"model:{model}/{candidate}",
            rollout.to_dict(), row,
        )  # fmt: skip
        return rollout


def active_rollout(store: Store, model: str) -> Rollout | None:
    """The roll-out of ``model`` that is running, paused or promoting, if any."""
    query = (
        select(RolloutRow)
        .where(RolloutRow.model == model, RolloutRow.state.in_(ACTIVE))
        .order_by(RolloutRow.id.desc())
        .limit(1)
    )
    with store.session() as session:
        row = session.scalar(query)
        return None if row is None else _rollout(row)


def get_rollout(store: Store, rollout_id: int) -> Rollout:
    """The roll-out with this id, whatever its state."""
    with store.session() as session:
        row = session.get(RolloutRow, rollout_id)
        if row is None:
            raise NotFoundError(
                f"Roll-out {rollout_id} does not exist.", hint="See `shipyard rollout status`."
            )
        return _rollout(row)


def active_rollouts(store: Store) -> list[Rollout]:
    """Every roll-out in progress, of any model."""
    query = select(RolloutRow).where(RolloutRow.state.in_(ACTIVE)).order_by(RolloutRow.id)
    with store.session() as session:
        return [_rollout(row) for row in session.scalars(query)]


def advance(
    store: Store,
    model: str,
    *,
    verdict: Literal["continue", "breach", "pass"],
    requests: int,
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Rollout:
    """Apply one guardrail verdict for the current step; returns the roll-out after it.

    ``breach`` rolls back at once. ``pass`` moves on only when the step has lasted its
    duration and seen ``min_requests`` requests: to the next step, or, after the last,
    to ``promoting`` (the caller then promotes and calls :func:`complete_rollout`).
    ``continue``, or ``pass`` before then, keeps the step.
    """
    moment = as_utc(now or datetime.now(UTC))
    rollout = _require(store, model)
    if rollout.state != "running":
        return rollout
    evidence = dict(evidence or {}, requests=requests)
    if verdict == "breach":
        reason = str(evidence.get("reason") or "a guardrail breached")
        return _finish(store, rollout, "rolled_back", reason, evidence, moment)
    enough = requests >= rollout.min_requests and rollout.remaining(moment) <= 0
    if verdict != "pass" or not enough:
        return rollout
    if rollout.last_step:
        return _transition(store, rollout, "promoting", "every step passed", evidence, moment)
    index = rollout.step_index + 1
    return _transition(
        store,
        rollout,
        "running",
        f"step {index} passed",
        evidence,
        moment,
        step_index=index,
        traffic=traffic_for(rollout.strategy, rollout.steps, index, rollout.candidate),
    )


def pause_rollout(
    store: Store, model: str, reason: str = "", now: datetime | None = None
) -> Rollout:
    """Hold the roll-out at its current step; traffic stays as it is."""
    rollout = _require(store, model, states=("running",))
    moment = as_utc(now or datetime.now(UTC))
    return _transition(store, rollout, "paused", reason or "paused by hand", {}, moment)


def resume_rollout(store: Store, model: str, now: datetime | None = None) -> Rollout:
    """Carry on from the step it was paused at; the step's clock starts again."""
    rollout = _require(store, model, states=("paused",))
    moment = as_utc(now or datetime.now(UTC))
    return _transition(store, rollout, "running", "resumed", {}, moment, restart_clock=True)


def abort_rollout(
    store: Store, model: str, reason: str = "", now: datetime | None = None
) -> Rollout:
    """Stop the roll-out; all traffic goes back to the champion."""
    rollout = _require(store, model)
    moment = as_utc(now or datetime.now(UTC))
    return _finish(store, rollout, "aborted", reason or "aborted by hand", {}, moment)


def complete_rollout(store: Store, model: str, now: datetime | None = None) -> Rollout:
    """Mark the roll-out promoted (after the candidate became champion); clear its traffic."""
    rollout = _require(store, model)
    moment = as_utc(now or datetime.now(UTC))
    return _finish(store, rollout, "promoted", "candidate promoted to champion", {}, moment)


def _check_plan(strategy: str, steps: tuple[float, ...], seconds: float, requests: int) -> None:
    hint = "Give steps as rising percentages, e.g. 10,50,100."
    if not steps or any(not 0 < s <= 100 for s in steps):
        raise ConfigError(f"Roll-out steps {list(steps)} must lie in (0, 100].", hint=hint)
    canary = list(steps[1:] if strategy == "shadow-canary" else steps)
    if strategy in ("canary", "shadow-canary") and canary != sorted(canary):
        raise ConfigError(f"Canary steps {canary} must not go down.", hint=hint)
    if strategy == "shadow-canary" and len(steps) < 2:
        raise ConfigError(
            "A shadow-canary roll-out needs a shadow step and at least one canary step.",
            hint="E.g. --steps 100,10,50,100 (shadow 100 %, then canary 10, 50, 100 %).",
        )
    if strategy == "bluegreen" and len(steps) != 2:
        raise ConfigError(
            "A blue/green roll-out has two steps: validate in shadow, then switch.",
            hint="Leave --steps out for blue/green.",
        )
    if seconds < 0 or requests < 0:
        raise ConfigError(
            "Step duration and minimum requests must not be negative.",
            hint="E.g. --step-duration 10m --min-requests 500.",
        )


def step_kind(strategy: str, index: int) -> str:
    """``shadow`` when step ``index`` copies traffic, ``canary`` or ``live`` when it serves."""
    if strategy == "shadow" or (strategy in ("bluegreen", "shadow-canary") and index == 0):
        return "shadow"
    return "live" if strategy == "bluegreen" else "canary"


def _require(store: Store, model: str, states: tuple[str, ...] = ACTIVE) -> Rollout:
    rollout = active_rollout(store, model)
    if rollout is None or rollout.state not in states:
        now = "no roll-out in progress" if rollout is None else f"its roll-out is {rollout.state}"
        raise NotFoundError(
            f"{model}: {now}.",
            hint=f"See `shipyard rollout status {model}`; start one with `shipyard rollout start`.",
        )
    return rollout


def _finish(
    store: Store,
    rollout: Rollout,
    state: State,
    reason: str,
    evidence: dict[str, Any],
    moment: datetime,
) -> Rollout:
    # The champion (or, once promoted, the new champion) takes all traffic back.
    return _transition(store, rollout, state, reason, evidence, moment, traffic=TrafficSettings())


def _transition(
    store: Store,
    rollout: Rollout,
    state: State,
    reason: str,
    evidence: dict[str, Any],
    moment: datetime,
    *,
    step_index: int | None = None,
    restart_clock: bool = False,
    traffic: TrafficSettings | None = None,
) -> Rollout:
    """Move the roll-out to ``state`` (writing ``traffic`` first, if given): one transaction
    with the leaves that vouch for both."""
    kind = kind_of(f"rollout.{state}")
    index = rollout.step_index if step_index is None else step_index
    entry = _entry(moment, rollout.state, state, index, reason, evidence)
    with store.session() as session:
        if traffic is not None:
            write_traffic(store, rollout.model, traffic, session=session, reason=reason)
        row = session.get(RolloutRow, rollout.id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"Roll-out {rollout.id} disappeared.", hint="Start it again.")
        before = bound_digest(row)
        row.state = state
        row.reason = reason
        row.step_index = index
        if step_index is not None or restart_clock:
            row.step_started_at = moment
        row.history = [*row.history, entry]
        row.updated_at = moment
        record_row(
            store, session, kind, f"model:{rollout.model}/{rollout.candidate}", entry, row,
            before=before, reason=reason,
        )  # fmt: skip
        return _rollout(row)


def _entry(
    moment: datetime, old: str | None, new: str, step: int, reason: str, evidence: dict[str, Any]
) -> dict[str, Any]:
    return {
        "at": moment.isoformat(),
        "from": old,
        "to": new,
        "step_index": step,
        "reason": reason,
        "evidence": evidence,
    }


def _rollout(row: RolloutRow) -> Rollout:
    return Rollout(
        id=row.id,
        model=row.model,
        candidate=row.candidate,
        champion=row.champion,
        strategy=row.strategy,  # type: ignore[arg-type]
        steps=tuple(float(s) for s in row.steps),
        step_index=row.step_index,
        step_seconds=row.step_seconds,
        min_requests=row.min_requests,
        state=row.state,  # type: ignore[arg-type]
        reason=row.reason,
        step_started_at=as_utc(row.step_started_at),
        history=tuple(row.history or ()),
    )
