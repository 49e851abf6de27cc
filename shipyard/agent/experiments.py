"""The agent's pass over A/B experiments: look at the evidence, decide, act, audit.

At every tick, each ``running`` experiment's arms are read from the logs and tested
(:func:`~shipyard.delivery.experiments.decide_experiment`, always valid: looking every
tick does not raise false winners). Only a verdict is recorded, so a long experiment
does not flood the audit log:

- **winner**: ``experiment.decided`` with the numbers, state ``decided``. With
  ``experiments.promote_winner`` the winner then goes through the normal gates
  (:func:`~shipyard.governance.promotion.promote`: scorecard, approvals, separation
  of duties). Promoted: ``experiment.promoted``, all traffic to the new champion. A
  winner that is already the champion needs no promotion: ``experiment.stopped``,
  traffic back to it. Refused: the experiment *waits* in ``decided`` with its split
  as it was, the refusal recorded once (``experiment.decided`` again, with the
  refusal), and the agent tries again each tick, so an approval given later promotes
  it; a person may end it with ``shipyard experiment stop``. Without
  ``promote_winner`` it waits in ``decided`` for a person.
- **no difference**: ``experiment.decided``, then ``experiment.stopped`` with all
  traffic back to the champion.

An experiment whose arms no longer include the champion (someone promoted or rolled
back by hand meanwhile) is stopped, its traffic cleared: its split was the old
champion's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.errors import PromotionRefused, ShipyardError
from shipyard.store import EventKind
from shipyard.store.experiments import Experiment, change_experiment, list_experiments
from shipyard.store.traffic import TrafficSettings

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["tick_experiments"]


def tick_experiments(project: Project) -> list[str]:
    """Decide every running experiment on its evidence so far; what was done."""
    actions: list[str] = []
    for experiment in reversed(list_experiments(project.store, active_only=True)):
        label = f"{experiment.model} experiment {experiment.name}"
        try:
            if experiment.state == "running":
                actions.extend(_decide(project, experiment, label))
            elif experiment.state == "decided" and project.config.experiments.promote_winner:
                actions.extend(_promote(project, experiment, label))
        except ShipyardError as error:  # one experiment's trouble must not stop the rest
            actions.append(f"{label}: {error.message}")
    return actions


def _decide(project: Project, experiment: Experiment, label: str) -> list[str]:
    from shipyard.delivery.experiments import decide_experiment
    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version

    champion = trusted_version(project.store, experiment.model, CHAMPION)
    if champion not in experiment.arms:  # promoted or rolled back by hand meanwhile
        change_experiment(
            project.store,
            experiment.id,
            EventKind.EXPERIMENT_STOPPED,
            state="stopped",
            reason=f"the champion is now {champion}, not one of the arms",
            traffic=TrafficSettings(),
        )
        return [f"{label}: stopped, the champion {champion} is not one of its arms"]
    verdict = decide_experiment(project, experiment)
    if verdict.outcome == "continue":
        return []
    store = project.store
    decided = change_experiment(
        store,
        experiment.id,
        EventKind.EXPERIMENT_DECIDED,
        state="decided",
        reason=verdict.reason,
        evidence=verdict.to_dict(),
        winner=verdict.winner,
        decision={**experiment.decision, **verdict.to_dict()},
    )
    if verdict.outcome == "no_difference":
        change_experiment(
            store,
            experiment.id,
            EventKind.EXPERIMENT_STOPPED,
            state="stopped",
            reason="no difference: traffic back to the champion",
            traffic=TrafficSettings(),
        )
        return [f"{label}: no difference ({verdict.reason}); traffic back to the champion"]
    actions = [f"{label}: arm {verdict.winner} wins ({verdict.reason})"]
    if project.config.experiments.promote_winner:
        actions.extend(_promote(project, decided, label))
    return actions


def _promote(project: Project, experiment: Experiment, label: str) -> list[str]:
    from shipyard.governance.promotion import promote
    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version
    from shipyard.registry.refs import ModelRef

    store, winner = project.store, experiment.winner
    assert winner is not None  # only a winner is "decided"
    if trusted_version(store, experiment.model, CHAMPION) == winner:
        change_experiment(
            store,
            experiment.id,
            EventKind.EXPERIMENT_STOPPED,
            state="stopped",
            reason=f"the champion {winner} won; it stays champion",
            traffic=TrafficSettings(),
        )
        return [f"{label}: the champion {winner} won and stays; traffic back to it"]
    reason = f"won experiment {experiment.name} on {experiment.metric}"
    try:
        promote(project, ModelRef(experiment.model, version=winner), to=CHAMPION, reason=reason)
    except PromotionRefused as refused:
        recorded = experiment.decision.get("promotion_refused")
        if recorded == refused.message:
            return []  # recorded already: wait quietly for an approval or a stop
        change_experiment(
            store,
            experiment.id,
            EventKind.EXPERIMENT_DECIDED,
            state="decided",
            reason=f"promotion refused, waiting: {refused.message}",
            evidence={"refused": refused.message, "hint": refused.hint},
            decision={**experiment.decision, "promotion_refused": refused.message},
        )
        return [f"{label}: {winner} is waiting to be promoted ({refused.message})"]
    change_experiment(
        store,
        experiment.id,
        EventKind.EXPERIMENT_PROMOTED,
        state="promoted",
        reason=reason,
        traffic=TrafficSettings(),  # the new champion takes all traffic
    )
    return [f"{label}: {winner} promoted to champion"]
