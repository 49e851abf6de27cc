"""One pass over the audit log: recompute every leaf, rebuild the tree, name what is wrong.

The events are read once, in ``seq`` order, with a plain SQL query (no ORM objects: a
million rows in a few seconds). For each row the leaf is recomputed from its columns
and compared with the stored leaf hash (an *edited* row); ``seq`` must run 1, 2, 3 …
(a gap is a *deleted* row, a repeat an *inserted* one) and ids must rise with it
(*reordered* or inserted rows). The recomputed hashes build the tree, so the root at
the head's size, and at every checkpoint's, can be compared with what was recorded or
signed. On the way, each leaf that vouches for a row of another table
(``payload["row"]``) is remembered for :mod:`shipyard.governance.audit_rows`.

:func:`scan_log` is the pass in one process; :func:`scan_part`, :func:`scan_after` and
:func:`seam` are the same pass cut in two at a seq, for
:mod:`shipyard.governance.audit_split`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, text

from shipyard.governance.audit_tree import TreeWalk
from shipyard.jsonable import Record
from shipyard.store.audit_leaf import canonical, utc_text
from shipyard.store.event_kinds import EventKind
from shipyard.store.merkle import EMPTY_ROOT, Range, leaf_hash

__all__ = [
    "Finding",
    "Findings",
    "Head",
    "LogScan",
    "Part",
    "Ref",
    "Vouched",
    "batches",
    "leaf_bytes",
    "leaf_of",
    "read_head",
    "rehash",
    "scan_after",
    "scan_log",
    "scan_part",
    "seam",
    "snapshot",
]

_EXACT = frozenset(
    {"edited", "deleted", "inserted", "reordered", "truncated"}
    | {"row_edited", "row_deleted", "row_inserted"}
)  # findings that name a row, not a range of the log

Progress = Callable[[int, int], None]
"""Called as ``progress(rows_read, rows_expected)`` while the log is read."""

_BATCH = 20_000
# The same bytes as shipyard.store.audit_leaf.leaf_data, without its copy of the fields
# (a test compares the two on every kind of value).
_COLUMNS = (
    "seq", "at", "actor", "token_id", "role", "kind", "subject", "payload", "reason",
    "request_id", "before", "after", "id", "leaf_hash",
)  # fmt: skip
_ALIAS_KINDS = frozenset(
    {EventKind.ALIAS_PROMOTE, EventKind.ALIAS_OVERRIDE, EventKind.ALIAS_ROLLBACK}
)
# Kinds whose events vouch for rows without naming them (written before rows were named).
_LEGACY_KINDS = _ALIAS_KINDS | {
    EventKind.MODEL_VERSION_APPROVED,
    EventKind.TRAFFIC_CHANGED,
    EventKind.ROLLOUT_STARTED,
    EventKind.CT_CYCLE_STARTED,
    EventKind.CT_SKIPPED,
}
_WATCHED = frozenset({*_LEGACY_KINDS, *(k for k in EventKind if k.startswith("token."))})


def leaf_bytes(fields: dict[str, Any]) -> bytes:
    """The canonical bytes of a leaf whose ``fields`` are exactly the leaf fields."""
    return canonical(fields)


@dataclass(frozen=True)
class Finding(Record):
    """One thing the audit log, a checkpoint or a vouched-for row says is wrong.

    ``problem`` is one of: edited, deleted, inserted, reordered, truncated, rewritten,
    head, checkpoint, row_edited, row_deleted, row_inserted, drift.
    """

    problem: str
    message: str
    seq: int | None = None  # the leaf it concerns (or that vouched for the row)
    event_id: int | None = None
    table: str | None = None
    row: str | None = None
    checkpoint: str | None = None


class Findings:
    """Findings in the order found, at most ``limit`` kept; the rest are only counted."""

    def __init__(self, limit: int = 200) -> None:
        self.items: list[Finding] = []
        self.omitted = 0
        self._limit = limit

    def add(self, finding: Finding) -> None:
        """Keep ``finding`` (or count it, past the limit)."""
        if len(self.items) < self._limit:
            self.items.append(finding)
        else:
            self.omitted += 1

    def absorb(self, items: list[Finding], omitted: int) -> None:
        """Add findings another pass made (and the count it left out)."""
        for finding in items:
            self.add(finding)
        self.omitted += omitted

    def __bool__(self) -> bool:
        return bool(self.items) or self.omitted > 0

    def first(self) -> Finding | None:
        """The finding that names the earliest row, else the first found."""
        exact = [f for f in self.items if f.problem in _EXACT]
        if exact:
            return min(exact, key=lambda f: (f.seq is None, f.seq or 0))
        return self.items[0] if self.items else None


@dataclass(frozen=True)
class Head:
    """The audit log's head row as read: what the log says its size and root are."""

    size: int
    root: str
    frontier: list[str]


