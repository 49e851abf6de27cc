"""Separation of duties: who may approve and who may promote a version, enforced.

- Whoever trained or registered a version may not approve it. On a laptop project
  (a local SQLite file) ``promotion.allow_self_approval: true`` lets one person do both;
  on a shared database the rule always holds.
- With ``promotion.separate_promoter: true``, whoever approved a version may not be the
  one who promotes it.
- ``--force`` needs the ``force`` scope (the admin role) and a reason.

Each refusal is :class:`~shipyard.errors.Forbidden` (HTTP 403, exit code 6), naming the
rule and the people involved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.access import Scope
from shipyard.errors import Forbidden, PromotionRefused
from shipyard.registry import tags
from shipyard.store import EventKind

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from shipyard.project import Project

__all__ = [
    "check_approver",
    "check_force",
    "check_promoter",
    "registered_by",
    "trained_by",
]


def registered_by(project: Project, version: ModelVersion) -> str | None:
    """Who registered ``version``: the actor of its registration event, else MLflow's user."""
    subject = f"model:{version.name}/{version.version}"
    found = project.store.events(kind=EventKind.MODEL_VERSION_REGISTERED, subject=subject)
    exact = [event for event in found if event.subject == subject]
    if exact:
        return exact[-1].actor  # events come newest first: the first registration
    return getattr(version, "user_id", None) or None


def trained_by(project: Project, version: ModelVersion) -> str | None:
    """Who trained ``version``: Shipyard's tag, else the MLflow run's user."""
    found = (version.tags or {}).get(tags.TRAINED_BY)
    if found:
        return found
    if version.run_id:
        return project.client.get_run(version.run_id).data.tags.get("mlflow.user")
    return None


def check_approver(project: Project, version: ModelVersion, *, allow_self: bool) -> None:
    """Refuse an approval by someone who trained or registered ``version``."""
    who = project.principal.name
    label = f"{version.name}/{version.version}"
    trainer = trained_by(project, version)
    if who not in {trainer, registered_by(project, version)}:
        return
    if allow_self and not project.config.shared_database:
        return
    what = "trained" if trainer == who else "registered"
    hint = "Ask another person to run `shipyard approve`."
    if not project.config.shared_database:
        hint += " On a one-person laptop project, promotion.allow_self_approval: true allows it."
    raise Forbidden(
        f"{who} {what} {label} and may not approve it (separation of duties).", hint=hint
    )


def check_promoter(project: Project, version: ModelVersion, approvers: list[str]) -> None:
    """With ``promotion.separate_promoter``, refuse a promotion by one of the approvers."""
    who = project.principal.name
    if project.config.promotion.separate_promoter and who in approvers:
        raise Forbidden(
            f"{who} approved {version.name}/{version.version} and may not also promote it "
            "(promotion.separate_promoter: true).",
            hint="Ask a deployer who did not approve it to run `shipyard promote`.",
        )


def check_force(project: Project, model: str, reason: str) -> None:
    """``--force`` needs the force scope (admin) on ``model`` and a reason."""
    if not reason.strip():
        raise PromotionRefused(
            "--force needs a reason.", hint='Add --reason "why the checks may be overridden".'
        )
    project.authorize(Scope.FORCE, model)
