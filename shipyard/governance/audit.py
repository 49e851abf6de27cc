"""The tamper-evident audit log: verify it, sign checkpoints of it, read it, prove an event.

Every event is a leaf of an RFC 6962 Merkle tree (``shipyard.store``). This module is
what a reviewer runs:

    report = verify(project)          # one pass: leaves, tree, checkpoints, rows, drift
    report.ok, report.first           # the first row (or checkpoint) that fails
    write_checkpoint(project)         # sign the head with the project's key, to a file
    audit_log(project.store, actor="alice", since=...)
    inclusion(project, seq=42)        # the audit path of one event, checkable by anyone

Reading needs ``audit:read``; writing a checkpoint needs ``audit:write``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from shipyard.access import Scope
from shipyard.errors import AuditFailed, NotFoundError, SigningError
from shipyard.governance.audit_checks import (
    CheckpointCheck,
    ConsistencyCheck,
    by_size,
    check_checkpoints,
    check_head,
    load_checkpoints,
    proof_pairs,
    prove,
)
from shipyard.governance.audit_rows import check_rows
from shipyard.governance.audit_split import Helpers, split_point
from shipyard.governance.audit_tree import TreeWalk
from shipyard.governance.audit_verify import (
    Finding,
    Findings,
    Head,
    Progress,
    batches,
    leaf_of,
    read_head,
    scan_log,
    snapshot,
)
from shipyard.governance.checkpoints import (
    Checkpoint,
    checkpoint_files,
    read_checkpoint,
    save_checkpoint,
    sign_checkpoint,
)
from shipyard.jsonable import Record
from shipyard.storage import Location, artifact_location, location
from shipyard.store import EventKind, EventRow
from shipyard.store.audit_leaf import utc_text
from shipyard.store.events import Event, event_of
from shipyard.store.merkle import consistency_ranges, inclusion_ranges, verify_inclusion

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "AuditReport",
    "Checkpoint",
    "CheckpointCheck",
    "ConsistencyCheck",
    "Finding",
    "InclusionProof",
    "audit_log",
    "checkpoint_due",
    "checkpoint_folder",
    "inclusion",
    "verify",
    "write_checkpoint",
]

LOG_PROBLEMS = frozenset(
    {"edited", "deleted", "inserted", "reordered", "truncated", "rewritten", "head"}
)
"""Findings about the log itself (a checkpoint is never signed over one of these)."""


@dataclass(frozen=True)
class AuditReport(Record):
    """What ``verify`` found: ``ok`` only when there is no finding at all."""

    ok: bool
    size: int  # leaves read
    root: str  # their root, recomputed from the rows
    head_size: int
    head_root: str
    checkpoints: tuple[CheckpointCheck, ...]
    proofs: tuple[ConsistencyCheck, ...]
    findings: tuple[Finding, ...]
    first: Finding | None
    omitted: int  # findings past the report's limit, only counted
    rows_checked: int
    seconds: float

    def summary(self) -> str:
        """One line: ``verified: …``, or what failed first."""
        if self.ok:
            return (
                f"verified: {self.size:,} lea{'ves' if self.size != 1 else 'f'}, root "
                f"{self.root}, {len(self.checkpoints)} checkpoint"
                + "s"
                * (len(self.checkpoints) != 1)
            )
        count = len(self.findings) + self.omitted
        first = self.first.message if self.first else "unknown"
        return f"the audit log does not verify ({count} finding{'s' * (count != 1)}): {first}"


@dataclass(frozen=True)
class InclusionProof(Record):
    """The audit path of one leaf: anyone can check it with RFC 6962 alone."""

    seq: int
    event_id: int
    index: int  # seq - 1
    tree_size: int
    leaf_hash: str
    root: str
    path: tuple[str, ...]


_DEFAULT_CHECKPOINTS = ".shipyard/audit"


def checkpoint_folder(config: Config) -> Location:
    """Where checkpoints are written: ``security.checkpoints`` (a folder under the project
    root, or a bucket URL); left at its default while ``artifact_root`` is a bucket,
    ``<artifact_root>/audit``, so every host writes and verifies the same checkpoints."""
    checkpoints = config.security.checkpoints
    if "checkpoints" not in config.security.model_fields_set or checkpoints == _DEFAULT_CHECKPOINTS:
        artifacts = artifact_location(config)
        if not artifacts.is_local:
            return artifacts.child("audit")
    return location(checkpoints, base=config.root, settings=config.storage)


def checkpoint_due(project: Project, now: datetime | None = None) -> bool:
    """Whether a checkpoint should be written now: the project has a private key, and no
    checkpoint in the folder is younger than ``security.checkpoint_minutes``."""
    from shipyard.governance.cards import private_key_path

    config = project.config
    if not private_key_path(config).is_file():
        return False
    latest: datetime | None = None
    for path in checkpoint_files(checkpoint_folder(config)):
        try:
            at = datetime.fromisoformat(read_checkpoint(path).at)
        except (AuditFailed, ValueError):
            continue  # verify reports an unreadable file; it vouches for nothing here
        latest = at if latest is None or at > latest else latest
    moment = now or datetime.now(UTC)
    period = timedelta(minutes=config.security.checkpoint_minutes)
    return latest is None or moment - latest >= period


def verify(
    project: Project,
    checkpoints: Sequence[Path] | None = None,
    *,
    progress: Progress | None = None,
    rows: bool = True,
    registry: bool = True,
) -> AuditReport:
    """Check the whole audit log, against ``checkpoints`` (default: every file in the
    checkpoint folder); ``rows`` and ``registry`` add the vouched-for rows and alias drift."""
    project.authorize(Scope.AUDIT_READ)
    return _examine(project, checkpoints, progress=progress, rows=rows, registry=registry)


def write_checkpoint(project: Project) -> Checkpoint:
    """Sign the log's head (size, root, time, project) and write it to the checkpoint
    folder; the log is verified first, so a checkpoint never vouches for a tampered log."""
    from shipyard.governance.cards import private_key_path
    from shipyard.governance.signing import load_private_key

    project.authorize(Scope.AUDIT_WRITE)
    config = project.config
    path = private_key_path(config)
    if not path.is_file():
        raise SigningError(
            f"The project has no private signing key at {path}; audit checkpoints are "
            "signed with it.",
            hint="Create the key pair with `shipyard keys init` (keep the private key off "
            "the database host), or point signing.private_key at it.",
        )
    key = load_private_key(path)
    report = _examine(project, None, rows=False, registry=False)
    broken = [f for f in report.findings if f.problem in LOG_PROBLEMS]
    if broken:
        raise AuditFailed(
            f"Refusing to sign a checkpoint: {broken[0].message}.",
            hint="Run `shipyard audit verify` for every finding; a checkpoint only vouches "
            "for a log that verifies.",
        )
    at = utc_text(datetime.now(UTC))
    signed = sign_checkpoint(report.head_size, report.head_root, at, config.project, key)
    saved = save_checkpoint(signed, checkpoint_folder(config))
    project.store.record(
        EventKind.AUDIT_CHECKPOINT,
        f"project:{config.project}",
        {"size": saved.size, "root": saved.root, "file": saved.name, "key": saved.key},
    )
    return saved


def audit_log(
    store: Store,
    *,
    kind: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Event]:
    """Leaves of the log, newest first: by kind, actor, subject prefix and time."""
    query = select(EventRow).order_by(EventRow.seq.desc()).limit(limit)
    if kind is not None:
        query = query.where(EventRow.kind == kind)
    if actor is not None:
        query = query.where(EventRow.actor == actor)
    if subject is not None:
        query = query.where(EventRow.subject.startswith(subject, autoescape=True))
    if since is not None:
        query = query.where(EventRow.at >= since)
    with store.session() as session:
        return [event_of(row) for row in session.scalars(query)]


def inclusion(project: Project, seq: int) -> InclusionProof:
    """The inclusion proof of leaf ``seq`` in the log's current tree."""
    project.authorize(Scope.AUDIT_READ)
    with snapshot(project.store.engine) as connection:
        head = read_head(connection)
        if not 1 <= seq <= head.size:
            raise NotFoundError(
                f"The audit log has no seq {seq}: it holds seq 1 to {head.size}.",
                hint="See `shipyard audit log` for the seq of each event.",
            )
        row, leaf = leaf_of(connection, seq)
        if row is None or leaf.hex() != row.leaf_hash:
            what = "was deleted" if row is None else "was edited: its columns no longer hash to it"
            raise AuditFailed(f"Leaf seq {seq} {what}.", hint=_VERIFY_HINT)
        ranges = inclusion_ranges(seq - 1, head.size)
        walk = TreeWalk(sizes=[head.size], ranges=ranges)
        _stored_leaves(connection, walk, head)
    path = [walk.subtrees[r] for r in ranges]
    root = walk.roots[head.size]
    if root.hex() != head.root or not verify_inclusion(leaf, seq - 1, head.size, path, root):
        raise AuditFailed(
            "The stored leaf hashes do not hash to the root the log's head records.",
            hint=_VERIFY_HINT,
        )
    return InclusionProof(
        seq=seq,
        event_id=int(row.id),
        index=seq - 1,
        tree_size=head.size,
        leaf_hash=leaf.hex(),
        root=head.root,
        path=tuple(h.hex() for h in path),
    )


