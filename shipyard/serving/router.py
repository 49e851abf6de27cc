"""Traffic router: which model version answers a request, and whether a shadow sees it too.

A :class:`TrafficPlan` splits live traffic between a champion and challengers by weight,
and may copy a share of requests to a shadow version whose answers are logged, never
returned. A :class:`Router` applies a plan to each request.

Sticky routing: a request key (user id, session id …) is hashed with BLAKE2b, which is
stable across processes (unlike ``hash``, salted per process), to a point in [0, 1).
Routes own consecutive intervals of [0, 1) in a fixed order, sorted by version, so a key
sees one version while the weights stay put. Because the order does not depend on the
weights, a route at either end of that order only *gains* keys when its weight grows: with
a champion and one challenger, raising the challenger from 10 % to 50 % keeps every key
that was on it and moves only champion keys over. (With three or more routes a route in
the middle of the order shifts position as its neighbours change, so it has no such
guarantee.) The shadow sample uses a second, independent hash, so it is sticky too, and
does not correlate with the live choice. Requests without a key draw at random.

Updating the plan is one attribute assignment of an immutable lookup table, so
:meth:`Router.decide` takes no lock and always sees one whole plan.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

__all__ = ["Decision", "Route", "Router", "StickyKey", "TrafficPlan"]

ROLES = ("champion", "challenger")
_WEIGHT_TOLERANCE = 1e-9
# Two hash families (BLAKE2 personalisation) make the live and shadow draws independent.
# Copying a primed hasher is ~40 % cheaper than constructing one with ``person=``.
_LIVE_HASH = hashlib.blake2b(digest_size=8, person=b"shipyard.live")
_SHADOW_HASH = hashlib.blake2b(digest_size=8, person=b"shipyard.shadow")
_UNIT = 2.0**-53


@dataclass(frozen=True)
class Route:
    """One version that may receive live traffic, and its share of it."""

    version: str
    role: str
    weight: float


@dataclass(frozen=True)
class TrafficPlan:
    """How live traffic is split between versions, and what share is copied to a shadow."""

    routes: tuple[Route, ...]
    shadow_version: str | None = None
    shadow_share: float = 0.0
    generation: int = 0

    def __post_init__(self) -> None:
        if not self.routes:
            raise ValueError("a traffic plan needs at least one route")
        seen: set[str] = set()
        for route in self.routes:
            if not route.version:
                raise ValueError("route version must be a non-empty string")
            if route.version in seen:
                raise ValueError(f"duplicate route for version {route.version!r}")
            seen.add(route.version)
            if route.role not in ROLES:
                raise ValueError(
                    f"route {route.version!r} has role {route.role!r}; expected one of {ROLES}"
                )
            if not (math.isfinite(route.weight) and route.weight >= 0):
                raise ValueError(
                    f"route {route.version!r} has weight {route.weight!r}; "
                    "weights must be finite and >= 0"
                )
        champions = sum(route.role == "champion" for route in self.routes)
        if champions != 1:
            raise ValueError(f"a traffic plan needs exactly one champion route, got {champions}")
        total = math.fsum(route.weight for route in self.routes)
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            raise ValueError(f"route weights must sum to 1, got {total!r}")
        if not (0.0 <= self.shadow_share <= 1.0):
            raise ValueError(f"shadow_share must be within [0, 1], got {self.shadow_share!r}")
        if self.shadow_share > 0 and self.shadow_version is None:
            raise ValueError(
                f"shadow_share is {self.shadow_share!r} but no shadow_version is set; "
                "set shadow_version or make shadow_share 0"
            )
        if self.generation < 0:
            raise ValueError(f"generation must be >= 0, got {self.generation!r}")

    @classmethod
    def single(cls, version: str, generation: int = 0) -> TrafficPlan:
        """A plan that sends all traffic to one champion version."""
        return cls(routes=(Route(version, "champion", 1.0),), generation=generation)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for storing the plan in the control plane."""
        return {
            "routes": [
                {"version": r.version, "role": r.role, "weight": r.weight} for r in self.routes
            ],
            "shadow_version": self.shadow_version,
            "shadow_share": self.shadow_share,
            "generation": self.generation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficPlan:
        """The plan :meth:`to_dict` produced; raises ValueError on a malformed one."""
        try:
            routes = tuple(
                Route(str(r["version"]), str(r["role"]), float(r["weight"])) for r in data["routes"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed traffic plan routes: {exc!r}") from exc
        shadow_version = data.get("shadow_version")
        return cls(
            routes=routes,
            shadow_version=None if shadow_version is None else str(shadow_version),
            shadow_share=float(data.get("shadow_share", 0.0)),
            generation=int(data.get("generation", 0)),
        )


@dataclass(frozen=True)
class Decision:
    """Where one request goes: the live version and its role, and whether to shadow it."""

    version: str
    role: str
    shadow: bool


@dataclass(frozen=True)
class _Table:
    """A plan compiled for :meth:`Router.decide`: bounds to bisect, answers to hand out."""

    plan: TrafficPlan
    bounds: tuple[float, ...]
    live: tuple[Decision, ...]  # shadow=False, one per bound
    shadowed: tuple[Decision, ...]  # shadow=True, or the live answer when it is the shadow
    shadow_share: float

    @classmethod
    def compile(cls, plan: TrafficPlan) -> _Table:
        # Zero-weight routes own an empty interval, so leaving them out changes no key's
        # route, and they can never be picked through float rounding.
        routes = sorted((r for r in plan.routes if r.weight > 0), key=lambda r: r.version)
        cumulative, bounds = 0.0, []
        for route in routes:
            cumulative += route.weight
            bounds.append(cumulative)
        bounds[-1] = 1.0  # points are < 1, so rounding in the sum never falls off the end
        live = tuple(Decision(r.version, r.role, False) for r in routes)
        shadowed = tuple(
            Decision(r.version, r.role, r.version != plan.shadow_version) for r in routes
        )
        share = plan.shadow_share if plan.shadow_version is not None else 0.0
        return cls(plan, tuple(bounds), live, shadowed, share)


def _point(key: str, family: hashlib.blake2b) -> float:
    """A stable point in [0, 1) for ``key`` in one hash family."""
    hasher = family.copy()
    hasher.update(key.encode())
    return (int.from_bytes(hasher.digest()) >> 11) * _UNIT  # 53 bits: exact, never 1.0


class Router:
    """Applies a :class:`TrafficPlan` to requests; cheap per call, swappable at runtime."""

    def __init__(self, plan: TrafficPlan, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._table = _Table.compile(plan)

    @property
    def plan(self) -> TrafficPlan:
        """The plan in force."""
        return self._table.plan

    def update(self, plan: TrafficPlan) -> None:
        """Switch to ``plan``; requests already deciding finish on the old one."""
        self._table = _Table.compile(plan)

    def decide(self, key: str | None) -> Decision:
        """The route for one request; the same key gets the same answer while the plan holds."""
        table = self._table  # read once: a concurrent update cannot mix two plans
        if key is None:
            live_point = self._rng.random()
            shadow_point = self._rng.random() if table.shadow_share > 0 else 1.0
        else:
            live_point = _point(key, _LIVE_HASH)
            shadow_point = _point(key, _SHADOW_HASH) if table.shadow_share > 0 else 1.0
        index = bisect_right(table.bounds, live_point)
        if shadow_point < table.shadow_share:
            return table.shadowed[index]
        return table.live[index]


@dataclass(frozen=True)
class StickyKey:
    """Where a request's routing key comes from: a header, or an input column's first row."""

    source: str  # "header" or "input"
    name: str

    @classmethod
    def parse(cls, text: str) -> StickyKey:
        """``header:<name>`` (e.g. ``header:X-User-ID``) or ``input:<column>``."""
        from shipyard.errors import ConfigError

        source, _, name = text.partition(":")
        if source not in ("header", "input") or not name.strip():
            raise ConfigError(
                f"Sticky key {text!r} is not understood.",
                hint="Use header:<name> (e.g. header:X-User-ID) or input:<column> "
                "(e.g. input:customer_id).",
            )
        name = name.strip()
        return cls(source, name.lower() if source == "header" else name)
