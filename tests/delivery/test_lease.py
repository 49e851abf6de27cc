"""The agent's lease: two agents never act at once, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from shipyard.delivery.lease import Lease, LeaseKeeper
from shipyard.errors import ConfigError
from shipyard.store import Store
from tests.support import PATIENCE, wait_for


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on a SQLite file and on a fresh database on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cp.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def stores(url: str) -> Iterator[tuple[Store, Store]]:
    """Two agents' stores on one control-plane database, as two processes would have."""
    first, second = Store(url, actor="tester"), Store(url, actor="tester")
    yield first, second
    first.close()
    second.close()


class FakeClock:
    """An application clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def race(leases: list[Lease]) -> list[bool]:
    """Every lease tries to acquire at the same moment, each in its own thread."""
    results = [False] * len(leases)
    start = threading.Barrier(len(leases))

    def attempt(index: int) -> None:
        start.wait()
        results[index] = leases[index].acquire()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(leases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE)
    return results


@dataclass(frozen=True)
class Term:
    """One stretch during which one agent believed it held the lease."""

    holder: str
    token: int
    start: float  # monotonic, once acquire() returned
    end: float  # monotonic, no earlier than the agent stopped acting
    released: bool


def test_two_agents_never_hold_at_once(stores: tuple[Store, Store]) -> None:
    leases = [Lease(store, holder=f"agent-{i}", ttl=0.1) for i, store in enumerate(stores)]
    terms: list[Term] = []
    errors: list[BaseException] = []
    guard = threading.Lock()
    inside: set[Lease] = set()
    overlaps = 0
    start = threading.Barrier(2)
    stop = threading.Event()

    def agent(lease: Lease, seed: int) -> None:
        nonlocal overlaps
        rng = random.Random(seed)
        try:
            start.wait()  # the first round races to INSERT the row
            while not stop.is_set():
                if not lease.acquire():
                    stop.wait(0.002)
                    continue
                began = time.monotonic()
                deadline = began + lease.remaining()  # the term's end on this agent's clock
                token = lease.token
                assert token is not None
                with guard:
                    # An overlap is another agent that may still act by its own clock. One
                    # whose work outlasted its term (a slow query under load) has to stop
                    # acting, which is what the real agent's LeaseKeeper makes it do.
                    overlaps += any(other.held for other in inside)
                    inside.add(lease)
                lease.current()  # stands in for the agent's work on the control plane
                with guard:
                    inside.discard(lease)
                if rng.random() < 0.7:
                    ended = min(time.monotonic(), deadline)
                    lease.release()
                    terms.append(Term(lease.holder, token, began, ended, released=True))
                else:  # stop renewing: the term runs out on this agent's own clock
                    ended = lease.remaining() + time.monotonic()
                    terms.append(Term(lease.holder, token, began, ended, released=False))
                    wait_for(lambda: not lease.held, what="the term to run out", every=0.01)
                stop.wait(0.02)  # give the other agent the first go
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def enough() -> bool:  # however many seconds a busy machine needs for them
        done = sorted(list(terms), key=lambda term: term.start)
        holders = {term.holder for term in done}
        ways = {a.released for a, b in itertools.pairwise(done) if a.holder != b.holder}
        return bool(errors) or (len(done) >= 10 and len(holders) == 2 and len(ways) == 2)

    threads = [threading.Thread(target=agent, args=(lease, i)) for i, lease in enumerate(leases)]
    for thread in threads:
        thread.start()
    try:
        wait_for(enough, what="ten terms, handed over by release and by expiry", every=0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=PATIENCE)

    assert errors == []
    assert overlaps == 0
    terms.sort(key=lambda term: term.start)
    assert len(terms) >= 10 and {term.holder for term in terms} == {"agent-0", "agent-1"}
    for before, after in itertools.pairwise(terms):
        # the next term starts only after the previous holder stopped acting ...
        assert after.start >= before.end, (before, after)
        # ... and a new holder always has a larger fencing token
        if after.holder != before.holder:
            assert after.token > before.token, (before, after)
        else:
            assert after.token >= before.token, (before, after)
    handovers = [
        before.released
        for before, after in itertools.pairwise(terms)
        if after.holder != before.holder
    ]
    assert True in handovers and False in handovers  # by release and by expiry


def test_exactly_one_agent_wins_each_race(stores: tuple[Store, Store]) -> None:
    clock = FakeClock()
    for round_ in range(10):
        leases = [
            Lease(store, f"race-{round_}", holder=f"agent-{i}", ttl=10, clock=clock)
            for i, store in enumerate(stores)
        ]
        # first for a name never taken (INSERT), then for an expired lease (UPDATE)
        assert sorted(race(leases)) == [False, True]
        clock.advance(11)
        assert sorted(race(leases)) == [False, True]
        state = leases[0].current()
        assert state is not None and state.token == 2


def test_a_holder_that_stops_renewing_loses_the_lease(stores: tuple[Store, Store]) -> None:
    clock = FakeClock()
    a = Lease(stores[0], holder="a", ttl=10, clock=clock)
    b = Lease(stores[1], holder="b", ttl=10, clock=clock)
    assert a.acquire() and a.held and a.token == 1
    assert not b.acquire() and not b.held and b.token is None
    clock.advance(5)
    assert a.held and not b.acquire()
    clock.advance(5.5)
    assert not a.held and a.remaining() == 0.0
    assert b.acquire() and b.held and b.token == 2
    assert not a.renew() and not a.acquire() and not a.held
    state = b.current()
    assert state is not None and state.holder == "b" and state.token == 2
    assert state.expires_at == clock.now + timedelta(seconds=10)


def test_renewal_extends_the_same_term(stores: tuple[Store, Store]) -> None:
    clock = FakeClock()
    a = Lease(stores[0], holder="a", ttl=10, clock=clock)
    b = Lease(stores[1], holder="b", ttl=10, clock=clock)
    assert a.acquire()
    first = a.current()
    clock.advance(8)
    assert a.renew()
    clock.advance(8)  # 16 s after acquiring, 8 s after renewing
    assert a.held and not b.acquire()
    assert a.acquire() and a.token == 1  # acquiring a live lease of our own renews it
    state = a.current()
    assert first is not None and state is not None
    assert state.acquired_at == first.acquired_at and state.renewed_at == clock.now


def test_release_lets_the_other_take_it_at_once(stores: tuple[Store, Store]) -> None:
    clock = FakeClock()
    b = Lease(stores[1], holder="b", ttl=10, clock=clock)
    with Lease(stores[0], holder="a", ttl=10, clock=clock) as a:
        assert a.held
        assert not b.renew()  # a holder that never acquired renews nothing
        assert not b.acquire() and not b.renew()
    assert not a.held
    assert b.acquire() and b.token == 2
    a.release()  # releasing what another holds changes nothing
    assert b.held and not a.renew()
    b.release()
    assert a.acquire() and a.token == 3


def test_lease_settings_are_checked(stores: tuple[Store, Store]) -> None:
    for ttl in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="ttl"):
            Lease(stores[0], ttl=ttl)
    with pytest.raises(ConfigError, match="200"):
        Lease(stores[0], holder="x" * 201)
    first, second = Lease(stores[0]), Lease(stores[0])
    assert first.holder != second.holder and first.name == "agent"


def test_keeper_renews_while_running(stores: tuple[Store, Store]) -> None:
    # Renewing every 0.1 s a lease that lasts 3 s: a busy machine may delay a renewal a
    # lot before the lease runs out, and four renewals still take well under a second.
    a = Lease(stores[0], holder="a", ttl=3.0)
    b = Lease(stores[1], holder="b", ttl=3.0)
    assert a.acquire()
    renewals: set[datetime] = set()

    def renewed_three_times() -> bool:
        state = a.current()
        assert state is not None
        renewals.add(state.renewed_at)
        return len(renewals) >= 4

    with LeaseKeeper(a, interval=0.1) as keeper:
        wait_for(renewed_three_times, what="three renewals", every=0.01)
        assert a.held and not keeper.lost.is_set()
        assert not b.acquire()
        assert a.token == 1
    assert not keeper.lost.is_set()  # stopping is not losing
    a.release()
    assert b.acquire()


def test_keeper_reports_a_takeover(stores: tuple[Store, Store]) -> None:
    a = Lease(stores[0], holder="a", ttl=0.3)
    # An agent whose clock runs an hour ahead sees every lease as expired: a forced expiry.
    ahead = Lease(
        stores[1], holder="ahead", ttl=0.3, clock=lambda: datetime.now(UTC) + timedelta(hours=1)
    )
    assert a.acquire()
    with LeaseKeeper(a) as keeper:
        assert ahead.acquire()
        assert keeper.lost.wait(PATIENCE)
        assert not a.held and not a.renew()
    assert a.token is not None and ahead.token is not None and ahead.token > a.token


def test_keeper_survives_an_unreachable_database(
    stores: tuple[Store, Store], request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    store = stores[0]
    a = Lease(store, holder="a", ttl=0.3)
    assert a.acquire()
    logs = caplog.at_level(logging.WARNING, logger="shipyard.delivery.lease")
    with logs, LeaseKeeper(a) as keeper:
        _make_unreachable(store, request)
        assert keeper.lost.wait(PATIENCE)
        assert not a.held
    assert "Could not renew" in caplog.text and "Lost Lease" in caplog.text


def _make_unreachable(store: Store, request: pytest.FixtureRequest) -> None:
    if store.engine.dialect.name == "sqlite":
        # A directory where the database file was: every new connection fails.
        path = Path(str(store.engine.url.database))
        path.rename(path.with_name("moved.db"))
        path.mkdir()
    else:
        admin = request.getfixturevalue("_postgres_admin")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{store.engine.url.database}" WITH (FORCE)'))
    store.close()  # drop pooled connections, which would still reach the old database
