"""Caps never fail open: when the cap state cannot be read, the configured default
applies (``on_unreadable: default`` -> the fallback quota; ``deny`` -> every request
refused), it is reported (status, counters, one ``llm.cap_unreadable`` event per
outage), and what was counted meanwhile reaches the database when it is back.

The database is made unreadable for real: its usage table renamed away, a database
without Shipyard's tables, or a server port where nothing listens. SQLite and
PostgreSQL (127.0.0.1:5432; skipped, saying so, when unreachable). No provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from shipyard.config.llm import CapSettings
from shipyard.errors import CapExceeded
from shipyard.llm.cap_store import read_usage
from shipyard.llm.caps import CapGuard
from shipyard.store import EventKind, Store
from shipyard.store.engine import upgrade

T0 = 1_800_000_000.0
SECRET = "s3cret-pw-1234"


def _clock() -> float:
    return T0


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'caps.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url, actor="gateway")
    yield store
    store.close()


def _settings(**fields: object) -> CapSettings:
    policies = [{"quota": 100, "window_seconds": 60}]
    return CapSettings.model_validate({"policies": policies, "fallback_quota": 2} | fields)


def _admitted(guard: CapGuard, tenant: str, times: int) -> int:
    done = 0
    for _ in range(times):
        try:
            guard.check(tenant)
        except CapExceeded:
            break
        done += 1
    return done


def _rename(store: Store, old: str, new: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def _outages(store: Store) -> list[dict[str, object]]:
    return [e.payload for e in store.events(kind=EventKind.LLM_CAP_UNREADABLE.value)]


def test_an_outage_applies_the_fallback_quota_and_is_reported_once(store: Store) -> None:
    guard = CapGuard(store, "assistant", _settings(), _clock).start()
    assert _admitted(guard, "acme", 5) == 5
    assert guard.status.state == "ok" and guard.status.applied == "stored"
    _rename(store, "shipyard_llm_cap_usage", "moved_usage")
    assert guard.sync() is False
    assert guard.sync() is False  # still the same outage
    status = guard.status
    assert status.state == "unreadable" and status.degraded and status.applied == "fallback"
    assert status.since is not None and "shipyard_llm_cap_usage" in status.reason
    decision = guard.check("globex")  # 1 of the fallback's 2 per minute
    assert decision.fallback and decision.policies[-1].source == "fallback"
    assert (decision.limit, decision.remaining) == (2, 1)
    assert _admitted(guard, "globex", 5) == 1
    with pytest.raises(CapExceeded) as caught:
        guard.check("acme")  # its 5 before the outage are over the fallback's 2 too
    assert "2 requests per 60 s (fallback)" in caught.value.message
    assert guard.counters["fallback_checks"] == 4 and guard.counters["outages"] == 1
    outages = _outages(store)
    assert len(outages) == 1 and outages[0]["applied"] == "fallback"
    assert outages[0]["until"] is None and outages[0]["fallback"] == "2;w=60;u=request"

    _rename(store, "moved_usage", "shipyard_llm_cap_usage")
    assert guard.sync() is True
    assert guard.status.state == "ok" and guard.status.since is None
    assert len(_outages(store)) == 1  # recorded when it started: not twice
    totals = read_usage(store, "assistant", [(60, int(T0))])
    assert totals[("acme", "request", 60, int(T0))] == 5
    assert totals[("globex", "request", 60, int(T0))] == 2  # counted during the outage too
    assert _admitted(guard, "acme", 200) == 95  # the stored caps again

    _rename(store, "shipyard_llm_cap_usage", "moved_usage")
    assert guard.sync() is False
    assert len(_outages(store)) == 2 and guard.counters["outages"] == 2
    _rename(store, "moved_usage", "shipyard_llm_cap_usage")
    guard.close()


def test_deny_refuses_every_request_while_unreadable(store: Store) -> None:
    guard = CapGuard(store, "assistant", _settings(on_unreadable="deny"), _clock).start()
    _rename(store, "shipyard_llm_cap_usage", "moved_usage")
    guard.sync()
    with pytest.raises(CapExceeded) as caught:
        guard.check("acme")
    assert caught.value.http_status == 429 and caught.value.retry_after == 1
    assert "cannot be read" in caught.value.message
    assert guard.status.applied == "deny" and guard.counters["refused"] == 1
    _rename(store, "moved_usage", "shipyard_llm_cap_usage")
    guard.sync()
    assert _admitted(guard, "acme", 3) == 3
    guard.close()


def test_an_outage_from_the_start_is_recorded_when_the_database_is_back(url: str) -> None:
    bare = Store(url, actor="gateway", migrate=False)  # no Shipyard tables at all yet
    guard = CapGuard(bare, "assistant", _settings(), _clock).start()
    try:
        assert guard.status.state == "unreadable"
        assert _admitted(guard, "acme", 5) == 2  # the fallback, as nothing else is known
        upgrade(bare.engine)
        assert guard.sync() is True
        outages = _outages(bare)
        assert len(outages) == 1 and outages[0]["until"] is not None
        assert read_usage(bare, "assistant", [(60, int(T0))]) == {
            ("acme", "request", 60, int(T0)): 2.0
        }
    finally:
        guard.close()
        bare.close()


def test_an_unreachable_server_never_shows_its_password() -> None:
    url = f"postgresql+psycopg://shipyard:{SECRET}@127.0.0.1:9/caps?connect_timeout=2"
    down = Store(url, actor="gateway", migrate=False)
    guard = CapGuard(down, "assistant", _settings(), _clock).start()
    try:
        status = guard.status
        assert status.state == "unreadable" and status.reason
        assert SECRET not in status.reason and SECRET not in repr(status.to_dict())
        with pytest.raises(CapExceeded) as caught:
            for _ in range(3):
                guard.check("acme")
        assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.headers)
    finally:
        guard.close()
        down.close()
