"""One pass over the audit log: recompute every leaf, rebuild the tree, name what is wrong.

The events are read once, in ``seq`` order, with a plain SQL query (no ORM objects: a
million rows in a few seconds). For each row the leaf is recomputed from its columns
and compared with the stored leaf hash (an *edited* row); ``seq`` must run 1, 2, 3 …
(a gap is a *deleted* row, a repeat an *inserted* one) and ids must rise with it
(*reordered* or inserted rows). The recomputed hashes build the tree, so the root at
the head's size, and at every checkpoint's, can be compared with what was recorded or
signed. On the way, each leaf that vouches for a row of another table
(``payload["row"]``) is remembered for :mod:`shipyard.governance.audit_rows`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from hashlib import sha256
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, text

from shipyard.governance.audit_tree import TreeWalk
from shipyard.jsonable import Record
from shipyard.store.audit_leaf import utc_text
from shipyard.store.event_kinds import EventKind

__all__ = [
    "Finding",
    "Findings",
    "Head",
    "LogScan",
    "Ref",
    "batches",
    "leaf_bytes",
    "leaf_of",
    "read_head",
    "rehash",
    "scan_log",
    "snapshot",
]

_EXACT = frozenset(
    {"edited", "deleted", "inserted", "reordered", "truncated"}
    | {"row_edited", "row_deleted", "row_inserted"}
)  # findings that name a row, not a range of the log

Progress = Callable[[int, int], None]
"""Called as ``progress(rows_read, rows_expected)`` while the log is read."""

_BATCH = 20_000
_LEAF = b"\x00"
# The same bytes as shipyard.store.audit_leaf.leaf_data, without its copy of the fields
# (a test compares the two on every kind of value).
_LEAF_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
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


def _leaf_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def leaf_bytes(fields: dict[str, Any]) -> bytes:
    """The canonical bytes of a leaf whose ``fields`` are exactly the leaf fields."""
    return orjson.dumps(fields, default=_leaf_default, option=_LEAF_OPTIONS)


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
class LogScan:
    """What one pass over the events found."""

    walk: TreeWalk
    last_seq: int = 0
    refs: dict[tuple[str, Any], Ref] = field(default_factory=dict)
    legacy: dict[str, Counter[Any]] = field(default_factory=dict)
    legacy_traffic: dict[str, Any] = field(default_factory=dict)


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
    from shipyard.store.merkle import EMPTY_ROOT

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
    return sha256(_LEAF + leaf_bytes(fields)).digest()


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
    scan = LogScan(walk)
    loads, dumps, hash_, options, default = (
        orjson.loads, orjson.dumps, sha256, _LEAF_OPTIONS, _leaf_default,
    )  # fmt: skip
    watched = _WATCHED
    expect, last_id, done = 1, -1, 0
    for batch in batches(connection, f"{_select(connection)} ORDER BY seq, id"):
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
                    default=default, option=options,
                )  # fmt: skip
                hashed = hash_(_LEAF + data).digest()
                if seq != expect or event_id <= last_id or hashed.hex() != stored:
                    expect = _anomaly(findings, row, expect, last_id, hashed.hex() != stored)
                else:
                    expect += 1
                if kind in watched or "row" in body:
                    _vouch(scan, row, body)
                last_id = event_id
            except (TypeError, ValueError, orjson.JSONDecodeError):
                # A column no writer could have produced (SQLite keeps any type): edited.
                hashed = hash_(_LEAF + repr(row).encode()).digest()
                expect = _anomaly(findings, row, expect, last_id, True)
            hashes.append(hashed)
        walk.extend(hashes)
        done += len(batch)
        progress(done, total)
    scan.last_seq = expect - 1
    return scan


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


def _vouch(scan: LogScan, row: Any, body: Any) -> None:
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
