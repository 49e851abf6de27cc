"""Approvals: who signed off a version for promotion to champion, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from shipyard.access import Scope
from shipyard.errors import PromotionRefused
from shipyard.governance.duties import check_approver
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.store import ApprovalRow, EventKind, Store
from shipyard.store.bound_rows import record_row

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from shipyard.project import Project

__all__ = ["Approval", "approvals", "approve"]


@dataclass(frozen=True)
class Approval(Record):
    """One recorded approval."""

    model: str
    version: str
    actor: str
    comment: str
    at: datetime


def approve(
    project: Project,
    version: ModelVersion,
    *,
    comment: str,
    allow_self_approval: bool | None = None,
) -> Approval:
    """Record the principal's approval of ``version``.

    Needs the ``models:approve`` scope on the model. Whoever trained or registered the
    version may not approve it (separation of duties, :mod:`shipyard.governance.duties`);
    ``allow_self_approval`` (default ``promotion.allow_self_approval``) relaxes that on a
    laptop project only.
    """
    project.authorize(Scope.MODELS_APPROVE, version.name)
    store = project.store
    if allow_self_approval is None:
        allow_self_approval = project.config.promotion.allow_self_approval
    label = f"{version.name}/{version.version}"
    check_approver(project, version, allow_self=allow_self_approval)
    if not comment.strip():
        raise PromotionRefused(
            "An approval needs a comment.", hint='Pass --comment "why this version may ship".'
        )
    row = ApprovalRow(
        model=version.name, version=str(version.version), actor=store.actor, comment=comment
    )
    with store.session() as session:  # the approval and the leaf vouching for it, together
        session.add(row)
        record_row(
            store, session, EventKind.MODEL_VERSION_APPROVED, f"model:{label}",
            {"comment": comment}, row,
        )  # fmt: skip
        return _approval(row)


def approvals(store: Store, name: str, version: str | None = None) -> list[Approval]:
    """Approvals of ``name`` (optionally one version), oldest first."""
    query = select(ApprovalRow).where(ApprovalRow.model == name).order_by(ApprovalRow.id)
    if version is not None:
        query = query.where(ApprovalRow.version == version)
    with store.session() as session:
        return [_approval(row) for row in session.scalars(query)]


def _approval(row: ApprovalRow) -> Approval:
    return Approval(row.model, row.version, row.actor, row.comment, as_utc(row.at))