_VERIFY_HINT = "Run `shipyard audit verify` to see every finding."


def _stored_leaves(connection: Connection, walk: TreeWalk, head: Head) -> None:
    """Feed the stored leaf hashes of seq 1 … head.size to ``walk``; refuse a broken log."""
    query = "SELECT seq, leaf_hash FROM shipyard_events ORDER BY seq, id"
    expect = 1
    for batch in batches(connection, query):
        leaves = []
        for seq, stored in batch[: max(0, head.size - expect + 1)]:
            if seq != expect:
                raise AuditFailed(
                    f"The log does not run 1, 2, 3 …: seq {seq} follows seq {expect - 1}.",
                    hint=_VERIFY_HINT,
                )
            try:
                leaves.append(bytes.fromhex(stored))
            except (TypeError, ValueError):
                raise AuditFailed(f"Leaf seq {seq}'s stored hash is not hex.") from None
            expect += 1
        walk.extend(leaves)
        if expect > head.size:
            break
    if expect <= head.size:
        raise AuditFailed(
            f"The log ends at seq {expect - 1}, but its head counts {head.size} leaves.",
            hint=_VERIFY_HINT,
        )


def _examine(
    project: Project,
    paths: Sequence[Path] | None,
    *,
    progress: Progress | None = None,
    rows: bool = True,
    registry: bool = True,
    split_at: int | None = None,
) -> AuditReport:
    """The verification itself; ``split_at`` (tests) forces where a worker's share ends."""
    started = time.perf_counter()
    config = project.config
    given = paths is not None
    files = list(paths) if paths is not None else checkpoint_files(checkpoint_folder(config))
    findings = Findings()
    loaded = load_checkpoints(files, config, findings)
    trusted = sorted((cp for cp, problem in loaded if problem is None), key=by_size)
    engine = project.store.engine
    with snapshot(engine) as connection:
        head = read_head(connection)
        pairs = proof_pairs(trusted, head, given=given)
        ranges = [
            r
            for old, _, size in pairs
            if old.size <= size
            for r in consistency_ranges(old.size, size)
        ]
        sizes = sorted({head.size, *(cp.size for cp in trusted)})
        upto = split_point(engine, head.size) if split_at is None else split_at
        helpers = Helpers(
            project, engine, upto=upto, drift=registry and upto > 0, sizes=sizes, ranges=ranges
        )
        try:
            shown = progress or _quiet
            if upto:
                scan = helpers.scan(connection, findings, total=head.size, progress=shown)
            else:
                walk = TreeWalk(sizes=sizes, ranges=ranges)
                scan = scan_log(connection, walk, findings, total=head.size, progress=shown)
            walk = scan.walk
            check_head(connection, head, walk, scan.last_seq, findings)
            checks = check_checkpoints(loaded, walk, scan.last_seq, findings)
            proofs = [prove(old, new, size, head, walk, findings) for old, new, size in pairs]
            rows_checked = check_rows(connection, scan, findings) if rows else 0
            if registry:
                drifts = helpers.drift() if upto else _drift(project)
                findings.absorb(drifts, 0)
        finally:
            helpers.close()
    return AuditReport(
        ok=not findings,
        size=walk.size,
        root=walk.root().hex(),
        head_size=head.size,
        head_root=head.root,
        checkpoints=tuple(checks),
        proofs=tuple(proofs),
        findings=tuple(findings.items),
        first=findings.first(),
        omitted=findings.omitted,
        rows_checked=rows_checked,
        seconds=time.perf_counter() - started,
    )


def _quiet(_done: int, _total: int) -> None:
    return None


def _drift(project: Project) -> list[Finding]:
    """MLflow aliases that disagree with the pointers Shipyard recorded."""
    from shipyard.governance.pointers import alias_drift

    return [Finding("drift", f"registry drift: {d.summary}") for d in alias_drift(project)]
