"""The log against its head row and its signed checkpoints.

After the one pass over the events (:mod:`shipyard.governance.audit_verify`), the
recomputed tree is held up against what was recorded or signed:

- the head row: as many leaves, the same root, the same compact range;
- each checkpoint: a signature by the project's key, and the root of its first ``size``
  leaves (a history rewritten before it no longer hashes to its root);
- RFC 6962 consistency proofs, built from the log, between the latest two checkpoints
  and from a checkpoint to the head: the proofs anyone can check with the roots alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from shipyard.errors import AuditFailed, SigningError
from shipyard.governance.audit_tree import TreeWalk
from shipyard.governance.audit_verify import Finding, Findings, Head
from shipyard.governance.checkpoints import Checkpoint, read_checkpoint, signature_problem
from shipyard.jsonable import Record
from shipyard.storage import Location
from shipyard.store.merkle import consistency_ranges, verify_consistency

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from shipyard.config import Config

__all__ = [
    "CheckpointCheck",
    "ConsistencyCheck",
    "by_size",
    "check_checkpoints",
    "check_head",
    "load_checkpoints",
    "proof_pairs",
    "prove",
]


@dataclass(frozen=True)
class CheckpointCheck(Record):
    """One checkpoint file, and whether the log still agrees with it."""

    name: str
    size: int
    root: str
    at: str
    ok: bool
    problem: str | None = None


@dataclass(frozen=True)
class ConsistencyCheck(Record):
    """An RFC 6962 consistency proof built from the log between two tree heads."""

    old: str  # the earlier checkpoint's file name
    old_size: int
    new: str  # a later checkpoint's file name, or "head"
    new_size: int
    ok: bool
    proof: tuple[str, ...] = ()


def by_size(checkpoint: Checkpoint) -> tuple[int, str]:
    """Sort key: oldest tree first (by size, then by time)."""
    return (checkpoint.size, checkpoint.at)


def load_checkpoints(
    files: Sequence[Path], config: Config, findings: Findings
) -> list[tuple[Checkpoint, str | None]]:
    """Every readable checkpoint with why it cannot be trusted (``None``: it can)."""
    from shipyard.governance.signing import load_public_key

    if not files:
        return []
    public: Ed25519PublicKey | None = None
    why_not = None
    try:
        public = load_public_key(config.resolve(config.signing.public_key))
    except SigningError as error:
        why_not = f"the project's public key cannot be read ({error.message})"
    loaded: list[tuple[Checkpoint, str | None]] = []
    for path in files:
        try:
            checkpoint = read_checkpoint(path if isinstance(path, Location) else Path(path))
        except AuditFailed as error:
            name = str(getattr(path, "url", path)).rsplit("/", 1)[-1]
            findings.add(Finding("checkpoint", error.message, checkpoint=name))
            continue
        problem = (
            why_not if public is None else signature_problem(checkpoint, public, config.project)
        )
        loaded.append((checkpoint, problem))
    return loaded


def proof_pairs(
    trusted: list[Checkpoint], head: Head, *, given: bool
) -> list[tuple[Checkpoint, Checkpoint | None, int]]:
    """The consistency proofs to build: the latest two checkpoints, and a checkpoint (each
    one named, else the latest) to the head. ``(old, new or None for the head, new size)``."""
    pairs: list[tuple[Checkpoint, Checkpoint | None, int]] = []
    if len(trusted) >= 2:
        pairs.append((trusted[-2], trusted[-1], trusted[-1].size))
    for checkpoint in trusted if given else trusted[-1:]:
        pairs.append((checkpoint, None, head.size))
    return pairs


def check_head(
    connection: Connection, head: Head, walk: TreeWalk, last_seq: int, findings: Findings
) -> None:
    """The log against its head row: as many leaves, the same root and compact range."""
    if walk.size > head.size or last_seq > head.size:
        extra = connection.execute(
            text("SELECT seq, id FROM shipyard_events WHERE seq > :size ORDER BY seq, id LIMIT 1"),
            {"size": head.size},
        ).first()
        seq, event_id = (extra[0], extra[1]) if extra else (None, None)
        past = f"the first past the head is seq {seq} (event id {event_id})" if extra else ""
        findings.add(
            Finding(
                "inserted",
                f"the log holds {walk.size} leaves up to seq {last_seq}, but its head counts "
                f"{head.size}: rows were inserted outside Shipyard" + (f", {past}" if past else ""),
                seq=seq if isinstance(seq, int) else None,
                event_id=event_id,
            )
        )
    elif last_seq < head.size:
        findings.add(
            Finding(
                "truncated",
                f"the log ends at seq {last_seq}, but its head counts {head.size} leaves: "
                f"the last {head.size - last_seq} were deleted",
                seq=last_seq + 1,
            )
        )
    root = walk.roots.get(head.size)
    if root is not None and root.hex() != head.root:
        findings.add(
            Finding(
                "head",
                f"the first {head.size} leaves hash to root {root.hex()[:16]}…, but the head "
                f"records {head.root[:16]}…",
            )
        )
    elif root is not None and walk.size == head.size and walk.frontier() != head.frontier:
        findings.add(
            Finding(
                "head",
                "the head's compact range does not match the leaves: the head row was edited, "
                "and the next event would be appended to a wrong tree",
            )
        )


def check_checkpoints(
    loaded: list[tuple[Checkpoint, str | None]],
    walk: TreeWalk,
    last_seq: int,
    findings: Findings,
) -> list[CheckpointCheck]:
    """Each checkpoint's signature, and its root against the first ``size`` leaves."""
    checks: list[CheckpointCheck] = []
    agreed = 0  # the largest size of a checkpoint the log still agrees with
    for checkpoint, problem in sorted(loaded, key=lambda pair: by_size(pair[0])):
        name = checkpoint.name
        root = walk.roots.get(checkpoint.size)
        if problem is not None:
            problem = f"{name} cannot be trusted: {problem}"
            findings.add(Finding("checkpoint", problem, checkpoint=name))
        elif root is None:
            problem = (
                f"{name} covers {checkpoint.size} leaves, but the log has only "
                f"{walk.size}: leaves were deleted"
            )
            seq = walk.size + 1 if last_seq == walk.size else None
            findings.add(Finding("truncated", problem, seq=seq, checkpoint=name))
        elif root.hex() != checkpoint.root:
            problem = (
                f"history before {name} was rewritten: the first "
                f"{checkpoint.size} leaves no longer hash to its signed root "
                f"{checkpoint.root[:16]}… (the change is in seq {agreed + 1} to "
                f"{checkpoint.size})"
            )
            findings.add(Finding("rewritten", problem, seq=agreed + 1, checkpoint=name))
        else:
            agreed = max(agreed, checkpoint.size)
        checks.append(
            CheckpointCheck(
                name, checkpoint.size, checkpoint.root, checkpoint.at, problem is None, problem
            )
        )
    return checks


def prove(
    old: Checkpoint,
    new: Checkpoint | None,
    size: int,
    head: Head,
    walk: TreeWalk,
    findings: Findings,
) -> ConsistencyCheck:
    """Build the consistency proof from ``old`` to ``new`` (or the head) and check it."""
    new_name = "head" if new is None else new.name
    new_root = head.root if new is None else new.root
    proof: list[bytes] = []
    ok = False
    if old.size <= size:
        ranges = consistency_ranges(old.size, size)
        if all(r in walk.subtrees for r in ranges):
            proof = [walk.subtrees[r] for r in ranges]
            try:
                ok = verify_consistency(
                    old.size, size, bytes.fromhex(old.root), bytes.fromhex(new_root), proof
                )
            except ValueError:  # a root that is not hex
                ok = False
    if not ok:
        findings.add(
            Finding(
                "rewritten",
                f"the log is not an extension of {old.name}: the consistency "
                f"proof from size {old.size} to {new_name} (size {size}) fails",
                checkpoint=old.name,
            )
        )
    return ConsistencyCheck(old.name, old.size, new_name, size, ok, tuple(h.hex() for h in proof))
