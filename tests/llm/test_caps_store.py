"""Caps in the control-plane database, on SQLite and on PostgreSQL (127.0.0.1:5432, the
test is skipped, saying so, when that server is unreachable): stored caps set, removed
and listed (authorised and audited), usage added atomically by concurrent workers, and
two CapGuards on one database enforcing one cap.

No provider is involved; the clock is one the test moves, except for the background
sync test, which waits on the real thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from shipyard.access import ROLES, Grant, Permission, Principal
from shipyard.config import load_config
from shipyard.errors import ConfigError, Forbidden, NotFoundError
from shipyard.llm.cap_store import (
    add_usage,
    current_usage,
    list_caps,
    read_usage,
    remove_cap,
    set_cap,
)
from shipyard.llm.caps import CapGuard
from shipyard.project import Project
from shipyard.store import EventKind, LlmCapPolicyRow
from tests.support.waiting import wait_for

T0 = 1_800_000_000.0  # a multiple of 3600: the start of an hour window


class Clock:
    """Unix seconds the test sets."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _project(folder: Path, database_url: str | None, principal: Principal) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".shipyard").mkdir(exist_ok=True)
    policies = "    - {tenant: '*', quota: 100, window_seconds: 60}\n"
    head = "project: caps\nmodel:\n  name: assistant\n  task: llm\n"
    text = f"{head}llm:\n  caps:\n    policies:\n{policies}"
    (folder / "shipyard.yaml").write_text(text, encoding="utf-8")
    overrides = {"database_url": database_url} if database_url else None
    config = load_config(folder / "shipyard.yaml", environ={}, overrides=overrides)
    return Project(config, principal)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None (the project's own SQLite file) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def project(tmp_path: Path, database: str | None) -> Iterator[Project]:
    project = _project(tmp_path / "p", database, Principal("dee", "test"))
    yield project
    project.close()


def _guard(project: Project, clock: Clock, **changes: object) -> CapGuard:
    settings = project.config.llm.caps.model_copy(update=changes)
    return CapGuard(project.store, "assistant", settings, clock)


def _admitted(guard: CapGuard, tenant: str, times: int) -> int:
    from shipyard.errors import CapExceeded

    done = 0
    for _ in range(times):
        try:
            guard.check(tenant)
        except CapExceeded:
            break
        done += 1
    return done


def test_set_list_remove_are_audited_in_the_same_transaction(project: Project) -> None:
    first = set_cap(project, "assistant", tenant="acme", quota=10, window_seconds=60)
    second = set_cap(
        project, "assistant", tenant="acme", quota=20, window_seconds=60, reason="bigger plan"
    )
    assert (first.quota, second.quota, second.source, second.created_by) == (
        10,
        20,
        "stored",
        "dee",
    )
    set_cap(project, "assistant", tenant="*", quota=500, unit="cents", window_seconds=86400)
    listed = [
        (r.tenant, r.unit, r.quota, r.window_seconds, r.source)
        for r in list_caps(project, "assistant")
    ]
    assert listed == [
        ("*", "request", 100, 60, "config"),
        ("*", "cents", 500, 86400, "stored"),
        ("acme", "request", 20, 60, "stored"),
    ]
    removed = remove_cap(project, "assistant", tenant="acme", window_seconds=60)
    assert removed.quota == 20
    assert [r.tenant for r in list_caps(project, "assistant") if r.source == "stored"] == ["*"]
    events = project.store.events(kind=EventKind.LLM_CAP_SET.value)
    payloads = [(e.payload["action"], e.payload["tenant"], e.payload["quota"]) for e in events]
    assert payloads == [
        ("remove", "acme", 20),
        ("set", "*", 500),
        ("set", "acme", 20),
        ("set", "acme", 10),
    ]
    assert events[2].payload["previous_quota"] == 10 and events[2].reason == "bigger plan"
    assert events[2].before is not None and events[3].before is None
    assert all(e.subject == "model:assistant" and e.actor == "dee" for e in events)
    with project.store.session() as session:  # replaced and removed rows stay, inactive
        rows = session.scalars(select(LlmCapPolicyRow).order_by(LlmCapPolicyRow.id)).all()
        assert [(r.quota, r.active) for r in rows] == [(10, False), (20, False), (500, True)]
    with pytest.raises(NotFoundError) as caught:
        remove_cap(project, "assistant", tenant="acme", window_seconds=60)
    assert "acme" in caught.value.message


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"tenant": "a b"}, "--tenant"),
        ({"quota": 0}, "--quota"),
        ({"quota": float("nan")}, "--quota"),
        ({"unit": "tokens"}, "--unit"),
        ({"window_seconds": 0}, "--window"),
    ],
)
def test_bad_caps_are_refused_naming_the_field(
    project: Project, changes: dict[str, object], flag: str
) -> None:
    fields: dict[str, object] = {"tenant": "acme", "quota": 5, "window_seconds": 60} | changes
    with pytest.raises(ConfigError) as caught:
        set_cap(project, "assistant", **fields)  # type: ignore[arg-type]
    assert flag in caught.value.message
    assert project.store.events(kind=EventKind.LLM_CAP_SET.value) == []


