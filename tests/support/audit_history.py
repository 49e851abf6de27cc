"""A project with a real audited history, for the audit-log tests to verify and tamper with.

Every kind of vouched-for row is written through Shipyard's own entry points: alias
moves (promotions and a last rollback), an approval by someone else, a traffic split, a
roll-out rolled back by a guardrail, a CT cycle, a token, and plain events around them.
The model versions are registered straight with MLflow (no training: the log is what
matters here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from shipyard.config import Config
from shipyard.governance.approvals import approve
from shipyard.governance.signing import generate_keys
from shipyard.governance.tokens import issue_token
from shipyard.registry.aliases import move_alias, rollback
from shipyard.store import EventKind
from shipyard.store.traffic import TrafficSettings, write_traffic
from tests.support import project_of

__all__ = ["MODEL", "History", "build_history", "keys_for", "sql"]

MODEL = "fraud"


@dataclass(frozen=True)
class History:
    """Where the interesting rows of a built history are."""

    first_move_id: int  # the first promotion's row in shipyard_alias_moves
    rollback_move_id: int  # the last alias move: a rollback
    rollback_seq: int  # its leaf
    size: int  # leaves in the log when the history was built


def keys_for(root: Path) -> dict[str, str]:
    """Config overrides giving the project at ``root`` a signing key pair, created now."""
    private, public = root.parent / "keys" / "audit.pem", root / "audit.pub"
    generate_keys(private, public, overwrite=True)
    return {"signing.private_key": str(private), "signing.public_key": str(public)}


def build_history(config: Config) -> History:
    """Write the history into ``config``'s project (MLflow's tables must exist)."""
    from shipyard.delivery.rollout import advance, start_rollout
    from shipyard.pipelines.cycles import finish_cycle, record_gate, start_cycle, update_cycle

    project = project_of(config)
    store, client = project.store, project.client
    try:
        client.create_registered_model(MODEL)
        for number in (1, 2, 3):
            source = config.root / "models" / MODEL / str(number)
            client.create_model_version(MODEL, source=str(source))
        store.record(
            EventKind.RUN_FINISHED, f"run:{MODEL}-1", {"model": MODEL, "metrics": {"auc": 0.9}}
        )
        move_alias(store, client, MODEL, "champion", "1", action="promote", reason="first")
        first_move = store.events(kind="alias.promote", limit=1)[0].payload["row"]["id"]
        approve(project_of(config, "alice"), client.get_model_version(MODEL, "2"), comment="ok")
        move_alias(store, client, MODEL, "champion", "2", action="promote", reason="better")
        write_traffic(store, MODEL, TrafficSettings(challengers={"3": 0.1}))
        start_rollout(store, MODEL, "3", champion="2", step_seconds=0, min_requests=0)
        advance(store, MODEL, verdict="breach", requests=9, evidence={"reason": "latency"})
        cycle = start_cycle(store, MODEL, "drift", {"psi": 0.31}, champion="2")
        record_gate(store, cycle.id, "validate", "passed", {"rows": 1000})
        update_cycle(store, cycle.id, candidate="3")
        finish_cycle(store, cycle.id, "halted", "the scorecard failed")
        issue_token(project, name="ci", role="viewer")
        for window in ("1h", "6h"):
            store.record(
                EventKind.MONITOR_RAN, f"model:{MODEL}/2", {"window": window, "level": "ok"}
            )
        moved = rollback(store, client, MODEL, reason="v2 misbehaves")
        del moved
        last = store.events(kind="alias.rollback", limit=1)[0]
        for window in ("12h", "24h", "48h"):
            store.record(
                EventKind.MONITOR_RAN, f"model:{MODEL}/1", {"window": window, "level": "ok"}
            )
        size = store.events(limit=1)[0].seq
        return History(
            first_move_id=int(first_move),
            rollback_move_id=int(last.payload["row"]["id"]),
            rollback_seq=last.seq,
            size=size,
        )
    finally:
        project.close()


def sql(engine: Engine | str, statement: str, **params: object) -> list[tuple[object, ...]]:
    """Run one plain SQL statement in its own transaction, as someone with database access
    would; returns the rows it selected (none for a change)."""
    own = isinstance(engine, str)
    bound = create_engine(engine) if isinstance(engine, str) else engine
    try:
        with bound.begin() as connection:
            result = connection.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        if own:
            bound.dispose()
