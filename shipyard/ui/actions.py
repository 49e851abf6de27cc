"""What the dashboard's buttons do: roll back, pause or resume a roll-out, audited.

Each action runs the CLI's own path: a :class:`~shipyard.project.Project` whose principal
is the visitor's (so the event log names the token's actor, id and role), then
``project.authorize(Scope.MODELS_DEPLOY, model)``, then the same domain function the
command calls (``shipyard rollback``: :func:`shipyard.registry.aliases.rollback`;
``shipyard rollout pause`` / ``resume``: :func:`shipyard.delivery.rollout.pause_rollout` /
:func:`~shipyard.delivery.rollout.resume_rollout`). There is no second way to move a
pointer.

    result = run_action(base_project, visitor.principal, "rollback", "churn", reason="p99")
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.access import Principal, Scope
from shipyard.errors import NotFoundError
from shipyard.project import Project

__all__ = ["ACTIONS", "ActionResult", "acting_project", "run_action"]

MAX_REASON = 500  # characters kept of a reason typed into the form


@dataclass(frozen=True)
class ActionResult:
    """What an action did: its name, the model, and the domain record it returned."""

    action: str
    model: str
    record: dict[str, Any]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return {
            "action": self.action,
            "model": self.model,
            "summary": self.summary,
            "result": self.record,
        }


def acting_project(base: Project, principal: Principal) -> Project:
    """``base``'s configuration and database, acting as ``principal``.

    The store shares ``base``'s connection pool; only who its events name changes, so an
    action costs no new engine.
    """
    store = copy.copy(base.store)
    store.actor, store.token_id, store.role = principal.name, principal.token_id, principal.role
    project = Project(base.config, principal)
    project.__dict__["store"] = store  # Project.store is a cached property
    return project


def _rollback(project: Project, model: str, reason: str, to: str | None) -> ActionResult:
    from shipyard.registry.aliases import rollback

    move = rollback(project.store, None, model, to=to or None, reason=reason)
    summary = f"{model}@champion → {move.to_version} (was {move.from_version})"
    return ActionResult("rollback", model, move.to_dict(), summary)


def _pause(project: Project, model: str, reason: str, _to: str | None) -> ActionResult:
    from shipyard.delivery.rollout import pause_rollout

    rollout = pause_rollout(project.store, model, reason)
    summary = f"{model}: roll-out paused at {rollout.describe_step()}"
    return ActionResult("pause", model, rollout.to_dict(), summary)


def _resume(project: Project, model: str, _reason: str, _to: str | None) -> ActionResult:
    from shipyard.delivery.rollout import resume_rollout

    rollout = resume_rollout(project.store, model)
    summary = f"{model}: roll-out resumed at {rollout.describe_step()}"
    return ActionResult("resume", model, rollout.to_dict(), summary)


ACTIONS: dict[str, Callable[[Project, str, str, str | None], ActionResult]] = {
    "rollback": _rollback,
    "pause": _pause,
    "resume": _resume,
}
"""Each action the dashboard offers, by the name its form posts to."""


def run_action(
    base: Project,
    principal: Principal,
    action: str,
    model: str,
    *,
    reason: str = "",
    to: str | None = None,
) -> ActionResult:
    """Do ``action`` on ``model`` as ``principal``: authorised, then the CLI's domain call.

    Raises ``Forbidden`` (no models:deploy on the model), ``NotFoundError`` (no such
    action) or whatever the domain refuses with (``PromotionRefused``, a roll-out error).
    """
    try:
        do = ACTIONS[action]
    except KeyError:
        raise NotFoundError(
            f"The dashboard has no action {action!r}.", hint=f"Actions: {', '.join(ACTIONS)}."
        ) from None
    project = acting_project(base, principal)
    project.authorize(Scope.MODELS_DEPLOY, model)
    return do(project, model, reason.strip()[:MAX_REASON], to)
