"""The agent's judge runs: nightly LLM-as-judge, the LLM bands, and rollback on a regression.

When ``llm.judge.schedule`` (cron, UTC; nightly by default) is due - or at once when the
model was never judged - :meth:`LlmEvalWatch.tick`:

1. judges the champion on the gold set and on a sample of its production answers, and
   the candidate of a roll-out in progress on the gold set
   (:func:`shipyard.llm.evals.evaluate_llm`);
2. reads the LLM signals (:func:`shipyard.llm.signals.llm_signals`: judge score,
   guardrail hit rate, hallucination rate against ``llm.bands``; judge drift) and hands
   them to :class:`~shipyard.monitoring.alerting.Alerter`, which opens, escalates or
   resolves alerts through ``monitoring.routes``; every breach is recorded as
   ``llm.breach``;
3. acts on a breach of the judge, guardrail or hallucination band at ``retrain`` or
   worse: the roll-out's candidate is rolled back (the roll-out stops, traffic goes back
   to the champion, the owner is paged as for a guardrail rollback); a champion that
   replaced an earlier one goes back to it (:func:`shipyard.registry.aliases.rollback`:
   the previous prompt or model version, served within the servers' poll; the prompt's
   ``production`` label goes back too when it still names the regressed prompt
   version), audited (``alias.rollback``, ``prompt.labelled``) and paged. Judge drift (a
   fall in kappa) only alerts: it says the judge, not the version, is in doubt.

A judge run that cannot happen (no gold set, no provider, nothing served this week) is
reported in the tick and tried again next time; it never stops the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.access import Scope
from shipyard.errors import ShipyardError
from shipyard.levels import is_alert_level, rank
from shipyard.llm.evals import EvalKind, evaluate_llm
from shipyard.llm.evals_store import list_runs
from shipyard.llm.signals import LlmSignal, llm_signals
from shipyard.registry.aliases import CHAMPION, alias_moves, rollback, rollback_targets
from shipyard.registry.pointers import trusted_version
from shipyard.registry.refs import ModelRef
from shipyard.store import EventKind, RolloutRow

if TYPE_CHECKING:
    from shipyard.delivery.rollout import Rollout
    from shipyard.models.llm import ChatCall
    from shipyard.monitoring.alerting import Route, Signal
    from shipyard.project import Project

logger = logging.getLogger(__name__)

__all__ = ["ACTING", "LlmEvalWatch"]

ACTING = ("llm:judge", "llm:guardrail", "llm:hallucination")  # judge drift only alerts


def _now() -> datetime:
    return datetime.now(UTC)


class LlmEvalWatch:
    """Runs the judge on schedule for the project's LLM model and acts on its bands."""

    def __init__(
        self,
        project: Project,
        *,
        chat: ChatCall | None = None,
        clock: Callable[[], datetime] = _now,
        routes: Sequence[Route] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.project = project
        self.config = project.config
        self.model = project.config.model.name
        self._chat = chat
        self._clock = clock
        self._routes = routes
        self._environ = environ
        self._next: datetime | None = None

    def due(self, now: datetime) -> bool:
        """Whether a run is due: the model was never judged, or the schedule fired since."""
        from shipyard.pipelines.triggers import next_fire

        if self._next is None:
            last = list_runs(self.project.store, self.model, limit=1)
            if not last:
                return True
            self._next = next_fire(self.config.llm.judge.schedule, last[0].created_at)
        return now >= self._next

    def tick(self) -> list[str]:
        """Run when due; what was done."""
        if self.config.model.task != "llm":
            return []
        now = self._clock()
        if not self.due(now):
            return []
        from shipyard.pipelines.triggers import next_fire

        self._next = next_fire(self.config.llm.judge.schedule, now)
        return self.run()

    def run(self) -> list[str]:
        """One pass now: judge, signal, alert, act."""
        from shipyard.delivery.rollout import active_rollout

        store, name = self.project.store, self.model
        actions: list[str] = []
        champion = trusted_version(store, name, CHAMPION)
        rollout = active_rollout(store, name)
        candidate = rollout.candidate if rollout and rollout.state != "promoting" else None
        chat = self._chat or self._pool()
        if chat is None:
            return [f"{name}: judge run skipped: no llm.providers configured"]
        judged = [v for v in (champion, candidate) if v is not None]
        for version in judged:
            kinds: tuple[EvalKind, ...] = (
                ("gold", "production") if version == champion else ("gold",)
            )
            for kind in kinds:
                try:
                    run = evaluate_llm(
                        self.project,
                        ModelRef(name, version),
                        kind=kind,
                        chat=chat,
                        clock=self._clock,
                    )
                except ShipyardError as error:
                    actions.append(f"{name}/{version}: {kind} judge run: {error.message}")
                    continue
                shown = "n/a" if run.score is None else f"{run.score:.2f}"
                actions.append(f"{name}/{version}: {kind} judge score {shown} ({run.rows} rows)")
        previous = _previous_champion(self.project, name)
        for version in judged:
            signals = llm_signals(
                store,
                self.config.llm.bands,
                name,
                version,
                champion=champion,
                previous_champion=previous if version == champion else None,
            )
            actions.extend(self._act(version, signals, champion, rollout, previous))
        return actions

    def _pool(self) -> ChatCall | None:
        import os

        from shipyard.llm.evals import pool_chat

        if not self.config.llm.providers:
            return None
        self._chat = pool_chat(self.project, os.environ if self._environ is None else self._environ)
        return self._chat

    def _act(
        self,
        version: str,
        signals: list[LlmSignal],
        champion: str | None,
        rollout: Rollout | None,
        previous: str | None,
    ) -> list[str]:
        from shipyard.monitoring.alerting import Alerter

        store, name = self.project.store, self.model
        candidate = version != champion
        alerter = Alerter(self.config, store, routes=self._routes, environ=self._environ)
        alerter.process([_signal(s, candidate) for s in signals if s.level != "unknown"])
        breaches = [s for s in signals if is_alert_level(s.level)]
        acting = [s for s in breaches if s.name in ACTING and rank(s.level) >= rank("retrain")]
        action = None
        if acting:
            reason = "; ".join(_describe(s) for s in acting)
            if candidate and rollout is not None and rollout.candidate == version:
                action = self._stop_rollout(rollout, reason, acting)
            elif not candidate and previous is not None:
                action = self._roll_back(version, previous, reason)
        for signal in breaches:
            store.record(
                EventKind.LLM_BREACH,
                f"model:{name}/{version}",
                {
                    "signal": signal.name,
                    "level": signal.level,
                    "value": signal.value,
                    "bands": list(signal.bands),
                    "evidence": signal.evidence,
                    "role": "candidate" if candidate else "champion",
                    "action": action if signal in acting else None,
                },
            )
        found = [f"{name}/{version}: {_describe(s)}" for s in breaches]
        return found + ([f"{name}/{version}: {action}"] if action else [])

    def _stop_rollout(self, rollout: Rollout, reason: str, acting: list[LlmSignal]) -> str:
        from shipyard.delivery.notify import notify_rollback
        from shipyard.delivery.rollout import abort_rollout, advance

        self.project.authorize(Scope.MODELS_DEPLOY, rollout.model)
        evidence: dict[str, Any] = {
            "reason": f"LLM judge: {reason}",
            "checks": {
                s.name: {"value": s.value, "level": s.level, "bands": list(s.bands)} for s in acting
            },
        }
        if rollout.state == "running":
            after = advance(
                self.project.store, rollout.model, verdict="breach", requests=0, evidence=evidence
            )
        else:  # paused: stop it all the same
            after = abort_rollout(self.project.store, rollout.model, str(evidence["reason"]))
        notify_rollback(
            self.config,
            self.project.store,
            after,
            evidence,
            routes=self._routes,
            environ=self._environ,
        )
        back = rollout.champion or "no version"
        return f"roll-out {rollout.id} rolled back to {rollout.model}/{back}: {reason}"

    def _roll_back(self, version: str, previous: str, reason: str) -> str:
        from shipyard.delivery.notify import notify_rollback

        name = self.model
        self.project.authorize(Scope.MODELS_DEPLOY, name)
        move = rollback(
            self.project.store, None, name, reason=f"LLM judge on {name}/{version}: {reason}"
        )
        label = self._prompt_back(version, move.to_version, reason)
        came_in = _last_rollout(self.project, name, version)
        if came_in is not None:  # page as for a roll-out's rollback, with the judge's evidence
            notify_rollback(
                self.config,
                self.project.store,
                came_in,
                {"reason": f"LLM judge after the roll-out: {reason}"},
                routes=self._routes,
                environ=self._environ,
            )
        return f"champion rolled back from {version} to {move.to_version}{label}: {reason}"

    def _prompt_back(self, bad: str, back: str | None, reason: str) -> str:
        """Move the prompt's ``production`` label back too when it still names the
        regressed version's prompt (so a new version does not pick it up again)."""
        from shipyard.llm.prompts import PRODUCTION, label_prompt
        from shipyard.models.llm import load_llm
        from shipyard.registry import mlflow_tables

        if back is None:
            return ""
        client = self.project.tracking.client
        try:
            worse = load_llm(client, self.model, bad).spec
            better = load_llm(client, self.model, back).spec
            if not worse.prompt or worse.prompt != better.prompt:
                return ""
            if worse.prompt_version == better.prompt_version:
                return ""
            with self.project.store.session() as session:
                labelled = mlflow_tables.get_alias(session, worse.prompt, PRODUCTION)
            if labelled != worse.prompt_version:
                return ""
            label_prompt(
                self.project, worse.prompt, PRODUCTION, better.prompt_version,
                f"LLM judge rolled {self.model} back to {back}: {reason}", action="rollback",
            )  # fmt: skip
        except ShipyardError as error:
            logger.warning("prompt label rollback: %s", error.message)
            return f" (prompt label not moved: {error.message})"
        moved = f"{worse.prompt_version} to {better.prompt_version}"
        return f" and {worse.prompt}@{PRODUCTION} from {moved}"


def _signal(signal: LlmSignal, candidate: bool) -> Signal:
    from shipyard.monitoring.alerting import Signal
    from shipyard.monitoring.results import Bands

    level = signal.level if is_alert_level(signal.level) else None
    name = f"{signal.name}@v{signal.version}" if candidate else signal.name
    return Signal(
        signal.model,
        signal.version,
        name,
        level,
        signal.value,
        Bands(*signal.bands),
        signal.evidence,
    )


def _describe(signal: LlmSignal) -> str:
    value = "n/a" if signal.value is None else f"{signal.value:.3g}"
    what = {
        "llm:judge": "judge score fell by",
        "llm:guardrail": "guardrail hit rate rose by (relative)",
        "llm:hallucination": "hallucination rate rose by",
        "llm:kappa": "judge kappa fell by",
    }.get(signal.name, signal.name)
    return f"{what} {value} ({signal.level} band {signal.bands})"


def _previous_champion(project: Project, name: str) -> str | None:
    stack = rollback_targets(alias_moves(project.store, name, CHAMPION))
    return stack[-2] if len(stack) >= 2 else None


def _last_rollout(project: Project, name: str, version: str) -> Rollout | None:
    from shipyard.delivery.rollout import get_rollout

    query = (
        select(RolloutRow.id)
        .where(RolloutRow.model == name, RolloutRow.candidate == version)
        .order_by(RolloutRow.id.desc())
        .limit(1)
    )
    with project.store.session() as session:
        found = session.scalar(query)
    return None if found is None else get_rollout(project.store, found)
