"""The tamper suite: someone with plain SQL access changes the audit log; verify names it.

One real history is built per database (SQLite and the real PostgreSQL) and signed with
a checkpoint; each test gets its own copy of the database, tampers with it in one way,
and checks that ``verify`` fails naming the row (or the checkpoint) involved.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from shipyard.config import Config
from shipyard.governance.audit import AuditReport, inclusion, verify, write_checkpoint
from shipyard.project import Project
from shipyard.store import AuditHeadRow, EventKind, EventRow
from shipyard.store.audit_leaf import leaf_data, row_values
from shipyard.store.merkle import CompactRange, leaf_hash, verify_inclusion
from tests.support import copy_example, load, project_of
from tests.support.audit_history import History, build_history, keys_for, sql


@dataclass
class Template:
    """The built history, signed, that every test copies."""

    config: Config
    overrides: dict[str, Any]
    history: History
    backend: str
    admin: Any = None  # the PostgreSQL admin engine
    database: str = ""  # the PostgreSQL template database


@dataclass
class Case:
    """One test's private copy of the template."""

    project: Project
    url: str
    history: History

    def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        return sql(self.project.store.engine, statement, **params)

    def verify(self) -> AuditReport:
        return verify(self.project, registry=False)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def template(
    request: pytest.FixtureRequest,
    trained_examples: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Template]:
    folder = tmp_path_factory.mktemp(f"audit-{request.param}")
    if request.param == "sqlite":
        root = trained_examples.copy(folder / "churn").root  # MLflow's tables exist already
        overrides = keys_for(root)
        admin, database = None, ""
    else:
        admin = request.getfixturevalue("_postgres_admin")
        database = f"shipyard_audit_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        root = copy_example(folder / "churn")
        overrides = {
            **keys_for(root),
            "database_url": _url(admin, database),
        }
    config = load(root, overrides)
    history = build_history(config)
    project = project_of(config)
    write_checkpoint(project)  # signs every leaf of the history
    project.close()
    yield Template(config, overrides, history, request.param, admin, database)
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture
def case(template: Template, tmp_path: Path) -> Iterator[Case]:
    audit = tmp_path / "audit"
    shutil.copytree(template.config.resolve(template.config.security.checkpoints), audit)
    overrides = {**template.overrides, "security.checkpoints": str(audit)}
    clone = ""
    if template.backend == "sqlite":
        copy = tmp_path / "copy.db"
        original = sqlite3.connect(template.config.db_url.removeprefix("sqlite:///"))
        target = sqlite3.connect(copy)
        original.backup(target)
        original.close()
        target.close()
        overrides["database_url"] = f"sqlite:///{copy}"
    else:
        clone = f"{template.database}_{uuid.uuid4().hex[:6]}"
        with template.admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": template.database},
            )
            conn.execute(text(f'CREATE DATABASE "{clone}" TEMPLATE "{template.database}"'))
        overrides["database_url"] = _url(template.admin, clone)
    project = project_of(load(template.config.root, overrides))
    yield Case(project, overrides["database_url"], template.history)
    project.close()
    if clone:
        with template.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{clone}" WITH (FORCE)'))


def _url(admin: Any, database: str) -> str:
    """The URL of ``database`` on the server the admin engine talks to."""
    return str(admin.url.set(database=database).render_as_string(hide_password=False))


def _event_id(case: Case, seq: int) -> int:
    return int(case.sql("SELECT id FROM shipyard_events WHERE seq = :seq", seq=seq)[0][0])  # type: ignore[call-overload]


def _problems(report: AuditReport) -> set[str]:
    return {finding.problem for finding in report.findings}


def _rehash_from(case: Case, *, head: bool) -> None:
    """What an attacker who knows the format does: recompute every leaf hash from the
    rows as they now stand (and, with ``head``, the head too), so each row looks right."""
    engine = create_engine(case.url)
    with Session(engine) as session, session.begin():
        tree = CompactRange()
        for row in session.scalars(select(EventRow).order_by(EventRow.seq)):
            hashed = leaf_hash(leaf_data(row_values(row)))
            row.leaf_hash = hashed.hex()
            tree.append(hashed)
        if head:
            top = session.get(AuditHeadRow, 1)
            assert top is not None
            top.size, top.root, top.frontier = tree.size, tree.root().hex(), tree.to_hashes()
    engine.dispose()


