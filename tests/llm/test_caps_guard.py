"""CapGuard in one process: request and cost caps per tenant and window, 429 with
Retry-After and RateLimit headers, a refused request never counted nor charged, and a
policy header that can only tighten.

No provider is involved (the check comes before any provider call); time is a clock
the test moves, so windows roll over without waiting.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.config.llm import CapSettings
from shipyard.errors import CapExceeded, RequestError
from shipyard.llm.caps import CapGuard


class Clock:
    """Unix seconds the test sets."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _settings(*policies: dict[str, object], **fields: object) -> CapSettings:
    return CapSettings.model_validate({"policies": list(policies), **fields})


def _admitted(guard: CapGuard, tenant: str, times: int, header: str | None = None) -> int:
    done = 0
    for _ in range(times):
        try:
            guard.check(tenant, header)
        except CapExceeded:
            break
        done += 1
    return done


def test_a_request_cap_admits_its_quota_then_429s_until_the_window_ends() -> None:
    clock = Clock(1_800_000_000.0 + 15)  # 15 s into a 60 s window
    guard = CapGuard(None, "assistant", _settings({"quota": 3, "window_seconds": 60}), clock)
    decisions = [guard.check("acme") for _ in range(3)]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert guard.headers(decisions[0]) == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "45",
        "RateLimit-Policy": "3;w=60;u=request",
    }
    with pytest.raises(CapExceeded) as caught:
        guard.check("acme")
    refusal = caught.value
    assert refusal.http_status == 429 and refusal.retry_after == 45
    assert refusal.headers["Retry-After"] == "45"
    assert refusal.headers["RateLimit-Remaining"] == "0"
    assert refusal.headers["RateLimit-Policy"] == "3;w=60;u=request"
    assert "'acme'" in refusal.message and "3 requests per 60 s" in refusal.message
    assert guard.used("acme", "request", 60) == 3  # the refusal was not counted
    assert _admitted(guard, "globex", 5) == 3  # tenants do not share a cap
    clock.now += 45  # the next window
    assert _admitted(guard, "acme", 5) == 3
    assert guard.counters["refused"] == 3 and guard.counters["checks"] == 12


def test_no_cap_means_no_headers_and_no_refusal() -> None:
    guard = CapGuard(None, "assistant", _settings(), Clock())
    decision = guard.check("acme")
    assert decision.policy is None and guard.headers(decision) == {}
    assert _admitted(guard, "acme", 1000) == 1000


def test_the_binding_cap_is_the_one_closest_to_running_out() -> None:
    settings = _settings({"quota": 10, "window_seconds": 60}, {"quota": 12, "window_seconds": 3600})
    guard = CapGuard(None, "assistant", settings, Clock(1_800_000_000.0))
    first = guard.check("acme")
    assert (first.limit, first.remaining) == (10, 9)  # 9/10 left beats 11/12
    assert guard.headers(first)["RateLimit-Policy"] == "10;w=60;u=request, 12;w=3600;u=request"
    assert _admitted(guard, "acme", 20) == 9
    guard._clock.now += 60  # type: ignore[attr-defined]  # next minute, same hour
    assert _admitted(guard, "acme", 20) == 2  # the hourly cap binds now
    with pytest.raises(CapExceeded) as caught:
        guard.check("acme")
    assert caught.value.headers["RateLimit-Limit"] == "12"


def test_a_cost_cap_admits_until_the_charges_reach_it_and_refusals_are_free() -> None:
    clock = Clock(1_800_000_000.0)
    policy = {"quota": 10, "unit": "cents", "window_seconds": 3600}
    guard = CapGuard(None, "assistant", _settings(policy), clock)
    decision = guard.check("acme")
    assert guard.headers(decision)["RateLimit-Remaining"] == "10"
    guard.charge("acme", 4.25)
    guard.check("acme")
    guard.charge("acme", 6.0)  # crosses the cap: that request was already admitted
    assert guard.used("acme", "cents", 3600) == pytest.approx(10.25)
    with pytest.raises(CapExceeded) as caught:
        guard.check("acme")
    assert "10 cents per 3600 s" in caught.value.message
    assert guard.used("acme", "cents", 3600) == pytest.approx(10.25)  # never charged
    guard.charge("acme", 0.0)
    guard.charge("acme", -3.0)  # nothing negative is ever credited back
    assert guard.used("acme", "cents", 3600) == pytest.approx(10.25)
    assert guard.used("globex", "cents", 3600) == 0


def test_a_tenants_own_cap_replaces_the_default_one() -> None:
    settings = _settings(
        {"quota": 2, "window_seconds": 60}, {"tenant": "vip", "quota": 5, "window_seconds": 60}
    )
    guard = CapGuard(None, "assistant", settings, Clock())
    assert _admitted(guard, "vip", 10) == 5
    assert _admitted(guard, "plain", 10) == 2