def test_caps_need_models_deploy_on_the_model(tmp_path: Path, database: str | None) -> None:
    viewer = Principal(
        "val", "token", "viewer", ROLES["viewer"].scopes, (Grant("*", "*", Permission.READ),)
    )
    other = Principal(
        "dan", "token", "deployer", ROLES["deployer"].scopes,
        (Grant("model", "churn*", Permission.EDIT),),
    )  # fmt: skip
    for principal in (viewer, other):
        project = _project(tmp_path / principal.name, database, principal)
        with pytest.raises(Forbidden):
            set_cap(project, "assistant", tenant="acme", quota=1, window_seconds=60)
        with pytest.raises(Forbidden):
            remove_cap(project, "assistant", tenant="acme", window_seconds=60)
        project.close()
    reader = _project(tmp_path / "reader", database, viewer)
    assert [r.source for r in list_caps(reader, "assistant")] == [
        "config"
    ]  # reading is models:read
    assert reader.store.events(kind=EventKind.LLM_CAP_SET.value) == []
    reader.close()


def test_concurrent_workers_add_usage_atomically(project: Project) -> None:
    key = ("acme", "request", 60, int(T0))
    add_usage(project.store, "assistant", {key: 0.0})  # the row exists; the rest race on it

    def worker() -> None:
        for _ in range(25):
            add_usage(project.store, "assistant", {key: 1.0, ("acme", "cents", 60, int(T0)): 0.5})

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals = read_usage(project.store, "assistant", [(60, int(T0))])
    assert totals == {key: 100.0, ("acme", "cents", 60, int(T0)): 50.0}
    assert read_usage(project.store, "other-model", [(60, int(T0))]) == {}


def test_two_guards_on_one_database_enforce_one_cap(project: Project) -> None:
    clock = Clock()
    set_cap(project, "assistant", tenant="acme", quota=10, window_seconds=60)
    first, second = _guard(project, clock), _guard(project, clock)
    first.start()
    second.start()
    try:
        assert _admitted(first, "acme", 6) == 6
        first.sync()
        second.sync()
        assert second.used("acme", "request", 60) == 6
        assert _admitted(second, "acme", 10) == 4
        second.sync()
        first.sync()
        assert _admitted(first, "acme", 1) == 0
        assert first.status.state == "ok" and not first.status.degraded
        clock.now += 60  # a new window for both
        first.sync()
        assert _admitted(first, "acme", 3) == 3
        assert _admitted(first, "globex", 200) == 100  # the configured '*' cap
    finally:
        first.close()
        second.close()
    totals = read_usage(project.store, "assistant", [(60, int(T0)), (60, int(T0) + 60)])
    assert totals[("acme", "request", 60, int(T0))] == 10
    assert totals[("acme", "request", 60, int(T0) + 60)] == 3
    now = current_usage(project, "assistant", now=T0 + 61)
    assert [(u.tenant, u.used, u.window_seconds) for u in now] == [
        ("globex", 100, 60),
        ("acme", 3, 60),
    ]
    assert now[0].window_start.timestamp() == T0 + 60


def test_stored_caps_and_charges_reach_a_running_guard(project: Project) -> None:
    clock = Clock()
    guard = _guard(project, clock, sync_seconds=0.05)
    other = _guard(project, clock, sync_seconds=0.05)
    guard.start()
    other.start()
    try:
        assert _admitted(guard, "acme", 1) == 1
        set_cap(project, "assistant", tenant="acme", quota=30, unit="cents", window_seconds=3600)
        synced = guard.counters["syncs"]
        wait_for(lambda: guard.counters["syncs"] >= synced + 2, what="two background syncs")
        in_force = guard.check("acme").policies  # the stored cost cap applies now
        assert (in_force[0].quota, in_force[0].unit, in_force[0].source) == (30, "cents", "stored")
        guard.charge("acme", 30.0)
        wait_for(
            lambda: other.used("acme", "cents", 3600) == 30.0,
            what="the other guard to read the charge back",
        )
        assert _admitted(other, "acme", 1) == 0
    finally:
        guard.close()
        other.close()