def test_an_untouched_log_verifies_and_proves_its_events(case: Case) -> None:
    report = case.verify()
    assert report.ok, report.findings
    assert report.first is None and report.findings == ()
    assert report.size == report.head_size == case.history.size + 1  # + the checkpoint's
    assert [check.ok for check in report.checkpoints] == [True]
    assert report.proofs and all(proof.ok for proof in report.proofs)
    assert report.rows_checked >= 8  # moves, approval, traffic, roll-out, cycle, token
    assert report.summary().startswith(f"verified: {report.size} leaves, root {report.root}")
    proof = inclusion(case.project, case.history.rollback_seq)
    path = [bytes.fromhex(node) for node in proof.path]
    leaf, root = bytes.fromhex(proof.leaf_hash), bytes.fromhex(proof.root)
    assert verify_inclusion(leaf, proof.index, proof.tree_size, path, root)


def test_an_edited_event_is_named(case: Case) -> None:
    seq = 3
    case.sql("UPDATE shipyard_events SET actor = 'mallory' WHERE seq = :seq", seq=seq)
    report = case.verify()
    assert not report.ok
    assert report.first is not None
    assert (report.first.problem, report.first.seq) == ("edited", seq)
    assert report.first.event_id == _event_id(case, seq)
    assert f"row seq {seq}" in report.first.message and "was edited" in report.first.message
    assert "rewritten" in _problems(report)  # and the signed checkpoint no longer holds


def test_an_edited_alias_move_row_is_named(case: Case) -> None:
    move = case.history.first_move_id
    case.sql("UPDATE shipyard_alias_moves SET actor = 'mallory' WHERE id = :id", id=move)
    report = case.verify()
    assert not report.ok and _problems(report) == {"row_edited"}
    (finding,) = report.findings
    assert (finding.table, finding.row) == ("shipyard_alias_moves", str(move))
    assert "'mallory'" in finding.message and "'tester'" in finding.message
    assert report.first == finding


def test_a_deleted_event_in_the_middle_is_named(case: Case) -> None:
    case.sql("DELETE FROM shipyard_events WHERE seq = 5")
    report = case.verify()
    assert report.first is not None
    assert (report.first.problem, report.first.seq) == ("deleted", 5)
    assert "seq 5 is missing" in report.first.message


def test_two_swapped_rows_are_named(case: Case) -> None:
    # Every column but the id: each row still hashes to its own leaf, only the order lies.
    a, b = _event_id(case, 4), _event_id(case, 6)
    engine = create_engine(case.url)
    with Session(engine) as session, session.begin():
        first, second = session.get(EventRow, a), session.get(EventRow, b)
        assert first is not None and second is not None
        values = {name: value for name, value in row_values(first).items() if name != "id"}
        others = {name: value for name, value in row_values(second).items() if name != "id"}
        first.seq, second.seq = -1, -2  # out of the way of the unique seq
        session.flush()
        for row, taken in ((first, others), (second, values)):
            for name, value in taken.items():
                setattr(row, name, value)
    engine.dispose()
    report = case.verify()
    assert not report.ok and "reordered" in _problems(report)
    assert "edited" not in _problems(report)
    assert report.first is not None and report.first.problem == "reordered"
    assert (report.first.seq, report.first.event_id) == (4, b)  # b now sits before older rows
    from shipyard.governance.audit import _examine

    for upto in (4, 5):  # split just where the order breaks: the seam must see it too
        assert _outline(_examine(case.project, None, registry=False, split_at=upto)) == _outline(
            report
        )