def test_a_policy_header_tightens_but_never_loosens() -> None:
    guard = CapGuard(None, "assistant", _settings({"quota": 5, "window_seconds": 60}), Clock())
    assert _admitted(guard, "acme", 10, header="2;w=60") == 2
    loose = CapGuard(None, "assistant", _settings({"quota": 3, "window_seconds": 60}), Clock())
    assert _admitted(loose, "acme", 10, header="1000;w=60;s=user") == 3
    with pytest.raises(CapExceeded) as caught:
        loose.check("acme", "1000;w=60;s=user")
    assert (
        caught.value.headers["RateLimit-Policy"] == "3;w=60;u=request, 1000;w=60;u=request;s=user"
    )


def test_a_header_cap_counts_every_request_of_its_window() -> None:
    guard = CapGuard(None, "assistant", _settings(), Clock())
    assert _admitted(guard, "acme", 1, header="3;w=60") == 1
    assert _admitted(guard, "acme", 2) == 2  # counted even without the header
    with pytest.raises(CapExceeded):
        guard.check("acme", "3;w=60")


def test_a_header_cost_cap_refuses_after_the_charges() -> None:
    guard = CapGuard(None, "assistant", _settings(), Clock())
    guard.check("acme", "5;w=3600;u=cents")
    guard.charge("acme", 5.0)
    with pytest.raises(CapExceeded) as caught:
        guard.check("acme", "5;w=3600;u=cents")
    assert caught.value.headers["RateLimit-Limit"] == "5"


def test_a_malformed_policy_header_is_a_400_naming_it_and_counts_nothing() -> None:
    guard = CapGuard(None, "assistant", _settings({"quota": 5, "window_seconds": 60}), Clock())
    with pytest.raises(RequestError) as caught:
        guard.check("acme", "lots;w=60")
    assert caught.value.http_status == 400
    assert "Shipyard-RateLimit-Policy" in caught.value.message
    assert guard.used("acme", "request", 60) == 0


def test_an_in_process_guard_reports_local_state_and_forgets_ended_windows() -> None:
    clock = Clock(1_800_000_000.0)
    guard = CapGuard(None, "assistant", _settings({"quota": 5, "window_seconds": 60}), clock)
    assert guard.start() is guard
    assert guard.status.state == "local" and not guard.status.degraded
    guard.check("acme")
    assert guard.sync() is True and guard.used("acme", "request", 60) == 1
    clock.now += 60
    guard.check("acme")
    guard.sync()
    assert len(guard._pending) == 1  # only the current window's count is kept
    guard.close()


@given(
    st.lists(
        st.tuples(st.sampled_from(["acme", "globex"]), st.integers(min_value=0, max_value=150)),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=1, max_value=6),
)
def test_admitted_requests_never_exceed_the_quota_of_any_window(
    calls: list[tuple[str, int]], quota: int
) -> None:
    """Random tenants at random moments: per tenant and 60 s window, exactly
    min(attempts, quota) are admitted, and every refusal's Retry-After ends the window."""
    clock = Clock(1_800_000_000.0)
    guard = CapGuard(None, "assistant", _settings({"quota": quota, "window_seconds": 60}), clock)
    admitted: dict[tuple[str, int], int] = {}
    attempts: dict[tuple[str, int], int] = {}
    for tenant, step in calls:
        clock.now += step / 10
        window = int(clock.now // 60)
        attempts[(tenant, window)] = attempts.get((tenant, window), 0) + 1
        try:
            decision = guard.check(tenant)
        except CapExceeded as refusal:
            assert refusal.retry_after == max(1, math.ceil((window + 1) * 60 - clock.now))
            continue
        admitted[(tenant, window)] = admitted.get((tenant, window), 0) + 1
        assert decision.remaining == quota - admitted[(tenant, window)]
    for key, tried in attempts.items():
        assert admitted.get(key, 0) == min(tried, quota)


def test_concurrent_checks_admit_exactly_the_quota() -> None:
    """Eight threads race on one tenant's cap: exactly the quota is admitted."""
    import threading

    guard = CapGuard(None, "assistant", _settings({"quota": 50, "window_seconds": 3600}), Clock())
    admitted: list[int] = []
    gate = threading.Barrier(8)

    def worker() -> None:
        gate.wait()
        admitted.append(_admitted_all(guard, "acme", 20))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 50 and guard.used("acme", "request", 3600) == 50
    assert guard.counters["refused"] == 8 * 20 - 50


def _admitted_all(guard: CapGuard, tenant: str, times: int) -> int:
    """Admitted of ``times`` tries (not stopping at the first refusal)."""
    done = 0
    for _ in range(times):
        try:
            guard.check(tenant)
        except CapExceeded:
            continue
        done += 1
    return done
