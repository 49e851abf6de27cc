"""The agent: the one process that advances roll-outs, runs monitors and retrains, under a lease.

Each :meth:`Agent.tick` looks at every roll-out in progress. A running one has its
guardrails evaluated over the current step (from the prediction log) and the verdict
applied with :func:`~shipyard.delivery.rollout.advance`: a breach rolls back at once and
alerts are recorded, a pass moves on when the step has lasted and served enough. A
roll-out that finished its steps is promoted with the project's own rules
(:func:`shipyard.governance.promotion.promote`); when those refuse (an approval is
still missing, say) it waits, and the refusal is recorded once. :meth:`Agent.run` ticks
every ``poll`` seconds while it holds the ``agent`` lease, so two agents never act at
once. Each tick also runs the LLM judge when ``llm.judge.schedule`` is due
(:mod:`shipyard.agent.llm_evals`: a regression at the retrain band rolls back), runs the
configured model's monitor when ``monitoring.every_seconds``
is due, ticks continuous training (:mod:`shipyard.pipelines`): follow the running
cycle, or start one on a pending trigger when ``ct.enabled``, and looks for registry
drift (:mod:`shipyard.agent.registry_watch`): an alias moved outside Shipyard pages the
owner. Every ``security.checkpoint_minutes`` it signs a checkpoint of the audit log
(when the project has a private key).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.access import Scope
from shipyard.agent.registry_watch import RegistryWatch
from shipyard.delivery.guardrails import evaluate_guardrails
from shipyard.delivery.lease import Lease, LeaseKeeper
from shipyard.delivery.rollout import Rollout, active_rollouts, advance, complete_rollout
from shipyard.errors import PromotionRefused, ShipyardError
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from shipyard.agent.llm_evals import LlmEvalWatch
    from shipyard.agent.streams import StreamWatch
    from shipyard.pipelines.loop import ContinuousTraining
    from shipyard.project import Project

logger = logging.getLogger(__name__)

_PRUNE_SECONDS = 3600.0  # how often the agent enforces PII retention

__all__ = ["Agent", "TickReport"]


@dataclass
class TickReport:
    """What one tick did, roll-out by roll-out (``model/version: what``)."""

    actions: list[str] = field(default_factory=list)


class Agent:
    """Advances roll-outs from their guardrails; one per control plane at a time."""

    def __init__(self, project: Project, *, poll: float = 1.0) -> None:
        project.authorize(Scope.AGENT_RUN)  # the agent acts under an operator's token
        self.project = project
        self.config = project.config
        self.store = project.store
        self.tracking = project.tracking
        self.poll = poll
        self._refused: set[int] = set()  # roll-outs whose promotion refusal is recorded
        self._ct: ContinuousTraining | None = None
        self._stream_watch: StreamWatch | None = None
        self._next_monitor = 0.0
        self._next_prune = 0.0  # PII retention: at the first tick, then hourly
        self._next_checkpoint = 0.0  # audit checkpoints: looked for once a minute
        self.registry = RegistryWatch(project)  # pages the owner when an alias drifts
        self.llm_evals: LlmEvalWatch | None = None  # the judge runs, for model.task llm
        if self.config.model.task == "llm":
            from shipyard.agent.llm_evals import LlmEvalWatch

            self.llm_evals = LlmEvalWatch(project)

    def tick(self) -> TickReport:
        """One pass over every roll-out in progress."""
        report = TickReport()
        for rollout in active_rollouts(self.store):
            try:
                if rollout.state == "running":
                    self._guard(rollout, report)
                elif rollout.state == "promoting":
                    self._promote(rollout, report)
            except ShipyardError as error:  # one roll-out's trouble must not stop the rest
                logger.warning("roll-out of %s/%s: %s", rollout.model, rollout.candidate, error)
                report.actions.append(f"{rollout.model}/{rollout.candidate}: {error.message}")
        report.actions.extend(self.registry.tick())
        self._monitor(report)
        self._streams(report)
        self._experiments(report)
        self._judge(report)
        self._retention(report)
        self._audit_checkpoint(report)
        self._continuous_training(report)
        return report

    def _monitor(self, report: TickReport) -> None:
        """Run the configured model's monitor when ``monitoring.every_seconds`` is due."""
        every = self.config.monitoring.every_seconds
        now = time.monotonic()
        if every is None or now < self._next_monitor:
            return
        self._next_monitor = now + every
        from shipyard.monitoring.run import run_monitor

        name = self.config.model.name
        try:
            result = run_monitor(self.project, name, report=False)
        except ShipyardError as error:  # no predictions yet, no champion yet: try next time
            logger.debug("monitor of %s: %s", name, error.message)
            return
        if result.level != "ok":
            report.actions.append(f"{name}/{result.version}: monitor level {result.level}")

    def _streams(self, report: TickReport) -> None:
        """Feed the sequential change detectors the rows and labels logged since last time."""
        if self._stream_watch is None:
            from shipyard.agent.streams import StreamWatch

            self._stream_watch = StreamWatch(self.project)
        try:
            report.actions.extend(self._stream_watch.tick())
        except ShipyardError as error:  # no champion or no reference yet: try next time
            logger.debug("sequential detectors: %s", error.message)

    def _experiments(self, report: TickReport) -> None:
        """Decide every running A/B experiment on its evidence so far; act on a decision."""
        from shipyard.agent.experiments import tick_experiments

        try:
            report.actions.extend(tick_experiments(self.project))
        except ShipyardError as error:
            logger.warning("experiments: %s", error.message)
            report.actions.append(f"experiments: {error.message}")

    def _judge(self, report: TickReport) -> None:
        """Run the LLM judge when ``llm.judge.schedule`` is due; act on the LLM bands."""
        if self.llm_evals is None:
            return
        try:
            report.actions.extend(self.llm_evals.tick())
        except ShipyardError as error:  # a failed run is tried again at the next schedule
            logger.warning("LLM judge run: %s", error.message)
            report.actions.append(f"LLM judge run: {error.message}")

    def _retention(self, report: TickReport) -> None:
        """Remove PII past ``pii.retention_days`` (hourly; the logs prune by whole days)."""
        now = time.monotonic()
        if not self.config.pii.retention_days or now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_SECONDS
        from shipyard.logs.pii import PiiPolicy
        from shipyard.logs.prune import prune_logs, record_prune
        from shipyard.logs.root import project_log_root

        try:
            self.project.authorize(Scope.LOGS_PRUNE)
            logs = project_log_root(self.config)
            pruned = prune_logs(PiiPolicy.from_config(self.config), logs)
            record_prune(self.store, pruned)  # audited as the agent, naming what went
        except (ShipyardError, OSError) as error:  # a full disk must not stop the agent
            text = error.message if isinstance(error, ShipyardError) else str(error)
            logger.warning("PII retention: %s", text)
            report.actions.append(f"PII retention: {text}")
            return
        report.actions.extend(f"pruned {item.describe()}" for item in pruned.pruned)

    def _audit_checkpoint(self, report: TickReport) -> None:
        """Sign a checkpoint of the audit log every ``security.checkpoint_minutes``."""
        now = time.monotonic()
        if now < self._next_checkpoint:
            return
        self._next_checkpoint = now + 60.0
        from shipyard.governance.audit import checkpoint_due, write_checkpoint

        try:
            if not checkpoint_due(self.project):  # not yet, or no private key to sign with
                return
            saved = write_checkpoint(self.project)
        except ShipyardError as error:  # a tampered log is refused: say so every time
            logger.warning("audit checkpoint: %s", error.message)
            report.actions.append(f"audit checkpoint: {error.message}")
            return
        report.actions.append(f"audit checkpoint of {saved.size} leaves: {saved.name}")

    def _continuous_training(self, report: TickReport) -> None:
        """Follow the running cycle, or start one on a pending trigger."""
        if not self.config.ct.enabled and self._ct is None:
            from shipyard.pipelines.cycles import active_cycle

            if active_cycle(self.store, self.config.model.name) is None:
                return  # CT off and nothing started by hand to follow
        try:
            if self._ct is None:
                from shipyard.pipelines.loop import ContinuousTraining

                self._ct = ContinuousTraining(self.project)
            report.actions.extend(self._ct.tick())
        except ShipyardError as error:
            logger.warning("continuous training of %s: %s", self.config.model.name, error.message)
            report.actions.append(f"{self.config.model.name}: {error.message}")

    def run(
        self,
        stop: threading.Event,
        lease: Lease | None = None,
        on_action: Callable[[str], None] | None = None,
    ) -> None:
        """Tick every ``poll`` seconds while holding the lease, until ``stop`` is set."""
        tell = on_action or logger.info
        lease = lease or Lease(self.store, "agent", ttl=max(5.0, self.poll * 5))
        while not stop.is_set():
            if not lease.acquire():
                stop.wait(self.poll)
                continue
            with LeaseKeeper(lease) as keeper:
                while not stop.is_set() and not keeper.lost.is_set():
                    for action in self.tick().actions:
                        tell(action)
                    stop.wait(self.poll)
        lease.release()

    def _guard(self, rollout: Rollout, report: TickReport) -> None:
        from shipyard.logs.root import project_log_root

        root = project_log_root(self.config)
        model = self.config.model
        guard = evaluate_guardrails(
            root,
            rollout,
            since=rollout.step_started_at,
            settings=self.config.delivery,
            task=model.classical_task if rollout.model == model.name else None,  # else from the log
            min_log_coverage=self.config.monitoring.min_log_coverage,
        )
        after = advance(
            self.store,
            rollout.model,
            verdict=guard.verdict,
            requests=guard.requests,
            evidence=guard.evidence(),
        )
        label = f"{rollout.model}/{rollout.candidate}"
        if after.state == "rolled_back":
            report.actions.append(
                f"{label}: rolled back at {rollout.describe_step()}: {guard.reason}"
            )
            # Traffic is back with the champion already; now page the owner.
            from shipyard.delivery.notify import notify_rollback

            for delivery in notify_rollback(self.config, self.store, after, guard.evidence()):
                if not delivery.ok:
                    report.actions.append(
                        f"{label}: rollback alert to {delivery.route} failed: {delivery.error}"
                    )
        elif after.state == "promoting":
            report.actions.append(f"{label}: every step passed")
        elif after.step_index != rollout.step_index:
            report.actions.append(f"{label}: on to {after.describe_step()}")

    def _promote(self, rollout: Rollout, report: TickReport) -> None:
        from shipyard.governance.promotion import promote
        from shipyard.registry.refs import ModelRef

        label = f"{rollout.model}/{rollout.candidate}"
        try:
            promote(
                self.project,
                ModelRef(rollout.model, version=rollout.candidate),
                to="champion",
                reason=f"roll-out {rollout.id} passed every step",
            )
        except PromotionRefused as refusal:
            if rollout.id not in self._refused:
                self._refused.add(rollout.id)
                self.store.record(
                    EventKind.ROLLOUT_AWAITING_PROMOTION,
                    f"model:{label}",
                    {"rollout": rollout.id, "refused": refusal.message},
                )
                report.actions.append(f"{label}: waiting to be promoted: {refusal.message}")
            return
        complete_rollout(self.store, rollout.model)
        report.actions.append(f"{label}: promoted to champion")
