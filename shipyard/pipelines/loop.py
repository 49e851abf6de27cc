"""The continuous-training loop: trigger → guards → gates → roll-out → champion or rollback.

:class:`ContinuousTraining` is ticked by the agent. With no cycle running it looks for a
pending trigger (monitoring's ``retrain_requested``, the cron ``ct.schedule``, a new
digest at ``train.data``), asks the guards (cooldown, new rows, performance loss, cost:
:mod:`shipyard.pipelines.guards`), records their decisions on the cycle, and runs it:
validate → retrain → scorecard → feature_skew, each recorded with its evidence; a
failure halts the cycle and pages the owner. A candidate that passes is rolled out
``shadow-canary`` (a shadow step, then ``ct.canary_steps``); while that runs, each tick
follows the roll-out and records the shadow, canary and promote gates as it passes them
or rolls back.
``shipyard retrain NAME`` runs the same cycle by hand.

The cycle is split into the same functions an orchestrator runs one process at a time
(:mod:`shipyard.pipelines.steps`): :meth:`ContinuousTraining.begin` (guards, then the
cycle), :meth:`~ContinuousTraining.run_gate` for each registered gate,
:meth:`~ContinuousTraining.start_rollout`, and :meth:`~ContinuousTraining.follow`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shipyard.access import Scope
from shipyard.errors import ConfigError, DataError, ShipyardError
from shipyard.moments import as_utc
from shipyard.pipelines.cycles import (
    Cycle,
    active_cycle,
    finish_cycle,
    list_cycles,
    record_decision,
    record_gate,
    start_cycle,
    update_cycle,
)
from shipyard.pipelines.evidence import PromotionOutcome, StepOutcome
from shipyard.pipelines.gate_registry import CycleRun, Gate, GateStatus, registered_gates
from shipyard.pipelines.gates import primary_metric  # and registers the built-in gates
from shipyard.pipelines.guards import MIN_LABELLED, GuardDecision, PerformanceLoss, check_guards
from shipyard.pipelines.triggers import (
    DataWatch,
    Trigger,
    drift_trigger,
    next_fire,
    schedule_trigger,
    spent_keys,
)

if TYPE_CHECKING:
    from shipyard.delivery.rollout import Rollout
    from shipyard.pipelines.economics import RetrainEconomics
    from shipyard.project import Project

__all__ = ["ContinuousTraining"]

logger = logging.getLogger(__name__)
Step = Callable[[str], None]
STALE = timedelta(hours=2)  # a cycle with no progress for this long was interrupted


class ContinuousTraining:
    """Finds triggers and runs cycles for the configured model; one tick at a time."""

    def __init__(
        self,
        project: Project,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        project.authorize(Scope.AGENT_RUN, project.config.model.name)
        self.project = project
        self.config = config = project.config
        self.store = project.store
        self.tracking = project.tracking
        self.model = config.model.name
        self._now = now
        self._clock = clock
        self.started_at = now()
        ct = config.ct
        if ct.schedule:
            next_fire(ct.schedule, self.started_at)  # refuse a bad expression at start
        if ct.cost_kpi is not None and ct.cost_kpi not in {kpi.name for kpi in config.kpis}:
            raise ConfigError(
                f"ct.cost_kpi names {ct.cost_kpi!r}, which is not a KPI in kpis.",
                hint="Declare it under kpis: (name, sql), or unset ct.cost_kpi.",
            )
        self.watch = (
            DataWatch(config.resolve(config.train.data), ct.data_check_seconds)
            if config.train.data is not None
            else None
        )
        self._first_digest: str | None = None
        self._reference: dict[str, float | None] = {}

    # -- the agent's entry point -------------------------------------------------------

    def tick(self) -> list[str]:
        """Follow the running cycle, or start one when a trigger is pending."""
        cycle = active_cycle(self.store, self.model)
        if cycle is not None:
            return self.follow(cycle)
        if not self.config.ct.enabled:
            return []
        champion = self._champion()  # one registry look-up per tick, for both steps
        trigger = self._pending(champion)
        if trigger is None:
            return []
        cycle = self._run(trigger, champion)
        return [f"{self.model}: cycle {cycle.id} ({trigger.cause}): {cycle.state} {cycle.reason}"]

    def pending(self) -> Trigger | None:
        """The trigger waiting to be acted on, if any (drift first, then schedule, data)."""
        return self._pending(self._champion())

    def _pending(self, champion: str | None) -> Trigger | None:
        ct = self.config.ct
        cycles = list_cycles(self.store, self.model, limit=50)
        spent = spent_keys(cycles)
        if ct.on_drift:
            found = drift_trigger(self.store, self.model, champion, spent)
            if found is not None:
                return found
        if ct.schedule:
            fired = [
                c.trigger.get("fired_at") for c in cycles if c.trigger.get("kind") == "schedule"
            ]
            last = max([datetime.fromisoformat(f) for f in fired if f] + [self.started_at])
            found = schedule_trigger(ct.schedule, last=last, now=self._now(), spent=spent)
            if found is not None:
                return found
        if ct.on_new_data and self.watch is not None:
            baseline = next(
                (c.trigger.get("source_digest") for c in cycles if c.trigger.get("source_digest")),
                None,
            )
            if baseline is None:
                current = self.watch.digest(self._clock())
                if self._first_digest is None and current is not None:
                    self._first_digest = current[0]
                baseline = self._first_digest
            return self.watch.trigger(self._clock(), baseline, spent)
        return None

    # -- one cycle ---------------------------------------------------------------------

    def run(self, trigger: Trigger, *, force: bool = False, step: Step | None = None) -> Cycle:
        """Guards, then the registered gates (validate → … → feature_skew), then the roll-out."""
        return self._run(trigger, self._champion(), force=force, step=step)

    def _run(
        self,
        trigger: Trigger,
        champion: str | None,
        *,
        force: bool = False,
        step: Step | None = None,
    ) -> Cycle:
        say = step or (lambda _text: None)
        cycle = self._begin(trigger, champion, force=force)
        if cycle.state != "running":
            return cycle  # a guard's refusal, recorded
        try:
            return self._gates(cycle, trigger, champion, say)
        except ShipyardError as error:
            return self.fail(cycle, error)

    def begin(self, trigger: Trigger, *, force: bool = False) -> Cycle:
        """Guards, then open the cycle: running, or the guards' ``skipped`` / ``deferred``.

        The first step of a cycle; ``shipyard ct start`` runs it alone for an orchestrator.
        """
        return self._begin(trigger, self._champion(), force=force)

    def _begin(self, trigger: Trigger, champion: str | None, *, force: bool) -> Cycle:
        decisions: list[GuardDecision] = []
        if not force:
            refused, decisions = self._refusals(trigger, champion)
            if refused is not None:
                return refused
        running = active_cycle(self.store, self.model)
        if running is not None:
            raise ConfigError(
                f"{self.model} already has a cycle running: {running.id} ({running.cause}).",
                hint=f"Follow it with `shipyard ct status {self.model}`.",
            )
        cycle = start_cycle(
            self.store, self.model, trigger.cause, trigger.to_dict(), champion=champion
        )
        if decisions:  # why it went ahead: the cost guard's numbers, among others
            cycle = record_gate(self.store, cycle.id, "guards", "passed", _evidence(decisions))
        return cycle

    def _gates(self, cycle: Cycle, trigger: Trigger, champion: str | None, say: Step) -> Cycle:
        run = CycleRun(self.project, cycle, trigger, champion)
        for number, gate in enumerate(registered_gates(), start=1):
            say(f"Gate {number}: {gate.describe(run)}")
            halted = self.run_gate(run, gate)
            if halted is not None:
                return halted
        return self.start_rollout(run, say)

    def run_gate(self, run: CycleRun, gate: Gate) -> Cycle | None:
        """Run one registered gate and record it; the halted cycle if it failed."""
        result = gate.run(run)
        run.results[gate.name] = result
        evidence = result.evidence.to_dict()
        record_gate(self.store, run.cycle.id, gate.name, result.status, evidence)
        if not result.passed:
            return self._halt(run.cycle, gate.name, result.reason, evidence)
        return None

    def start_rollout(self, run: CycleRun, say: Step | None = None) -> Cycle:
        """After the registered gates: roll the candidate out ``shadow-canary``."""
        ct = self.config.ct
        cycle = run.cycle
        if run.candidate is None:
            raise ConfigError(
                f"No gate of cycle {cycle.id} trained a candidate to roll out.",
                hint="Keep the retrain gate registered.",
            )

        from shipyard.delivery.rollout import start_rollout

        after = len(registered_gates()) + 1
        (say or (lambda _text: None))(
            f"Gates {after}–{after + 2}: shadow, canary steps, promotion "
            "(the agent follows the roll-out)"
        )
        delivery = self.config.delivery
        rollout = start_rollout(
            self.store,
            self.model,
            run.candidate.version,
            champion=run.champion,
            strategy="shadow-canary",
            steps=(100.0, *ct.canary_steps),
            step_seconds=ct.step_seconds if ct.step_seconds is not None else delivery.step_seconds,
            min_requests=ct.min_requests if ct.min_requests is not None else delivery.min_requests,
            context={"cycle": cycle.id, "cause": run.trigger.cause, **run.rollout_context},
        )
        return update_cycle(self.store, cycle.id, rollout_id=rollout.id)

    def fail(self, cycle: Cycle, error: ShipyardError) -> Cycle:
        """End ``cycle`` as ``failed`` by an error (not a verdict), and page the owner."""
        self._page(cycle, f"continuous training failed: {error.message}", {})
        return finish_cycle(self.store, cycle.id, "failed", error.message)

    def follow(self, cycle: Cycle) -> list[str]:
        """Record the roll-out's progress as the shadow, canary and promote gates."""
        from shipyard.delivery.rollout import get_rollout

        if cycle.rollout_id is None:
            if self._now() - as_utc(cycle.updated_at) > STALE:
                finish_cycle(
                    self.store,
                    cycle.id,
                    "failed",
                    "interrupted before its roll-out",
                    if_running=True,
                )
                return [f"{self.model}: cycle {cycle.id} was interrupted"]
            return []
        rollout = get_rollout(self.store, cycle.rollout_id)
        actions: list[str] = []
        past_shadow = rollout.step_index >= 1 or rollout.state in ("promoting", "promoted")
        ended = rollout.state in ("rolled_back", "aborted")
        if cycle.gate("shadow") is None and (past_shadow or ended):
            passed = past_shadow and not (ended and rollout.step_index == 0)
            evidence = _step_evidence(rollout, 1 if passed else 0, last=not passed)
            status: GateStatus = "passed" if passed else "failed"
            record_gate(self.store, cycle.id, "shadow", status, evidence.to_dict(), once=True)
            actions.append(
                f"{self.model}: cycle {cycle.id} shadow {'passed' if passed else 'failed'}"
            )
        canary_done = rollout.state in ("promoting", "promoted")
        if cycle.gate("canary") is None and rollout.step_index >= 1 and (canary_done or ended):
            record_gate(
                self.store,
                cycle.id,
                "canary",
                "passed" if canary_done else "failed",
                _step_evidence(rollout, rollout.step_index, last=True).to_dict(),
                once=True,
            )
        if rollout.state == "promoted":
            promoted = PromotionOutcome(champion=rollout.candidate)
            record_gate(self.store, cycle.id, "promote", "passed", promoted.to_dict(), once=True)
            finish_cycle(
                self.store,
                cycle.id,
                "promoted",
                f"{self.model}/{rollout.candidate} is champion",
                if_running=True,
            )
            actions.append(f"{self.model}: cycle {cycle.id} promoted {rollout.candidate}")
        elif ended:
            record_gate(
                self.store,
                cycle.id,
                "promote",
                "failed",
                PromotionOutcome(rollout=rollout.state, reason=rollout.reason).to_dict(),
                once=True,
            )
            finish_cycle(
                self.store,
                cycle.id,
                "rolled_back",
                f"roll-out {rollout.state}: {rollout.reason}",
                if_running=True,
            )
            actions.append(f"{self.model}: cycle {cycle.id} rolled back: {rollout.reason}")
        return actions

    # -- guards ------------------------------------------------------------------------

    def _refusals(
        self, trigger: Trigger, champion: str | None
    ) -> tuple[Cycle | None, list[GuardDecision]]:
        """The guards' decisions, and the skipped or deferred cycle if one refused."""
        cycles = list_cycles(self.store, self.model, limit=50)
        loss = self.performance_loss(champion)
        started = next((c for c in cycles if c.state not in ("skipped", "deferred")), None)
        rows_now = self._source_rows()
        earlier = next((c for c in cycles if c.trigger.get("key") == trigger.key), None)
        rows_at_trigger = earlier.trigger.get("rows_at_trigger") if earlier else rows_now
        decisions = check_guards(
            self.config,
            now=self._now(),
            last_started=started,
            # Counting new rows may ask the registry: only when that guard is on.
            new_rows=self._new_rows(cycles, champion) if self.config.ct.min_new_rows else None,
            loss=loss,
            rows_after_trigger=(
                None
                if trigger.kind != "drift" or rows_now is None or rows_at_trigger is None
                else rows_now - rows_at_trigger
            ),
            economics=self._economics(champion),
        )
        refused = [d for d in decisions if not d.allowed]
        if not refused:
            return None, decisions
        spends = any(d.spends_trigger for d in refused)
        state: Literal["skipped", "deferred"] = "skipped" if spends else "deferred"
        guards = sorted(d.guard for d in refused)
        latest = cycles[0] if cycles else None
        if (
            latest is not None
            and latest.state == state
            and latest.trigger.get("key") == trigger.key
            and latest.trigger.get("guards") == guards
        ):
            return latest, decisions  # the same decision about the same trigger, once
        reason = "; ".join(d.reason for d in refused)
        evidence = _evidence(decisions)
        return record_decision(
            self.store,
            self.model,
            trigger.cause,
            {**trigger.to_dict(), "guards": guards, "rows_at_trigger": rows_at_trigger},
            state,
            reason,
            evidence,
            champion=champion,
        ), decisions

    def _economics(self, champion: str | None) -> RetrainEconomics | None:
        """Traffic and retrain price for the cost guard, when it is on and can be weighed."""
        if not self.config.ct.cost_guard or champion is None:
            return None
        from shipyard.pipelines.economics import retrain_economics

        try:
            return retrain_economics(self.project, self.model, champion)
        except ShipyardError as error:  # unreadable logs or KPI: the guard says so
            logger.warning("%s: cost guard cannot weigh a retrain: %s", self.model, error)
            return None

    def _source_rows(self) -> int | None:
        if self.watch is None:
            return None
        try:
            current = self.watch.digest(self._clock())
        except DataError:
            return None  # the validate gate reports what is wrong with the data
        return None if current is None else current[1]

    def _new_rows(self, cycles: list[Cycle], champion: str | None) -> int | None:
        rows = self._source_rows()
        if rows is None or champion is None:
            return None
        made = next((c for c in cycles if c.candidate == champion and c.state == "promoted"), None)
        if made is not None and made.trigger.get("source_rows") is not None:
            return rows - int(made.trigger["source_rows"])
        version = self.tracking.client.get_model_version(self.model, champion)
        digest = (version.tags or {}).get("shipyard.data_digest")
        dataset = self.store.dataset(digest) if digest else None
        return None if dataset is None else rows - int(dataset.rows)

    def performance_loss(self, champion: str | None) -> PerformanceLoss | None:
        """The champion's fall in its primary metric: labelled if enough, else estimated."""
        from shipyard.store.monitor_runs import latest_run

        run = latest_run(self.store, self.model)
        if champion is None or run is None or str(run.get("version")) != champion:
            return None
        metric = primary_metric(self.config)
        reference = self._reference_value(champion, metric)
        if reference is None:
            return None
        performance = run.get("performance") or {}
        labelled = int(performance.get("labelled") or 0)
        measured = (performance.get("metrics") or {}).get(metric)
        # The monitor's own threshold (monitoring.min_labelled when it ran) decides both its
        # performance:unknown signal and whether CT trusts the labelled metric.
        needed = int(performance.get("needed") or MIN_LABELLED)
        known = performance.get("status", "measured") == "measured"
        if known and labelled >= needed and measured is not None:
            return PerformanceLoss(
                metric, reference, float(measured), f"labelled ({labelled} rows)"
            )
        estimate = (run.get("estimated") or {}).get(metric) or {}
        if estimate.get("value") is not None:
            unreliable = (
                None
                if estimate.get("reliable", True)
                else str(estimate.get("reason") or "outside the reference's support")
            )
            return PerformanceLoss(
                metric, reference, float(estimate["value"]), "estimated (CBPE)", unreliable
            )
        return None

    def _reference_value(self, champion: str, metric: str) -> float | None:
        if champion not in self._reference:
            version = self.tracking.client.get_model_version(self.model, champion)
            run = self.tracking.client.get_run(version.run_id) if version.run_id else None
            self._reference[champion] = run.data.metrics.get(metric) if run else None
        return self._reference[champion]

    # -- helpers -----------------------------------------------------------------------

    def champion(self) -> str | None:
        """The trusted champion version of the model, if any."""
        return self._champion()

    def _champion(self) -> str | None:
        from shipyard.registry.aliases import CHAMPION
        from shipyard.registry.pointers import trusted_version

        return trusted_version(self.store, self.model, CHAMPION)

    def _halt(self, cycle: Cycle, gate: str, reason: str, evidence: dict[str, Any]) -> Cycle:
        self._page(cycle, f"continuous training halted at {gate}: {reason}", evidence)
        return finish_cycle(self.store, cycle.id, "halted", f"{gate}: {reason}")

    def _page(self, cycle: Cycle, summary: str, evidence: dict[str, Any]) -> None:
        from shipyard.delivery.notify import notify_cycle

        logger.warning("%s: cycle %s: %s", self.model, cycle.id, summary)
        latest = next(
            (c for c in list_cycles(self.store, self.model, limit=5) if c.id == cycle.id), cycle
        )
        notify_cycle(
            self.config,
            self.store,
            cycle=cycle.id,
            model=self.model,
            version=latest.candidate,
            headline=f"cycle {cycle.id} ({cycle.cause}): {summary}",
            evidence=evidence,
        )


def _evidence(decisions: list[GuardDecision]) -> dict[str, Any]:
    """The guards' decisions as a cycle's ``guards`` evidence, by guard name."""
    return {d.guard: {"allowed": d.allowed, "reason": d.reason, **d.evidence} for d in decisions}


def _step_evidence(rollout: Rollout, index: int, *, last: bool = False) -> StepOutcome:
    """The history entry that entered step ``index`` (or the last one there)."""
    entries = [e for e in rollout.history if e.get("step_index") == index]
    entry = (entries[-1] if last else entries[0]) if entries else {}
    return StepOutcome(
        rollout=rollout.id,
        step=index,
        state=rollout.state,
        reason=entry.get("reason"),
        evidence=entry.get("evidence"),
    )
