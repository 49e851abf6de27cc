"""The version page: lineage, scorecard against the champion's, the signed card's status,
serving history and training cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from shipyard.errors import NotFoundError, ShipyardError
from shipyard.moments import as_utc
from shipyard.store.tables import AliasMoveRow, CycleRow, EvaluationRow, RolloutRow
from shipyard.ui.data import control
from shipyard.ui.data.annotations import traffic_text
from shipyard.ui.data.models import require_model
from shipyard.ui.views import VersionView

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = ["version_view"]


def version_view(project: Project, model: str, version: str) -> VersionView:
    """What is known about ``model/version``; a NotFoundError listing the versions otherwise."""
    require_model(project, model)
    store = project.store
    versions = control.registered_versions(store, model)
    if version not in versions:
        raise NotFoundError(
            f"{model} has no version {version!r}.",
            hint=f"Versions of {model}: {', '.join(versions) or 'none registered'}.",
        )
    champion = control.current_alias(store, model, "champion")
    registered = control.model_events(
        store, model, None, None, ("model_version.registered",), limit=1000
    )
    mine = [e for e in registered if e.subject == f"model:{model}/{version}"]
    lineage = _lineage(project, model, version)
    lineage["parent"] = _parent(project, model, version, mine[-1].at if mine else None)
    cost = mine[-1].payload.get("cost") if mine else None
    return VersionView(
        model=model,
        version=version,
        lineage=lineage,
        scorecard=_scorecard(store, model, version),
        champion_scorecard=(
            _scorecard(store, model, champion) if champion and champion != version else None
        ),
        card=_card(project, model, version),
        serving=_serving(project, model, version),
        training_cost=cost if isinstance(cost, dict) else None,
    )


def _lineage(project: Project, model: str, version: str) -> dict[str, Any]:
    from shipyard.registry import parse_ref
    from shipyard.registry.views import lineage, show_version

    ref = parse_ref(f"{model}/{version}")
    try:
        found = lineage(project.client, ref).to_dict()
        detail = show_version(project.client, ref)
    except ShipyardError as exc:
        return {"error": exc.message, "missing": ["run", "dataset", "git commit"]}
    found["params"] = detail.params
    found["metrics"] = detail.metrics
    found["created_at"] = detail.created_at
    found["source"] = detail.source
    return found


def _parent(
    project: Project, model: str, version: str, registered_at: Any
) -> dict[str, Any] | None:
    """The version this one was trained to replace: its CT cycle's champion, else the
    champion when it was registered."""
    with project.store.session() as session:
        cycle = session.scalars(
            select(CycleRow)
            .where(CycleRow.model == model, CycleRow.candidate == version)
            .order_by(CycleRow.id.desc())
            .limit(1)
        ).first()
        if cycle is not None and cycle.champion:
            return {"version": cycle.champion, "via": f"CT cycle {cycle.id}", "cause": cycle.cause}
    if registered_at is None:
        return None
    champion = None
    for at, to in control.champion_moves(project.store, model):
        if at > as_utc(registered_at):
            break
        champion = to
    if champion is None or champion == version:
        return None
    return {"version": champion, "via": "champion when it was registered"}


def _scorecard(store: Store, model: str, version: str) -> dict[str, Any] | None:
    with store.session() as session:
        row = session.scalars(
            select(EvaluationRow)
            .where(EvaluationRow.model == model, EvaluationRow.version == version)
            .order_by(EvaluationRow.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return {
            "version": row.version,
            "passed": row.passed,
            "golden_digest": row.golden_digest,
            "champion_version": row.champion_version,
            "result": row.result,
            "actor": row.actor,
            "created_at": as_utc(row.created_at).isoformat(),
        }


def _card(project: Project, model: str, version: str) -> dict[str, Any]:
    """The signed card's status: verified, failed (and why), unsigned, or unknown."""
    from shipyard.governance.cards import verify_version
    from shipyard.registry.views import get_version

    try:
        from shipyard.registry import parse_ref

        found = get_version(project.client, parse_ref(f"{model}/{version}"))
        checked = verify_version(project, found)
    except ShipyardError as exc:
        status = (
            "unsigned"
            if "no signed model card" in exc.message or "no run" in exc.message
            else "failed"
        )
        return {"status": status, "why": exc.message, "hint": exc.hint}
    if checked.ok:
        return {"status": "verified", "why": "signature and model files match", "problems": []}
    return {"status": "failed", "why": "; ".join(checked.problems), "problems": checked.problems}


def _serving(project: Project, model: str, version: str) -> list[dict[str, Any]]:
    """Alias moves, traffic changes and roll-outs that involved ``version``, oldest first."""
    found: list[dict[str, Any]] = []
    with project.store.session() as session:
        moves = session.scalars(
            select(AliasMoveRow)
            .where(
                AliasMoveRow.model == model,
                or_(AliasMoveRow.to_version == version, AliasMoveRow.from_version == version),
            )
            .order_by(AliasMoveRow.id)
        )
        for move in moves:
            found.append(
                {
                    "at": as_utc(move.at).isoformat(),
                    "what": f"{move.action} {move.alias}: {move.from_version or '–'} → "
                    f"{move.to_version or 'none'}",
                    "kind": f"alias.{move.action}",
                    "actor": move.actor,
                    "reason": move.reason,
                }
            )
        rollouts = session.scalars(
            select(RolloutRow).where(RolloutRow.model == model, RolloutRow.candidate == version)
        )
        for rollout in rollouts:
            found.append(
                {
                    "at": as_utc(rollout.created_at).isoformat(),
                    "what": f"{rollout.strategy} roll-out {rollout.id}: {rollout.state}",
                    "kind": "rollout",
                    "actor": None,
                    "reason": rollout.reason,
                }
            )
    for event in control.model_events(project.store, model, None, None, ("traffic.changed",)):
        payload = event.payload
        if version in (payload.get("challengers") or {}) or payload.get("shadow") == version:
            found.append(
                {
                    "at": as_utc(event.at).isoformat(),
                    "what": "traffic: " + traffic_text(payload),
                    "kind": event.kind,
                    "actor": event.actor,
                    "reason": event.reason,
                }
            )
    return sorted(found, key=lambda item: item["at"])
