"""The audit log's API: the streaming tree, leaves, vouched-for rows, checkpoints, proofs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from shipyard.access import ROLES, Principal, Scope
from shipyard.config import Config
from shipyard.errors import AuditFailed, Forbidden, NotFoundError, SigningError
from shipyard.governance.audit import (
    audit_log,
    checkpoint_due,
    checkpoint_folder,
    inclusion,
    verify,
    write_checkpoint,
)
from shipyard.governance.audit_tree import TreeWalk
from shipyard.governance.audit_verify import Finding, Findings, leaf_bytes
from shipyard.governance.signing import generate_keys, load_public_key
from shipyard.project import Project
from shipyard.store import AliasMoveRow, DeploymentRow, EventKind, EventRow, Store
from shipyard.store.audit_leaf import LEAF_FIELDS, leaf_data, row_values
from shipyard.store.bound_rows import BOUND_TABLES, bound_digest
from shipyard.store.merkle import (
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    root,
    verify_inclusion,
)
from shipyard.store.traffic import TrafficSettings, write_traffic
from tests.support import load, project_of
from tests.support.audit_history import MODEL, build_history, keys_for, sql


@pytest.fixture
def config(initialised_example: Path) -> Config:
    """A project with MLflow's tables, a key pair and nothing recorded yet."""
    return load(initialised_example, keys_for(initialised_example))


@pytest.fixture
def project(config: Config) -> Any:
    opened = project_of(config)
    yield opened
    opened.close()


def _leaves(count: int) -> list[bytes]:
    return [leaf_hash(str(i).encode()) for i in range(count)]


@given(st.integers(1, 140), st.data())
def test_the_streaming_tree_builds_the_same_roots_and_proofs_as_merkle(
    size: int, data: st.DataObject
) -> None:
    leaves = _leaves(size)
    old = data.draw(st.integers(0, size), label="old size")
    index = data.draw(st.integers(0, size - 1), label="leaf")
    wanted = consistency_ranges(old, size) + inclusion_ranges(index, size)
    walk = TreeWalk(sizes=[old, size], ranges=wanted)
    cut = data.draw(st.integers(0, size), label="batch split")
    walk.extend(leaves[:cut])
    for leaf in leaves[cut:]:
        walk.append(leaf)
    assert walk.roots[old] == root(leaves[:old]) and walk.root() == root(leaves)
    proof = [walk.subtrees[r] for r in consistency_ranges(old, size)]
    assert proof == consistency_proof(leaves, old, size)
    path = [walk.subtrees[r] for r in inclusion_ranges(index, size)]
    assert path == inclusion_proof(leaves, index, size)
    # Another process walks the first leaves; this one carries on from its state.
    first = TreeWalk(
        sizes=[s for s in (old, size) if s <= cut], ranges=[r for r in wanted if r[1] <= cut]
    )
    first.extend(leaves[:cut])
    rest = TreeWalk.resume(first.state(), sizes=[old, size], ranges=wanted)
    rest.extend(leaves[cut:])
    assert rest.roots == walk.roots and rest.root() == walk.root()
    assert all(rest.subtrees[r] == walk.subtrees[r] for r in wanted)


