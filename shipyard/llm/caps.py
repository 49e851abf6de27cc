"""Per-tenant caps on requests and cost, enforced in process and across workers.

    guard = CapGuard(store, "assistant", config.llm.caps)
    guard.start()                                  # first sync, then a background thread
    tenant = tenant_of(principal, request.headers, config.llm.caps)
    decision = guard.check(tenant, policy_header_of(request.headers, config.llm.caps))
    ...                                            # the provider call
    guard.charge(tenant, cost_in_cents)
    response.headers.update(guard.headers(decision))

**The hot path is memory only.** :meth:`CapGuard.check` reads counters in a dict under
a lock: the totals every worker had synced at the last sync, plus what this worker
counted since. A request over a cap raises :class:`~shipyard.errors.CapExceeded` (429,
``Retry-After`` and the ``RateLimit-*`` headers) *before* any provider call and is not
counted, so it is never charged; an admitted request counts one against every request
window of its tenant. :meth:`CapGuard.charge` adds the call's cost in cents afterwards,
so a cost cap admits the request that crosses it and refuses the ones after.

**Windows are fixed**, aligned on multiples of their length since the Unix epoch, so
every worker names the same window the same way. A background thread adds this worker's
counts to ``shipyard_llm_cap_usage`` every ``sync_seconds`` (an atomic upsert), reads
back every worker's totals and reloads the stored policies, so two gateways sharing the
control-plane database enforce one cap (each may overshoot by what the other admitted
within one sync interval).

**Never fails open.** When the database cannot be read, ``on_unreadable: default`` adds
the fallback cap (``fallback_quota`` requests per minute per tenant) to the caps last
read, and ``deny`` refuses every request. Either is reported: :attr:`CapGuard.status`
(for readiness), :attr:`CapGuard.counters` (for metrics) and one ``llm.cap_unreadable``
event per outage (recorded when the outage starts, or when the database is back).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from shipyard.errors import CapExceeded, DatabaseError
from shipyard.jsonable import Record
from shipyard.llm.cap_policies import (
    CapPolicy,
    applicable,
    number_text,
    parse_policy_header,
    policies_of_settings,
    policy_header_of,
    tenant_of,
)
from shipyard.llm.cap_store import UsageKey, add_usage, load_policies, read_usage
from shipyard.store import EventKind

if TYPE_CHECKING:
    from shipyard.config.llm import CapSettings
    from shipyard.store import Store

__all__ = [
    "CapDecision",
    "CapGuard",
    "CapPolicy",
    "CapStatus",
    "parse_policy_header",
    "policy_header_of",
    "tenant_of",
]

FALLBACK_WINDOW = 60
_MAX_HEADER_POLICIES = 256


@dataclass(frozen=True)
class CapDecision:
    """An admitted request: its tenant, and the cap closest to running out."""

    tenant: str
    policy: CapPolicy | None  # the binding cap; None when no cap applies
    limit: float = 0.0
    remaining: float = 0.0
    reset_seconds: int = 0
    policies: tuple[CapPolicy, ...] = ()
    fallback: bool = False  # decided under the fallback cap (state unreadable)


class _Plan(NamedTuple):
    """What binds a tenant, and which windows its requests and cost count in."""

    policies: tuple[CapPolicy, ...]
    request_windows: tuple[int, ...]
    cents_windows: tuple[int, ...]


@dataclass(frozen=True)
class CapStatus(Record):
    """Whether the cap state can be read: ``ok``, ``unreadable``, ``starting`` or ``local``."""

    state: str
    applied: str  # stored | fallback | deny
    since: datetime | None = None
    reason: str = ""
    last_sync: datetime | None = None
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        """True while the caps in force are the configured default, not the stored state."""
        return self.state == "unreadable"


class CapGuard:
    """Checks and counts one model's requests and cost per tenant (see the module doc)."""

    def __init__(
        self,
        store: Store | None,
        model: str,
        settings: CapSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model
        self.settings = settings
        self._store = store
        self._clock = clock
        self._configured = tuple(policies_of_settings(settings))
        self._stored: tuple[CapPolicy, ...] = ()
        self._fallback = CapPolicy(
            settings.fallback_quota, FALLBACK_WINDOW, "request", "*", "fallback"
        )
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._tenants: dict[str, _Plan] = {}
        self._header_policies: dict[str, CapPolicy] = {}
        self._header_windows: set[tuple[str, int]] = set()
        self._base: dict[UsageKey, float] = {}  # every worker's totals at the last sync
        self._inflight: dict[UsageKey, float] = {}  # being added to the database now
        self._pending: dict[UsageKey, float] = {}  # counted here since the last sync
        self._state = "local" if store is None else "starting"
        self._since: datetime | None = None
        self._reason = ""
        self._last_sync: datetime | None = None
        self._event_owed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters: dict[str, int] = dict.fromkeys(
            ("checks", "refused", "fallback_checks", "syncs", "sync_failures", "outages"), 0
        )

    # --- the hot path -----------------------------------------------------------------

    def check(self, tenant: str, header: str | None = None) -> CapDecision:
        """Admit and count one request of ``tenant``, or raise :class:`CapExceeded`.

        ``header`` is the request's policy header text (Helicone syntax): a cap enforced
        beside the stored ones, so it can only tighten. A malformed one is a 400
        :class:`~shipyard.errors.RequestError` naming the header.
        """
        extra = self._header_policy(header) if header is not None else None
        now = self._clock()
        with self._lock:
            self.counters["checks"] += 1
            unreadable = self._state == "unreadable"
            if unreadable:
                self.counters["fallback_checks"] += 1
                if self.settings.on_unreadable == "deny":
                    self.counters["refused"] += 1
                    raise self._unreadable_refusal()
            plan = self._tenants.get(tenant) or self._plan_for(tenant)
            policies = plan.policies
            if extra is not None:
                policies = (*policies, extra)
                if (extra.unit, extra.window_seconds) not in self._header_windows:
                    self._remember_window(extra)
                    plan = self._plan_for(tenant)
            base, inflight, pending = self._base, self._inflight, self._pending
            binding: CapPolicy | None = None
            share, left, start = 2.0, 0.0, 0
            for policy in policies:
                window = policy.window_seconds
                begins = int(now // window) * window
                key = (tenant, policy.unit, window, begins)
                used = base.get(key, 0.0) + inflight.get(key, 0.0) + pending.get(key, 0.0)
                # A request needs room for itself; cost is known only after the call,
                # so a cost cap refuses once what was charged reached the quota.
                room = policy.quota - used - (1.0 if policy.unit == "request" else 0.0)
                if room < 0 or (room == 0 and policy.unit == "cents"):
                    self.counters["refused"] += 1
                    reset = max(1, math.ceil(begins + window - now))
                    raise self._refusal(tenant, policy, reset, policies)
                if room / policy.quota < share:
                    binding, share, left, start = policy, room / policy.quota, room, begins
            windows = plan.request_windows
            if (
                extra is not None
                and extra.unit == "request"
                and extra.window_seconds not in windows
            ):
                windows = (*windows, extra.window_seconds)  # past the 32 windows remembered
            for window in windows:
                counted = (tenant, "request", window, int(now // window) * window)
                pending[counted] = pending.get(counted, 0.0) + 1.0
        if binding is None:
            return CapDecision(tenant, None, policies=policies, fallback=unreadable)
        reset = max(1, math.ceil(start + binding.window_seconds - now))
        return CapDecision(tenant, binding, binding.quota, left, reset, policies, unreadable)

    def charge(self, tenant: str, cents: float) -> None:
        """Add a finished call's cost (cents) to every cost window of ``tenant``."""
        if not cents > 0:
            return
        now = self._clock()
        with self._lock:
            plan = self._tenants.get(tenant) or self._plan_for(tenant)
            for window in plan.cents_windows:
                key = (tenant, "cents", window, int(now // window) * window)
                self._pending[key] = self._pending.get(key, 0.0) + float(cents)

    def headers(self, decision: CapDecision) -> dict[str, str]:
        """``RateLimit-Limit``/``-Remaining``/``-Reset`` of the binding cap, and
        ``RateLimit-Policy`` listing every cap in force (none when no cap applies)."""
        if decision.policy is None:
            return {}
        return _rate_headers(decision.policy, decision.remaining, decision.reset_seconds) | {
            "RateLimit-Policy": ", ".join(p.text for p in decision.policies)
        }

    def used(self, tenant: str, unit: str, window_seconds: int) -> float:
        """What ``tenant`` used in the current window, as this worker knows it."""
        window = int(window_seconds)
        start = int(self._clock() // window) * window
        with self._lock:
            return self._used((tenant, unit, window, start))

    # --- the background sync ----------------------------------------------------------

    def start(self) -> CapGuard:
        """Sync once now (so the stored caps apply from the first request), then every
        ``sync_seconds`` in a daemon thread (without a store, it only forgets the counts
        of windows that ended)."""
        if self._thread is not None:
            return self
        self.sync()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"caps-{self.model}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and add what was still counted here to the database."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.settings.sync_seconds))
            self._thread = None
        if self._store is not None and self._state != "unreadable":
            self.sync()

    def sync(self) -> bool:
        """Add this worker's counts to the database, read back every worker's totals and
        the stored caps; False (and the fallback in force) when that fails."""
        if self._store is None:  # in process only: forget the windows that ended
            now = self._clock()
            with self._lock:
                self._pending = {k: v for k, v in self._pending.items() if k[3] + k[2] > now}
            return True
        with self._sync_lock:
            with self._lock:
                for key, delta in self._pending.items():
                    self._inflight[key] = self._inflight.get(key, 0.0) + delta
                self._pending = {}
                deltas = dict(self._inflight)
            try:
                add_usage(self._store, self.model, deltas)
            except Exception as exc:  # any failure means: state unreadable
                with self._lock:
                    for key, delta in self._inflight.items():
                        self._pending[key] = self._pending.get(key, 0.0) + delta
                    self._inflight = {}
                self._failed(exc)
                return False
            try:
                stored = tuple(load_policies(self._store, self.model))
                now = self._clock()
                windows = {(w, int(now // w) * w) for _, w in self._windows(stored)}
                totals = read_usage(self._store, self.model, windows)
            except Exception as exc:
                with self._lock:  # added, but not read back: keep counting them here
                    for key, delta in self._inflight.items():
                        self._base[key] = self._base.get(key, 0.0) + delta
                    self._inflight = {}
                self._failed(exc)
                return False
            with self._lock:
                self._base = totals
                self._inflight = {}
                if stored != self._stored:
                    self._stored = stored
                    self._tenants = {}
                self._last_sync = datetime.now(UTC)
                self.counters["syncs"] += 1
                recovered = self._state == "unreadable"
                since = self._since
                self._state, self._since, self._reason = "ok", None, ""
                if recovered:
                    self._tenants = {}
            if recovered and self._event_owed:
                self._record_outage(since, until=datetime.now(UTC))
            return True

    @property
    def status(self) -> CapStatus:
        """The state readiness and metrics report (see :class:`CapStatus`)."""
        with self._lock:
            applied = "stored"
            if self._state == "unreadable":
                applied = "deny" if self.settings.on_unreadable == "deny" else "fallback"
            return CapStatus(
                self._state,
                applied,
                self._since,
                self._reason,
                self._last_sync,
                dict(self.counters),
            )

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sync_seconds):
            self.sync()

    def _failed(self, exc: Exception) -> None:
        reason = self._safe_reason(exc)
        with self._lock:
            self.counters["sync_failures"] += 1
            started = self._state != "unreadable"
            if started:
                self._state, self._since = "unreadable", datetime.now(UTC)
                self.counters["outages"] += 1
                self._tenants = {}
            self._reason = reason
            since = self._since
        if started:
            self._event_owed = True
            self._record_outage(since, until=None)

    def _record_outage(self, since: datetime | None, until: datetime | None) -> None:
        assert self._store is not None
        payload = {
            "model": self.model,
            "since": since,
            "until": until,
            "reason": self._reason or "the cap state could not be read",
            "applied": "deny" if self.settings.on_unreadable == "deny" else "fallback",
            "fallback": self._fallback.text,
        }
        try:
            self._store.record(EventKind.LLM_CAP_UNREADABLE, f"model:{self.model}", payload)
        except Exception:  # the database is down: record it when it is back
            return
        self._event_owed = False

    def _safe_reason(self, exc: Exception) -> str:
        if isinstance(exc, DatabaseError):
            text = exc.message
        else:
            orig = getattr(exc, "orig", None) or exc
            lines = str(orig).strip().splitlines()
            text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
        assert self._store is not None
        password = self._store.engine.url.password
        if password:
            text = text.replace(str(password), "***")
        return text[:300]

    # --- helpers (called with the lock held) ------------------------------------------

    def _used(self, key: UsageKey) -> float:
        return self._base.get(key, 0.0) + self._inflight.get(key, 0.0) + self._pending.get(key, 0.0)

    def _plan_for(self, tenant: str) -> _Plan:
        policies = applicable(tenant, self._configured, self._stored)
        if self._state == "unreadable":
            policies = (*policies, self._fallback)
        counted = {(p.unit, p.window_seconds) for p in policies} | self._header_windows
        plan = _Plan(
            policies,
            tuple(sorted(w for unit, w in counted if unit == "request")),
            tuple(sorted(w for unit, w in counted if unit == "cents")),
        )
        if len(self._tenants) > 100_000:
            self._tenants.clear()
        self._tenants[tenant] = plan
        return plan

    def _windows(self, stored: tuple[CapPolicy, ...]) -> set[tuple[str, int]]:
        with self._lock:
            every = (*self._configured, *stored, self._fallback)
            return {(p.unit, p.window_seconds) for p in every} | self._header_windows

    def _remember_window(self, policy: CapPolicy) -> None:
        if len(self._header_windows) < 32:
            self._header_windows.add((policy.unit, policy.window_seconds))
            self._tenants = {}  # every tenant's plan counts the new window from now on

    def _header_policy(self, text: str) -> CapPolicy:
        found = self._header_policies.get(text)
        if found is None:
            found = parse_policy_header(text, self.settings.policy_header)
            if len(self._header_policies) >= _MAX_HEADER_POLICIES:
                self._header_policies.clear()
            self._header_policies[text] = found
        return found

    def _refusal(
        self, tenant: str, policy: CapPolicy, reset: int, policies: tuple[CapPolicy, ...]
    ) -> CapExceeded:
        units = "requests" if policy.unit == "request" else "cents"
        headers = _rate_headers(policy, 0, reset) | {
            "RateLimit-Policy": ", ".join(p.text for p in policies)
        }
        return CapExceeded(
            f"Tenant {tenant!r} is over its cap of {number_text(policy.quota)} {units} per "
            f"{policy.window_seconds} s ({policy.source}); retry in {reset} s.",
            retry_after=reset,
            headers=headers,
        )

    def _unreadable_refusal(self) -> CapExceeded:
        wait = max(1, math.ceil(self.settings.sync_seconds))
        return CapExceeded(
            "The cap state cannot be read and llm.caps.on_unreadable is deny: "
            f"every request is refused until it can; retry in {wait} s.",
            retry_after=wait,
            headers={
                "RateLimit-Limit": "0",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(wait),
            },
        )


def _rate_headers(policy: CapPolicy, remaining: float, reset: int) -> dict[str, str]:
    return {
        "RateLimit-Limit": number_text(policy.quota),
        "RateLimit-Remaining": number_text(max(0.0, math.floor(remaining * 100) / 100)),
        "RateLimit-Reset": str(reset),
    }
