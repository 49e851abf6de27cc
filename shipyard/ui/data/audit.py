"""The audit page: the event log searched by actor, kind, subject or reason, the log's
verify status and the latest signed checkpoint."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from shipyard.errors import ShipyardError
from shipyard.store.events import event_of
from shipyard.store.tables import EventRow
from shipyard.ui.data.annotations import event_dict
from shipyard.ui.views import AuditView

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["MAX_LIMIT", "VERIFY_SECONDS", "audit_view"]

MAX_LIMIT = 500
"""The most events one audit page lists."""


def audit_view(
    project: Project,
    query: str = "",
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    verify: bool = True,
) -> AuditView:
    """Events matching ``query`` (in actor, kind, subject or reason) and ``kind`` (exact, or
    a prefix ending in ``.``: ``rollout.``), newest first; with the verify status
    (``shipyard audit verify``) and the latest checkpoint."""
    from shipyard.access import Scope

    project.authorize(Scope.AUDIT_READ)
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    conditions = []
    text = query.strip()
    if text:
        pattern = (
            "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        conditions.append(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (EventRow.actor, EventRow.kind, EventRow.subject, EventRow.reason)
                )
            )
        )
    if kind:
        conditions.append(
            EventRow.kind.startswith(kind, autoescape=True)
            if kind.endswith(".")
            else EventRow.kind == kind
        )
    with project.store.session() as session:
        total = session.scalar(select(func.count()).select_from(EventRow).where(*conditions)) or 0
        rows = session.scalars(
            select(EventRow)
            .where(*conditions)
            .order_by(EventRow.seq.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        events = [event_dict(event_of(row)) for row in rows]
    return AuditView(
        events=events,
        total=int(total),
        verified=_verified(project) if verify else {"ok": None, "summary": "not checked"},
        checkpoint=_checkpoint(project),
        query=text,
    )


VERIFY_SECONDS = 60.0
"""How long one verification of an unchanged log is shown before the page checks again."""

_VERIFIED: dict[str, tuple[float, int, dict[str, Any]]] = {}  # db url → (when, size, result)


def _verified(project: Project) -> dict[str, Any]:
    """The log's verify status: verified afresh when the log grew or a minute has passed
    (a million leaves take seconds to check; a page should not redo it on every view)."""
    from shipyard.store.tables import AuditHeadRow

    with project.store.session() as session:
        size = session.scalar(select(AuditHeadRow.size).where(AuditHeadRow.id == 1)) or 0
    key = project.config.db_url
    found = _VERIFIED.get(key)
    now = time.monotonic()
    if found is not None and found[1] == size and now - found[0] < VERIFY_SECONDS:
        return found[2]
    result = _verify(project)
    result["checked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _VERIFIED[key] = (now, size, result)
    return result


def _verify(project: Project) -> dict[str, Any]:
    from shipyard.governance.audit import verify

    try:
        report = verify(project, rows=False, registry=False)
    except ShipyardError as exc:
        return {
            "ok": False,
            "size": None,
            "root": None,
            "problems": [exc.message],
            "summary": exc.message,
        }
    return {
        "ok": report.ok,
        "size": report.size,
        "root": report.root,
        "checkpoints": len(report.checkpoints),
        "problems": [f.message for f in report.findings[:20]],
        "summary": report.summary(),
    }


def _checkpoint(project: Project) -> dict[str, Any] | None:
    from shipyard.governance.audit import checkpoint_folder
    from shipyard.governance.checkpoints import checkpoint_files, read_checkpoint

    try:
        files = checkpoint_files(checkpoint_folder(project.config))
        if not files:
            return None
        latest = read_checkpoint(files[-1])
    except ShipyardError as exc:
        return {"error": exc.message}
    return {
        "size": latest.size,
        "root": latest.root,
        "at": latest.at,
        "key": latest.key,
        "file": latest.name,
    }
