"""The traffic router splits by weight, sticks by key, stays monotone, and shadows apart."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.serving.router import Decision, Route, Router, TrafficPlan

KEYS = [f"user-{i}" for i in range(20_000)]


def canary(challenger_weight: float, **kwargs: object) -> TrafficPlan:
    return TrafficPlan(
        routes=(
            Route("v1", "champion", 1.0 - challenger_weight),
            Route("v2", "challenger", challenger_weight),
        ),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"routes": ()}, "at least one route"),
        (
            {"routes": (Route("v1", "champion", 0.5), Route("v2", "challenger", 0.4))},
            "must sum to 1",
        ),
        (
            {"routes": (Route("v1", "champion", 1.2), Route("v2", "challenger", -0.2))},
            "'v2' has weight -0.2",
        ),
        (
            {"routes": (Route("v1", "champion", 0.5), Route("v1", "challenger", 0.5))},
            "duplicate route for version 'v1'",
        ),
        ({"routes": (Route("v1", "canary", 1.0),)}, "role 'canary'"),
        (
            {"routes": (Route("v1", "champion", 0.5), Route("v2", "champion", 0.5))},
            "exactly one champion",
        ),
        ({"routes": (Route("v1", "champion", float("nan")),)}, "finite"),
        (
            {
                "routes": (Route("v1", "champion", 1.0),),
                "shadow_version": "v2",
                "shadow_share": 1.5,
            },
            "shadow_share must be within",
        ),
        (
            {
                "routes": (Route("v1", "champion", 1.0),),
                "shadow_version": "v2",
                "shadow_share": -0.1,
            },
            "shadow_share must be within",
        ),
        ({"routes": (Route("v1", "champion", 1.0),), "shadow_share": 0.1}, "no shadow_version"),
    ],
)
def test_invalid_plans_are_refused_with_the_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrafficPlan(**kwargs)


def test_weights_may_miss_one_by_rounding_only() -> None:
    # 0.1 + 0.2 + 0.7 is not exactly 1.0 in floats, but well within the tolerance.
    TrafficPlan(
        routes=(
            Route("a", "champion", 0.1),
            Route("b", "challenger", 0.2),
            Route("c", "challenger", 0.7),
        )
    )
    with pytest.raises(ValueError, match="must sum to 1"):
        TrafficPlan(routes=(Route("v1", "champion", 0.9), Route("v2", "challenger", 0.1 + 1e-8)))


def test_single_sends_everything_to_the_champion() -> None:
    router = Router(TrafficPlan.single("v7"))
    assert router.plan.routes == (Route("v7", "champion", 1.0),)
    assert {router.decide(key) for key in KEYS[:500]} == {Decision("v7", "champion", False)}
    assert router.decide(None) == Decision("v7", "champion", False)


def test_plan_round_trips_through_json() -> None:
    plan = TrafficPlan(
        routes=(Route("v1", "champion", 0.7), Route("v2", "challenger", 0.3)),
        shadow_version="v3",
        shadow_share=0.25,
        generation=12,
    )
    assert TrafficPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    single = TrafficPlan.single("v1")
    assert TrafficPlan.from_dict(json.loads(json.dumps(single.to_dict()))) == single


def test_from_dict_refuses_malformed_routes() -> None:
    with pytest.raises(ValueError, match="malformed"):
        TrafficPlan.from_dict({"routes": [{"version": "v1", "role": "champion"}]})


def test_a_key_gets_the_same_decision_in_every_worker_and_every_call() -> None:
    plan = canary(0.3, shadow_version="v3", shadow_share=0.2)
    worker_a, worker_b = Router(plan), Router(plan)
    first = [worker_a.decide(key) for key in KEYS[:2000]]
    assert first == [worker_b.decide(key) for key in KEYS[:2000]]
    assert first == [worker_a.decide(key) for key in KEYS[:2000]]


def test_key_hashing_is_pinned_across_processes_and_releases() -> None:
    # Golden values: a change here reshuffles every sticky user on the next deploy.
    router = Router(canary(0.5, shadow_version="v3", shadow_share=0.5))
    decisions = [router.decide(f"user-{i}") for i in range(32)]
    assert "".join(d.version[1] for d in decisions) == "12212211111222211122221212212121"
    assert "".join("s" if d.shadow else "-" for d in decisions) == (
        "--ss-s----s---s----s----s----sss"
    )


def test_observed_split_matches_the_weights() -> None:
    router = Router(
        TrafficPlan(
            routes=(
                Route("v1", "champion", 0.6),
                Route("v2", "challenger", 0.3),
                Route("v3", "challenger", 0.1),
            )
        )
    )
    versions = [router.decide(key).version for key in KEYS]
    for version, weight in [("v1", 0.6), ("v2", 0.3), ("v3", 0.1)]:
        assert abs(versions.count(version) / len(KEYS) - weight) < 0.02


def test_keyless_split_matches_the_weights() -> None:
    router = Router(canary(0.25), rng=random.Random(7))
    share = sum(router.decide(None).version == "v2" for _ in range(20_000)) / 20_000
    assert abs(share - 0.25) < 0.02


@pytest.mark.parametrize("champion", ["a-champion", "z-champion"])
def test_growing_the_challenger_only_moves_champion_keys(champion: str) -> None:
    # The challenger sorts before or after the champion; either end must be monotone.
    def plan(weight: float) -> TrafficPlan:
        return TrafficPlan(
            routes=(
                Route(champion, "champion", 1 - weight),
                Route("m-challenger", "challenger", weight),
            )
        )

    router = Router(plan(0.1))
    at_10 = {key: router.decide(key).version for key in KEYS}
    router.update(plan(0.5))
    at_50 = {key: router.decide(key).version for key in KEYS}
    on_challenger_10 = {k for k, v in at_10.items() if v == "m-challenger"}
    on_champion_50 = {k for k, v in at_50.items() if v == champion}
    assert on_challenger_10 and on_champion_50
    assert all(at_50[key] == "m-challenger" for key in on_challenger_10)
    assert all(at_10[key] == champion for key in on_champion_50)
    assert abs(len(on_challenger_10) / len(KEYS) - 0.1) < 0.02
    assert abs(len(on_champion_50) / len(KEYS) - 0.5) < 0.02


def test_update_swaps_the_plan() -> None:
    router = Router(TrafficPlan.single("v1"))
    new = TrafficPlan.single("v2", generation=3)
    router.update(new)
    assert router.plan is new
    assert router.decide("k").version == "v2"


def test_shadow_share_is_sticky_and_independent_of_the_live_choice() -> None:
    router = Router(canary(0.5, shadow_version="v3", shadow_share=0.2))
    decisions = [router.decide(key) for key in KEYS]
    assert abs(sum(d.shadow for d in decisions) / len(KEYS) - 0.2) < 0.02
    # Independent hashes: the shadow share holds within each live route too.
    for version in ("v1", "v2"):
        on_version = [d for d in decisions if d.version == version]
        assert abs(sum(d.shadow for d in on_version) / len(on_version) - 0.2) < 0.02


def test_never_shadows_to_the_version_serving_live() -> None:
    router = Router(canary(0.5, shadow_version="v2", shadow_share=1.0))
    decisions = [router.decide(key) for key in KEYS[:5000]]
    assert not any(d.shadow for d in decisions if d.version == "v2")
    assert all(d.shadow for d in decisions if d.version == "v1")


def test_keyless_requests_are_shadowed_at_the_share() -> None:
    router = Router(canary(0.1, shadow_version="v3", shadow_share=0.3), rng=random.Random(11))
    decisions = [router.decide(None) for _ in range(20_000)]
    assert abs(sum(d.shadow for d in decisions) / 20_000 - 0.3) < 0.02


def test_no_shadow_without_a_shadow_share() -> None:
    router = Router(canary(0.5, shadow_version="v3", shadow_share=0.0))
    assert not any(router.decide(key).shadow for key in KEYS[:2000])
    assert not any(router.decide(None).shadow for _ in range(2000))


@st.composite
def weighted_plans(draw: st.DrawFn) -> TrafficPlan:
    raw = draw(
        st.lists(st.one_of(st.just(0.0), st.floats(0.001, 1.0)), min_size=1, max_size=6).filter(
            lambda ws: sum(ws) > 0
        )
    )
    total = sum(raw)
    weights = [w / total for w in raw]
    routes = tuple(
        Route(f"v{i}", "champion" if i == 0 else "challenger", w) for i, w in enumerate(weights)
    )
    return TrafficPlan(routes=routes)


@settings(max_examples=150, deadline=None)
@given(plan=weighted_plans(), keys=st.lists(st.text(max_size=12), min_size=1, max_size=50))
def test_decisions_land_only_on_routes_with_weight(plan: TrafficPlan, keys: list[str]) -> None:
    router = Router(plan, rng=random.Random(0))
    eligible = {r.version for r in plan.routes if r.weight > 0}
    for key in [*keys, None, None, None]:
        assert router.decide(key).version in eligible


@settings(max_examples=50, deadline=None)
@given(plan=weighted_plans())
def test_zero_weight_routes_never_receive_traffic_at_the_edges(plan: TrafficPlan) -> None:
    # Points 0 and just below 1 are where rounding in the cumulative bounds would show.
    class EdgeRandom(random.Random):
        def __init__(self) -> None:
            super().__init__(0)
            self.points = iter([0.0, 1.0 - 2.0**-53] * 10)

        def random(self) -> float:
            return next(self.points)

    router = Router(plan, rng=EdgeRandom())
    eligible = {r.version for r in plan.routes if r.weight > 0}
    for _ in range(10):
        assert router.decide(None).version in eligible