def test_a_walk_that_never_reaches_a_size_leaves_it_out() -> None:
    walk = TreeWalk(sizes=[0, 5, 9], ranges=[(4, 8)])
    walk.extend(_leaves(6))
    assert set(walk.roots) == {0, 5} and not walk.subtrees


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 1, 12, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 7),  # naive, as SQLite hands it back
        datetime(2026, 3, 1, 17, 30, 0, 7, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_verify_spells_a_leaf_exactly_as_the_store_writes_it(at: datetime) -> None:
    fields = {
        "seq": 7, "at": at, "actor": "zoë", "token_id": "tok", "role": None,
        "kind": "alias.promote", "subject": "model:churn@champion",
        "payload": {"b": [1, 2.5, None, True], "a": {"z": "ü", "y": 10**18}, "row": None},
        "reason": "weil", "request_id": "r-1", "before": "0" * 64, "after": None,
    }  # fmt: skip
    assert set(fields) == set(LEAF_FIELDS)
    assert leaf_bytes(fields) == leaf_data(fields)


def test_findings_past_the_limit_are_counted_and_the_first_names_the_earliest_row() -> None:
    findings = Findings(limit=2)
    findings.add(Finding("rewritten", "history before a checkpoint", seq=1))
    findings.add(Finding("edited", "row seq 9", seq=9))
    findings.add(Finding("deleted", "row seq 4", seq=4))
    assert len(findings.items) == 2 and findings.omitted == 1
    first = findings.first()
    assert first is not None and first.seq == 9  # a row beats a range of the log


def test_every_write_path_vouches_for_its_row_in_one_transaction(config: Config) -> None:
    build_history(config)
    store = Store(config.db_url, actor="tester")
    try:
        with store.session() as session:
            events = session.scalars(select(EventRow).order_by(EventRow.seq)).all()
            named = [e for e in events if "row" in e.payload]
            assert {e.payload["row"]["table"] for e in named} == set(BOUND_TABLES) - {
                "shipyard_tokens"  # tokens are named by their subject, token:<id>
            }
            latest = {(e.payload["row"]["table"], e.payload["row"]["id"]): e for e in named}
            for (table, key), event in latest.items():
                row = session.get(BOUND_TABLES[table], key)
                assert row is not None and bound_digest(row) == event.after, (table, key)
            moves = session.scalars(select(AliasMoveRow).order_by(AliasMoveRow.id)).all()
            chained = [latest[("shipyard_alias_moves", move.id)].before for move in moves]
            assert chained == [None, bound_digest(moves[0]), bound_digest(moves[1])]
    finally:
        store.close()


def test_a_failed_transaction_keeps_neither_the_row_nor_its_leaf(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cp.db'}", actor="tester")
    try:
        with pytest.raises(RuntimeError, match="boom"), store.session() as session:
            write_traffic(store, "churn", TrafficSettings(challengers={"2": 0.5}), session=session)
            raise RuntimeError("boom")
        assert store.deployment("churn") == (0, None)
        assert store.events() == []
        write_traffic(store, "churn", TrafficSettings(challengers={"2": 0.5}))
        (event,) = store.events()
        assert event.seq == 1 and event.payload["row"] == {
            "table": "shipyard_deployments",
            "id": "churn",
        }
    finally:
        store.close()


def test_writing_a_checkpoint_signs_the_head_into_the_folder(project: Project) -> None:
    project.store.record(EventKind.RUN_FINISHED, "run:1", {"model": "churn"})
    saved = write_checkpoint(project)
    folder = checkpoint_folder(project.config).local_path()
    assert folder == project.config.root / ".shipyard" / "audit"
    path = Path(saved.path or "")
    assert path.parent == folder
    assert re.fullmatch(r"checkpoint-1-\d{8}T\d{6}\.\d{6}Z\.json", path.name)
    data = json.loads(path.read_text())
    assert {"size": 1, "root": saved.root, "project": "churn-example"}.items() <= data.items()
    assert data["root"] == root([leaf_hash(leaf_data(_first_event(project)))]).hex()
    public = load_public_key(project.config.resolve(project.config.signing.public_key))
    from shipyard.governance.checkpoints import read_checkpoint, signature_problem

    assert signature_problem(read_checkpoint(path), public, "churn-example") is None
    (event,) = audit_log(project.store, kind=EventKind.AUDIT_CHECKPOINT)
    assert event.payload == {"size": 1, "root": saved.root, "file": path.name, "key": saved.key}
    report = verify(project, registry=False)
    assert report.ok and [c.name for c in report.checkpoints] == [path.name]


def _first_event(project: Project) -> dict[str, Any]:
    with project.store.session() as session:
        row = session.scalars(select(EventRow).where(EventRow.seq == 1)).one()
        return row_values(row)


def test_a_checkpoint_needs_audit_write_and_the_private_key(config: Config) -> None:
    reader = Principal("val", "token", role="viewer", scopes=frozenset({Scope.AUDIT_READ}))
    viewer = Project(config, reader)
    with pytest.raises(Forbidden, match="audit:write"):
        write_checkpoint(viewer)
    keyless = Project(
        load(config.root, {"signing.private_key": str(config.root / "no" / "key.pem")}),
        Principal("tester", "test"),
    )
    with pytest.raises(SigningError) as raised:
        write_checkpoint(keyless)
    assert "no private signing key" in raised.value.message
    assert "shipyard keys init" in (raised.value.hint or "")
    viewer.close()
    keyless.close()


def test_no_checkpoint_is_signed_over_a_tampered_log(project: Project) -> None:
    for n in range(3):
        project.store.record(EventKind.RUN_FINISHED, f"run:{n}", {"n": n})
    sql(project.store.engine, "UPDATE shipyard_events SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(AuditFailed, match=r"Refusing to sign a checkpoint: row seq 2"):
        write_checkpoint(project)
    assert not checkpoint_folder(project.config).exists()


def test_untrustworthy_checkpoint_files_are_findings(project: Project, tmp_path: Path) -> None:
    project.store.record(EventKind.RUN_FINISHED, "run:1", {})
    good = Path(write_checkpoint(project).path or "")
    edited = good.with_name("checkpoint-1-20000101T000000.000000Z.json")
    data = json.loads(good.read_text())
    edited.write_text(json.dumps({**data, "root": "ab" * 32}))
    damaged = good.with_name("checkpoint-2-20000101T000000.000000Z.json")
    damaged.write_text("{not json")
    other = tmp_path / "other"
    generate_keys(other / "k.pem", other / "k.pub")
    stranger = load(project.config.root, {"signing.private_key": str(other / "k.pem")})
    foreign = Path(write_checkpoint(Project(stranger, Principal("eve", "test"))).path or "")
    report = verify(project, registry=False)
    assert not report.ok
    by_file = {f.checkpoint: f.message for f in report.findings if f.problem == "checkpoint"}
    assert "signature does not verify" in by_file[edited.name]
    assert "not JSON" in by_file[damaged.name]
    assert "signed with another key" in by_file[foreign.name]
    assert [c.ok for c in report.checkpoints if c.name == good.name] == [True]


def test_a_named_checkpoint_is_proved_consistent_with_the_head(project: Project) -> None:
    project.store.record(EventKind.RUN_FINISHED, "run:1", {})
    early = Path(write_checkpoint(project).path or "")
    for n in range(5):
        project.store.record(EventKind.RUN_FINISHED, f"run:{n + 2}", {})
    report = verify(project, [early], registry=False)
    assert report.ok
    (proof,) = report.proofs
    assert (proof.old, proof.old_size, proof.new, proof.new_size) == (early.name, 1, "head", 7)
    assert proof.ok and len(proof.proof) >= 1


def test_the_log_filters_by_kind_actor_subject_and_time(config: Config) -> None:
    alice, bob = project_of(config, "alice"), project_of(config, "bob")
    alice.store.record(EventKind.RUN_FINISHED, "run:a", {})
    bob.store.record(EventKind.MONITOR_RAN, "model:churn/1", {})
    bob.store.record(EventKind.RUN_FINISHED, "run:b", {}, reason="nightly")
    store = alice.store
    assert [e.seq for e in audit_log(store)] == [3, 2, 1]
    assert [e.subject for e in audit_log(store, actor="bob")] == ["run:b", "model:churn/1"]
    assert [e.actor for e in audit_log(store, kind="run.finished")] == ["bob", "alice"]
    assert [e.seq for e in audit_log(store, subject="model:")] == [2]
    assert [e.reason for e in audit_log(store, limit=1)] == ["nightly"]
    assert audit_log(store, since=datetime.now(UTC) + timedelta(minutes=1)) == []
    alice.close()
    bob.close()


def test_an_inclusion_proof_checks_out_and_bad_seqs_are_refused(project: Project) -> None:
    for n in range(6):
        project.store.record(EventKind.RUN_FINISHED, f"run:{n}", {"n": n})
    proof = inclusion(project, 4)
    assert (proof.seq, proof.index, proof.tree_size) == (4, 3, 6)
    nodes = [bytes.fromhex(node) for node in proof.path]
    assert verify_inclusion(bytes.fromhex(proof.leaf_hash), 3, 6, nodes, bytes.fromhex(proof.root))
    for missing in (0, 7):
        with pytest.raises(NotFoundError, match="holds seq 1 to 6"):
            inclusion(project, missing)
    sql(project.store.engine, "UPDATE shipyard_events SET reason = 'x' WHERE seq = 4")
    with pytest.raises(AuditFailed, match="Leaf seq 4 was edited"):
        inclusion(project, 4)


def test_reading_the_log_needs_audit_read(config: Config) -> None:
    nobody = Project(config, Principal("nobody", "token", role="viewer", scopes=frozenset()))
    for call in (lambda: verify(nobody), lambda: inclusion(nobody, 1)):
        with pytest.raises(Forbidden, match="audit:read"):
            call()
    nobody.close()


def test_rows_from_before_the_audit_log_are_matched_by_content(project: Project) -> None:
    store = project.store
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    with store.session() as session:  # as Shipyard wrote them before rows were named
        session.add(
            AliasMoveRow(
                model="churn", alias="champion", from_version=None, to_version="1",
                action="promote", forced=False, reason="", actor="alice", at=moment,
            )
        )  # fmt: skip
        session.add(DeploymentRow(model="churn", generation=2, traffic={"challengers": {}}))
    legacy = Project(project.config, Principal("alice", "test"))
    legacy.store.record(
        EventKind.ALIAS_PROMOTE,
        "model:churn@champion",
        {"from_version": None, "to_version": "1", "reason": "", "forced": False},
    )
    legacy.store.record(
        EventKind.TRAFFIC_CHANGED, "model:churn", {"challengers": {}, "generation": 2}
    )
    assert verify(project, registry=False).ok
    sql(store.engine, "UPDATE shipyard_alias_moves SET actor = 'mallory'")
    report = verify(project, registry=False)
    (finding,) = report.findings
    assert finding.problem == "row_inserted" and "by 'mallory'" in finding.message
    legacy.close()


def test_registry_drift_is_a_finding(config: Config) -> None:
    build_history(config)
    project = project_of(config)
    project.client.set_registered_model_alias(MODEL, "champion", "3")  # plain MLflow
    report = verify(project)
    drift = [f for f in report.findings if f.problem == "drift"]
    assert len(drift) == 1 and f"{MODEL}@champion" in drift[0].message
    assert "MLflow points at 3" in drift[0].message
    from shipyard.governance.audit import _examine

    split = _examine(project, None, split_at=5)  # the registry asked by a worker process
    assert [f.message for f in split.findings] == [f.message for f in report.findings]
    project.close()


def test_a_checkpoint_is_due_every_checkpoint_minutes_and_only_with_a_key(
    config: Config,
) -> None:
    project = project_of(config)
    assert checkpoint_due(project)  # none yet
    saved = write_checkpoint(project)
    written = datetime.fromisoformat(saved.at)
    assert not checkpoint_due(project, written + timedelta(minutes=59))
    assert checkpoint_due(project, written + timedelta(minutes=60))  # the default period
    keyless = project_of(load(config.root, {"signing.private_key": str(config.root / "x.pem")}))
    assert not checkpoint_due(keyless)
    project.close()
    keyless.close()


def test_the_agent_signs_checkpoints_as_itself(config: Config) -> None:
    from shipyard.agent import Agent

    who = Principal("agent", "token", role="operator", scopes=ROLES["operator"].scopes)
    operator = Project(config, who)
    agent = Agent(operator)
    report = agent.tick()
    (action,) = [a for a in report.actions if a.startswith("audit checkpoint")]
    (event,) = audit_log(operator.store, kind=EventKind.AUDIT_CHECKPOINT)
    assert event.actor == "agent" and event.role == "operator"
    assert event.payload["file"] in action
    assert not [a for a in agent.tick().actions if a.startswith("audit checkpoint")]
    operator.close()