@dataclass(frozen=True)
class Ref:
    """The latest leaf that vouches for one row: where it is, and the row's digest."""

    seq: int
    event_id: int
    after: str | None
    actor: str


@dataclass
class Vouched:
    """What the leaves read so far vouch for: rows by table and key, and (older leaves,
    which name no row) what they said."""

    refs: dict[tuple[str, Any], Ref] = field(default_factory=dict)
    legacy: dict[str, Counter[Any]] = field(default_factory=dict)
    legacy_traffic: dict[str, Any] = field(default_factory=dict)

    def take(self, later: Vouched) -> None:
        """Add what leaves after these vouch for (the latest leaf of a row wins)."""
        self.refs.update(later.refs)
        for table, said in later.legacy.items():
            self.legacy.setdefault(table, Counter()).update(said)
        self.legacy_traffic.update(later.legacy_traffic)


@dataclass
class LogScan(Vouched):
    """What one pass over the events found."""

    walk: TreeWalk = field(default_factory=TreeWalk)
    last_seq: int = 0


@dataclass
class Part(Vouched):
    """One process's share of the pass (the leaves up to a seq), sent back whole."""

    tree: dict[str, Any] = field(default_factory=dict)  # TreeWalk.state() after its leaves
    findings: list[Finding] = field(default_factory=list)
    omitted: int = 0
    expect: int = 1  # the seq the next leaf would have to have
    last_id: int = -1  # the event id of its last row


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose reads all see one moment of the database.

    Verification reads the head, the events and the vouched-for tables; a writer
    appending meanwhile must not make them disagree.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        elif engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # pysqlite would not start one for reads
        try:
            yield connection
        finally:
            connection.rollback()


def read_head(connection: Connection) -> Head:
    """The head row (size 0 and the empty root when the row is missing)."""
    found = connection.exec_driver_sql(
        "SELECT size, root, frontier FROM shipyard_audit_head WHERE id = 1"
    ).first()
    if found is None:
        return Head(0, EMPTY_ROOT.hex(), [])
    size, root, frontier = found
    if isinstance(frontier, str | bytes):
        try:
            frontier = orjson.loads(frontier)
        except orjson.JSONDecodeError:
            frontier = []
    return Head(int(size), str(root), list(frontier or []))