def test_a_swapped_seq_is_named(case: Case) -> None:
    case.sql("UPDATE shipyard_events SET seq = -1 WHERE seq = 4")
    case.sql("UPDATE shipyard_events SET seq = 4 WHERE seq = 6")
    case.sql("UPDATE shipyard_events SET seq = 6 WHERE seq = -1")
    report = case.verify()
    assert report.first is not None and report.first.seq == 4
    assert {"edited", "reordered"} <= _problems(report)


def test_a_row_forged_into_the_middle_is_named(case: Case) -> None:
    # Make room at seq 8 and recompute the shifted leaves, as a careful forger would.
    case.sql("UPDATE shipyard_events SET seq = seq + 100000 WHERE seq >= 8")
    case.sql("UPDATE shipyard_events SET seq = seq - 99999 WHERE seq >= 100000")
    forged = case.sql(
        "INSERT INTO shipyard_events (seq, at, actor, kind, subject, payload, reason, leaf_hash) "
        "VALUES (8, :at, 'alice', 'alias.override', 'model:fraud@champion', '{}', 'x', 'x') "
        "RETURNING id",
        at="2026-01-01 00:00:00.000000",
    )[0][0]
    _rehash_from(case, head=False)
    report = case.verify()
    assert not report.ok and report.first is not None
    assert report.first.problem == "reordered" and report.first.seq == 8
    assert report.first.event_id == forged
    assert {"head", "rewritten"} <= _problems(report)


def test_a_row_forged_at_the_end_with_a_correct_leaf_is_named(case: Case) -> None:
    size = case.verify().size
    at = "2030-01-01T00:00:00.000000+00:00"
    fields = {
        "seq": size + 1, "at": at, "actor": "alice",
        "token_id": None, "role": "admin", "kind": "alias.promote",
        "subject": "model:fraud@champion", "payload": {}, "reason": "", "request_id": None,
        "before": None, "after": None,
    }  # fmt: skip
    case.sql(
        "INSERT INTO shipyard_events (seq, at, actor, role, kind, subject, payload, reason, "
        "leaf_hash) VALUES (:seq, :at, :actor, :role, :kind, :subject, '{}', '', :leaf)",
        seq=size + 1, at=at, actor="alice", role="admin",
        kind="alias.promote", subject="model:fraud@champion",
        leaf=leaf_hash(leaf_data(fields)).hex(),
    )  # fmt: skip
    report = case.verify()
    assert report.first is not None
    assert (report.first.problem, report.first.seq) == ("inserted", size + 1)
    assert f"first past the head is seq {size + 1}" in report.first.message
    assert "edited" not in _problems(report)  # the forged leaf hash itself looks right


def test_a_truncated_tail_is_named(case: Case) -> None:
    size = case.verify().size
    case.sql("DELETE FROM shipyard_events WHERE seq > :keep", keep=size - 3)
    report = case.verify()
    assert report.first is not None
    assert (report.first.problem, report.first.seq) == ("truncated", size - 2)
    assert "the last 3 were deleted" in report.first.message


def test_a_truncation_with_a_rewritten_head_is_caught_by_the_checkpoint(case: Case) -> None:
    size = case.verify().size
    case.sql("DELETE FROM shipyard_events WHERE seq > :keep", keep=size - 3)
    _rehash_from(case, head=True)
    report = case.verify()
    assert not report.ok and report.first is not None
    assert report.first.problem == "truncated" and report.first.checkpoint
    assert "leaves were deleted" in report.first.message


def test_a_consistent_rewrite_before_a_checkpoint_is_named(case: Case) -> None:
    case.sql("UPDATE shipyard_events SET actor = 'mallory' WHERE seq = 2")
    _rehash_from(case, head=True)  # every leaf and the head agree with the forged rows
    report = case.verify()
    assert not report.ok
    assert "edited" not in _problems(report) and "head" not in _problems(report)
    rewritten = [f for f in report.findings if f.problem == "rewritten"]
    assert rewritten and all(f.checkpoint for f in rewritten)
    assert "history before checkpoint-" in rewritten[0].message
    assert not any(proof.ok for proof in report.proofs)


