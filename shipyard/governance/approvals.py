"""Approvals: who signed off a version for promotion to champion, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from shipyard.errors import PromotionRefused
from shipyard.jsonable import Record
from shipyard.moments import as_utc
from shipyard.registry import tags
from shipyard.store import ApprovalRow, EventKind, Store

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from shipyard.project import Project

__all__ = ["Approval", "approvals", "approve", "trained_by"]


@dataclass(frozen=True)
class Approval(Record):
    """One recorded approval."""

    model: str
    version: str
    actor: str
    comment: str
    at: datetime


def trained_by(client: MlflowClient, version: ModelVersion) -> str | None:
    """Who trained ``version``: Shipyard's tag, else the MLflow run's user."""
    found = (version.tags or {}).get(tags.TRAINED_BY)
    if found:
        return found
    if version.run_id:
        return client.get_run(version.run_id).data.tags.get("mlflow.user")
    return None


def approve(
    project: Project,
    version: ModelVersion,
    *,
    comment: str,
    allow_self_approval: bool | None = None,
) -> Approval:
    """Record the principal's approval of ``version``; refuses self-approval unless allowed.

    ``allow_self_approval`` defaults to ``promotion.allow_self_approval``.
    """
    store, client = project.store, project.client
    if allow_self_approval is None:
        allow_self_approval = project.config.promotion.allow_self_approval
    label = f"{version.name}/{version.version}"
    trainer = trained_by(client, version)
    if not allow_self_approval and trainer is not None and trainer == store.actor:
        raise PromotionRefused(
            f"{store.actor} trained {label} and may not approve it.",
            hint="Ask another person to run `shipyard approve`, or set "
            "promotion.allow_self_approval: true in shipyard.yaml.",
        )
    if not comment.strip():
        raise PromotionRefused(
            "An approval needs a comment.", hint='Pass --comment "why this version may ship".'
        )
    row = ApprovalRow(
        model=version.name, version=str(version.version), actor=store.actor, comment=comment
    )
    with store.session() as session:
        session.add(row)
        session.flush()
        approval = _approval(row)
    store.record(EventKind.MODEL_VERSION_APPROVED, f"model:{label}", {"comment": comment})
    return approval


def approvals(store: Store, name: str, version: str | None = None) -> list[Approval]:
    """Approvals of ``name`` (optionally one version), oldest first."""
    query = select(ApprovalRow).where(ApprovalRow.model == name).order_by(ApprovalRow.id)
    if version is not None:
        query = query.where(ApprovalRow.version == version)
    with store.session() as session:
        return [_approval(row) for row in session.scalars(query)]


def _approval(row: ApprovalRow) -> Approval:
    return Approval(row.model, row.version, row.actor, row.comment, as_utc(row.at))