def _at_text(value: Any) -> Any:
    """A stored time as the leaf spells it; anything unreadable stays as it is (and fails)."""
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, str):
        try:
            return utc_text(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


def _select(connection: Connection) -> str:
    quote = connection.dialect.identifier_preparer.quote
    return f"SELECT {', '.join(quote(c) for c in _COLUMNS)} FROM shipyard_events"


def rehash(row: Any) -> bytes:
    """The leaf hash of an event row (its columns in ``_COLUMNS`` order), recomputed."""
    seq, at, actor, token, role, kind, subject, payload, reason, request, before, after = row[:12]
    body = orjson.loads(payload) if isinstance(payload, str | bytes) else payload
    fields = {
        "seq": seq, "at": _at_text(at), "actor": actor, "token_id": token, "role": role,
        "kind": kind, "subject": subject, "payload": body, "reason": reason,
        "request_id": request, "before": before, "after": after,
    }  # fmt: skip
    return leaf_hash(leaf_bytes(fields))


def leaf_of(connection: Connection, seq: int) -> tuple[Row[Any] | None, bytes]:
    """The event row at ``seq`` and its recomputed leaf hash (``None``, ``b""``: no row)."""
    query = text(f"{_select(connection)} WHERE seq = :seq ORDER BY id")
    row = connection.execute(query, {"seq": seq}).first()
    if row is None:
        return None, b""
    try:
        return row, rehash(row)
    except (TypeError, ValueError, orjson.JSONDecodeError):
        return row, b""


def scan_log(
    connection: Connection, walk: TreeWalk, findings: Findings, *, total: int, progress: Progress
) -> LogScan:
    """Read every event in ``seq`` order into ``walk``, adding what is wrong to ``findings``."""
    scan = LogScan(walk=walk)
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        progress(done, total)

    query = f"{_select(connection)} ORDER BY seq, id"
    expect, _, _ = _read(batches(connection, query), scan, findings, 1, -1, walk.extend, advance)
    scan.last_seq = expect - 1
    return scan


def scan_part(url: str, upto: int, sizes: list[int], ranges: list[Range]) -> Part:
    """The leaves with seq up to ``upto``, read by another process on its own connection,
    with the tree over them (its roots at ``sizes`` and of ``ranges`` it reaches).

    Those leaves were written before the head the caller read, and nothing legitimate
    changes them afterwards, so a later snapshot than the caller's sees the same rows.
    """
    from sqlalchemy import create_engine

    engine = create_engine(url)
    part, findings = Part(), Findings()
    walk = TreeWalk(
        sizes=[s for s in sizes if s <= upto], ranges=[r for r in ranges if r[1] <= upto]
    )
    try:
        with snapshot(engine) as connection:
            query = f"{_select(connection)} WHERE seq <= {int(upto)} ORDER BY seq, id"
            rows = batches(connection, query)
            part.expect, part.last_id, _ = _read(
                rows, part, findings, 1, -1, walk.extend, lambda _rows: None
            )
    finally:
        engine.dispose()
    part.tree, part.findings, part.omitted = walk.state(), findings.items, findings.omitted
    return part


def scan_after(
    connection: Connection,
    upto: int,
    findings: Findings,
    *,
    total: int,
    progress: Progress,
) -> tuple[LogScan, list[bytes], tuple[int, int] | None]:
    """The leaves after seq ``upto`` (the caller's snapshot): what they vouch for, their
    hashes in order, and the (seq, id) of the first, for the seam with the part before."""
    scan = LogScan()
    leaves: list[bytes] = []
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows  # the other process reads the rows before, as fast: count them alike
        progress(min(total, done * total // max(1, total - upto)), total)

    query = f"{_select(connection)} WHERE seq > {int(upto)} OR seq IS NULL ORDER BY seq, id"
    expect, _, first = _read(
        batches(connection, query), scan, findings, upto + 1, -1, leaves.extend, advance
    )
    scan.last_seq = expect - 1
    return scan, leaves, first


def seam(part: Part, upto: int, first: tuple[int, int] | None, findings: Findings) -> None:
    """What only shows where the two shares meet: leaves missing just before ``upto + 1``
    (when rows follow), or a first row after it written before the part's last row."""
    if first is None:
        return  # nothing after the part: the head's count says whether the tail is gone
    if part.expect <= upto:
        gone = f"seq {part.expect}" + (f" to {upto} are" if part.expect < upto else " is")
        findings.add(
            Finding(
                "deleted",
                f"{gone} missing (the log goes on at seq {first[0]}, event id {first[1]}): "
                f"{upto - part.expect + 1} row(s) deleted",
                seq=part.expect,
                event_id=first[1],
            )
        )
    if isinstance(first[1], int) and first[1] <= part.last_id:
        seq, event_id = first
        findings.add(
            Finding(
                "reordered",
                f"seq {part.expect - 1} (event id {part.last_id}) was written after seq {seq} "
                f"(event id {event_id}): rows were reordered, or one inserted at seq "
                f"{part.expect - 1}",
                seq=part.expect - 1,
                event_id=part.last_id,
            )
        )


def _read(
    rows: Iterator[Sequence[Any]],
    into: Vouched,
    findings: Findings,
    expect: int,
    last_id: int,
    sink: Callable[[list[bytes]], None],
    advance: Callable[[int], None],
) -> tuple[int, int, tuple[int, int] | None]:
    """The loop every pass runs: recompute each leaf, check its place, note what it vouches
    for, hand the hashes to ``sink`` a batch at a time. Returns the next expected seq, the
    last event id, and the first row's (seq, id)."""
    loads, dumps, leaf = orjson.loads, canonical, leaf_hash
    watched, first = _WATCHED, None
    for batch in rows:
        if first is None and batch:
            first = (batch[0][0], batch[0][12])
        hashes = []
        for row in batch:
            seq, at, actor, token, role, kind, subject, payload, reason, request, before, after, event_id, stored = row  # noqa: E501  # fmt: skip
            try:
                if type(at) is str and len(at) == 26 and at[10] == " " and at[19] == ".":
                    at = at[:10] + "T" + at[11:] + "+00:00"  # SQLite's naive UTC, as utc_text
                else:
                    at = _at_text(at)
                body = loads(payload) if type(payload) is str else payload
                data = dumps(
                    {"seq": seq, "at": at, "actor": actor, "token_id": token, "role": role,
                     "kind": kind, "subject": subject, "payload": body, "reason": reason,
                     "request_id": request, "before": before, "after": after},
                )  # fmt: skip
                hashed = leaf(data)
                if seq != expect or event_id <= last_id or hashed.hex() != stored:
                    expect = _anomaly(findings, row, expect, last_id, hashed.hex() != stored)
                else:
                    expect += 1
                if kind in watched or "row" in body:
                    _vouch(into, row, body)
                last_id = event_id
            except (TypeError, ValueError, orjson.JSONDecodeError):
                # A column no writer could have produced (SQLite keeps any type): edited.
                hashed = leaf(repr(row).encode())
                expect = _anomaly(findings, row, expect, last_id, True)
            hashes.append(hashed)
        sink(hashes)
        advance(len(batch))
    return expect, last_id, first


def batches(connection: Connection, query: str) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` in batches of plain tuples, streamed from the server.

    On SQLite the driver's own cursor, in the connection's transaction, skips a result
    object per row: a third of the time of a million-row pass.
    """
    if connection.dialect.name == "sqlite":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(query)
            while batch := cursor.fetchmany(_BATCH):
                yield batch
        finally:
            cursor.close()
        return
    result = connection.execution_options(stream_results=True).exec_driver_sql(query)
    yield from result.partitions(_BATCH)


def _anomaly(findings: Findings, row: Any, expect: int, last_id: int, edited: bool) -> int:
    """Name what is wrong with ``row`` (not where it should be, or not what it hashed to);
    returns the next expected ``seq``."""
    seq, event_id = row[0], row[12]
    if not isinstance(seq, int) or isinstance(seq, bool):
        findings.add(
            Finding(
                "edited",
                f"event id {event_id} has seq {seq!r}, not a position in the log: edited",
                event_id=event_id,
            )
        )
        return expect + 1
    if seq < expect:
        findings.add(
            Finding(
                "inserted",
                f"seq {seq} appears twice (event id {event_id} is the second): a row was "
                "inserted outside Shipyard",
                seq=seq,
                event_id=event_id,
            )
        )
    elif seq > expect:
        gone = f"seq {expect} is" if seq == expect + 1 else f"seq {expect} to {seq - 1} are"
        findings.add(
            Finding(
                "deleted",
                f"{gone} missing (the log jumps to seq {seq}, event id {event_id}): "
                f"{seq - expect} row(s) deleted",
                seq=expect,
                event_id=event_id,
            )
        )
    if isinstance(event_id, int) and event_id <= last_id:
        findings.add(
            Finding(
                "reordered",
                f"seq {seq - 1} (event id {last_id}) was written after seq {seq} "
                f"(event id {event_id}): rows were reordered, or one inserted at seq {seq - 1}",
                seq=seq - 1,
                event_id=last_id,
            )
        )
    if edited:
        findings.add(
            Finding(
                "edited",
                f"row seq {seq} (event id {event_id}) was edited: its columns no longer "
                "hash to its leaf",
                seq=seq,
                event_id=event_id,
            )
        )
    return max(expect, seq + 1)


def _vouch(scan: Vouched, row: Any, body: Any) -> None:
    """Remember the row a leaf vouches for, or (for older leaves) what it said."""
    seq, actor, kind, subject, after, event_id = row[0], row[2], row[5], row[6], row[11], row[12]
    if not isinstance(body, dict) or not isinstance(subject, str):
        return
    named = body.get("row")
    if isinstance(named, dict) and "table" in named:
        scan.refs[(str(named["table"]), named.get("id"))] = Ref(seq, event_id, after, actor)
        return
    if kind.startswith("token.") and subject.startswith("token:"):
        token = subject.removeprefix("token:")
        scan.refs[("shipyard_tokens", token)] = Ref(seq, event_id, after, actor)
        return
    legacy = scan.legacy
    if kind in _ALIAS_KINDS and subject.startswith("model:") and "@" in subject:
        model, _, alias = subject.removeprefix("model:").rpartition("@")
        key: tuple[Any, ...] = (model, alias, body.get("from_version"), body.get("to_version"),
               kind.removeprefix("alias."), bool(body.get("forced")), body.get("reason") or "",
               actor)  # fmt: skip
        legacy.setdefault("shipyard_alias_moves", Counter())[key] += 1
    elif kind == EventKind.MODEL_VERSION_APPROVED and "/" in subject:
        model, _, version = subject.removeprefix("model:").rpartition("/")
        key = (model, version, actor, str(body.get("comment", "")))
        legacy.setdefault("shipyard_approvals", Counter())[key] += 1
    elif kind == EventKind.TRAFFIC_CHANGED:
        scan.legacy_traffic[subject.removeprefix("model:")] = {
            k: v for k, v in body.items() if k != "generation"
        }
    elif kind == EventKind.ROLLOUT_STARTED and "id" in body:
        legacy.setdefault("shipyard_rollouts", Counter())[body["id"]] += 1
    elif kind in (EventKind.CT_CYCLE_STARTED, EventKind.CT_SKIPPED) and "cycle" in body:
        legacy.setdefault("shipyard_ct_cycles", Counter())[body["cycle"]] += 1