def test_a_consistent_rewrite_after_the_last_checkpoint_is_beyond_its_reach(
    case: Case,
) -> None:
    # The documented limit: a checkpoint vouches for the leaves it counted, no more.
    for window in ("1d", "2d"):
        case.project.store.record(EventKind.MONITOR_RAN, "model:fraud/1", {"window": window})
    last = case.verify().size
    case.sql("UPDATE shipyard_events SET actor = 'mallory' WHERE seq = :seq", seq=last)
    _rehash_from(case, head=True)
    assert case.verify().ok


def test_an_alias_move_row_inserted_with_plain_sql_is_named(case: Case) -> None:
    case.sql(
        "INSERT INTO shipyard_alias_moves (model, alias, from_version, to_version, action, "
        "forced, reason, actor, at) VALUES ('fraud', 'champion', '1', '3', 'promote', "
        ":no, '', 'mallory', :at)",
        no=False,
        at="2026-01-01 00:00:00",
    )
    report = case.verify()
    assert _problems(report) == {"row_inserted"}
    assert report.first is not None and "fraud@champion 1 → 3" in report.first.message


def test_the_issue_finding_mallory_and_a_deleted_rollback_are_reported(case: Case) -> None:
    # From the issue: an alias move's actor changed to mallory, the last rollback and
    # three events deleted. `events` and `models history` would show the forged history.
    history = case.history
    case.sql(
        "UPDATE shipyard_alias_moves SET actor = 'mallory' WHERE id = :id",
        id=history.first_move_id,
    )
    case.sql("DELETE FROM shipyard_alias_moves WHERE id = :id", id=history.rollback_move_id)
    case.sql(
        "DELETE FROM shipyard_events WHERE seq IN (:a, :b, :c)",
        a=history.rollback_seq, b=history.rollback_seq + 1, c=history.rollback_seq + 2,
    )  # fmt: skip
    report = case.verify()
    assert not report.ok
    messages = "\n".join(f.message for f in report.findings)
    assert f"row shipyard_alias_moves id {history.first_move_id} was changed" in messages
    assert "'mallory'" in messages
    assert f"seq {history.rollback_seq} to {history.rollback_seq + 2} are missing" in messages
    assert report.first is not None and report.first.problem == "row_edited"
    assert report.first.row == str(history.first_move_id)


def test_a_row_moved_past_the_head_is_named_as_a_gap_and_an_insert(case: Case) -> None:
    size = case.verify().size
    case.sql("UPDATE shipyard_events SET seq = :past WHERE seq = 4", past=size + 1)
    report = case.verify()
    assert report.size == report.head_size  # as many rows as the head counts, yet:
    assert report.first is not None and report.first.problem == "deleted"
    inserted = [f for f in report.findings if f.problem == "inserted"]
    assert inserted and f"first past the head is seq {size + 1}" in inserted[0].message


def _outline(report: AuditReport) -> tuple[Any, ...]:
    """What must not depend on how the pass was split: the verdict, the tree, the findings."""
    found = sorted((f.problem, f.seq or 0) for f in report.findings)
    first = None if report.first is None else (report.first.problem, report.first.seq)
    return report.ok, report.size, report.root, found, first, report.rows_checked


@pytest.mark.parametrize(
    "tamper",
    [
        "",
        "UPDATE shipyard_events SET actor = 'mallory' WHERE seq = 4",
        "DELETE FROM shipyard_events WHERE seq = 5",
        "UPDATE shipyard_events SET seq = seq + 1000 WHERE seq = 5",
        "DELETE FROM shipyard_events WHERE seq >= 18",
    ],
    ids=["untouched", "edited", "deleted", "moved-past-the-head", "truncated"],
)
def test_a_pass_split_across_two_processes_finds_the_same(case: Case, tamper: str) -> None:
    from shipyard.governance.audit import _examine

    if tamper:
        case.sql(tamper)
    whole = _outline(case.verify())
    for upto in (4, 5):  # the worker's share ends just before, at, or after the tampering
        split = _examine(case.project, None, registry=False, split_at=upto)
        assert _outline(split) == whole, upto
