"""Serving compute cost: CPU seconds and their price per model, version and route arm.

A real ``shipyard serve --workers 2`` answers champion and challenger traffic; its
``/metrics`` price each arm's CPU seconds at ``cost.cpu_hour``, and each worker stores
its usage rows, the last interval when it stops.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipyard.config import Config
from shipyard.delivery import TrafficSettings, write_traffic
from shipyard.models.served import load_served_model
from shipyard.project import Principal, Project
from shipyard.registry import Tracking
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import Lineup, ModelSlot
from shipyard.serving.router import Route, Router, TrafficPlan
from shipyard.serving.server import usage_recorder
from shipyard.serving.usage import CostMeter, Prices
from shipyard.store import Store
from shipyard.store.usage import read_usage
from tests.support import ServeProcess, call, in_process, server_environment, wait_for

CPU_HOUR = 3.6  # so a CPU second costs 0.001


def series(text: str, name: str) -> dict[tuple[str, str], float]:
    """``name``'s samples for model churn, keyed by (version, role)."""
    return {
        (sample.labels["version"], sample.labels["role"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels.get("model") == "churn"
    }


def priced(text: str) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """CPU seconds and cost per (version, role), or empty when any cost is not CPU × price.

    Another worker's two counters are written one after the other, so a scrape can land
    between them; the next scrape sees both.
    """
    cpu = series(text, "shipyard_cpu_seconds_total")
    cost = series(text, "shipyard_compute_cost_total")
    consistent = cpu.keys() == cost.keys() and all(
        math.isclose(cost[key], cpu[key] * CPU_HOUR / 3600, rel_tol=1e-9, abs_tol=1e-15)
        for key in cpu
    )
    return (cpu, cost) if consistent else ({}, {})


def test_two_workers_price_each_arm_and_store_their_usage(
    two_versions: tuple[Config, Store, Tracking],
) -> None:
    config, store, _ = two_versions
    write_traffic(store, "churn", TrafficSettings(challengers={"2": 0.4}))
    environ = server_environment(
        SHIPYARD_COST__CPU_HOUR=str(CPU_HOUR), SHIPYARD_COST__FLUSH_SECONDS="1"
    )
    rows = pd.read_csv(config.root / "data" / "golden.csv").head(5)
    body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
    answered: Counter[tuple[str, str]] = Counter()
    sent = 120
    with ServeProcess(
        config.root / "shipyard.yaml", "churn", workers=2, args=("--workers", "2"), environ=environ
    ) as server:
        url = f"{server.url}/v1/models/churn:predict"
        for i in range(sent):
            status, headers, payload = call(
                url, body.encode(), {"X-Request-ID": f"c{i}", "Content-Type": "application/json"}
            )
            assert status == 200, payload
            answered[(headers["x-model-version"], headers["x-model-role"])] += 1
        assert set(answered) == {("1", "champion"), ("2", "challenger")}, answered

        def both_arms_priced() -> tuple[dict[tuple[str, str], float], ...] | None:
            cpu, cost = priced(call(f"{server.url}/metrics")[2].decode())
            return (cpu, cost) if set(answered) <= cpu.keys() else None

        cpu, _ = wait_for(both_arms_priced, what="both arms' CPU priced in /metrics")
        assert cpu[("1", "champion")] > 0 and cpu[("2", "challenger")] > 0, cpu
        assert set(cpu) <= {("1", "champion"), ("2", "challenger")}, cpu
        # The counters only grow: a later scrape reads at least as much for every arm.
        later = wait_for(
            lambda: priced(call(f"{server.url}/metrics")[2].decode())[0] or None,
            what="a consistent second scrape",
        )
        assert all(later[key] >= value for key, value in cpu.items()), (cpu, later)
        assert server.stop() == 0, server.text
    # Each worker stored its intervals, the last one as it stopped: every answered
    # prediction is in exactly one row, priced as the counters were.
    usage = read_usage(store, "churn")
    assert len({row.pid for row in usage}) == 2, usage
    stored: Counter[tuple[str, str]] = Counter()
    for row in usage:
        stored[(row.version, row.role)] += row.requests
        assert row.currency == "USD" and row.cpu_seconds >= 0
        assert math.isclose(row.cost, row.cpu_seconds * CPU_HOUR / 3600, abs_tol=1e-15)
    assert +stored == answered
    assert sum(row.cpu_seconds for row in usage) >= sum(later.values()) > 0


def test_shadow_predictions_are_priced_under_role_shadow(trained_copy: Config) -> None:
    from sklearn.naive_bayes import GaussianNB

    from tests.support import register_numeric

    X = register_numeric(trained_copy, "shadowed", GaussianNB().fit, "sklearn")
    register_numeric(trained_copy, "shadowed", GaussianNB().fit, "sklearn")
    client = Tracking(trained_copy).client
    models = {v: load_served_model(client, "shadowed", v) for v in ("1", "2")}
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0),), shadow_version="2", shadow_share=1)
    app = create_app(ModelSlot(Lineup(models, Router(plan))))
    metrics = app.state.metrics
    body = json.dumps({"instances": X.head(2).to_dict("records")}).encode()
    with in_process(app) as http:
        for _ in range(20):
            assert http.call("/v1/models/shadowed:predict", body)[0] == 200
        wait_for(lambda: app.state.shadows.completed == 20, what="the shadow's 20 predictions")
        taken = {usage.key: usage for usage in metrics.account()}
    assert taken[("shadowed", "1", "champion")].requests == 20
    assert taken[("shadowed", "2", "shadow")].requests == 20
    # Equal counts, equal shares of the interval's CPU.
    champion, shadow = taken[("shadowed", "1", "champion")], taken[("shadowed", "2", "shadow")]
    assert math.isclose(champion.cpu_seconds, shadow.cpu_seconds, rel_tol=1e-12)
    exported = {
        sample.labels["role"]
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == "shipyard_cpu_seconds_total" and sample.value > 0
    }
    assert exported == {"champion", "shadow"}


def test_an_idle_interval_goes_to_the_champion_and_gpus_are_priced_by_wall_time() -> None:
    meter = CostMeter(Prices(cpu_hour=0.0, gpu_hour=7.2, gpus=2))
    first = meter.take(("churn", "3"))
    wait_for(lambda: meter.take(("churn", "3"))[0].gpu_seconds > 0, what="some wall time")
    # Both takes went to the champion: nothing was answered.
    [idle] = meter.drain()
    assert idle.key == ("churn", "3", "champion") and idle.requests == 0
    assert idle.gpu_seconds > first[0].gpu_seconds >= 0
    assert math.isclose(idle.cost, idle.gpu_seconds * 7.2 / 3600, rel_tol=1e-12)
    assert meter.drain() == []  # drained once
    meter.answered(("churn", "3", "champion"))
    meter.answered(("churn", "4", "challenger", "kserve_v1", "200"))
    meter.answered(("churn", "4", "challenger", "v2", "200"))  # one arm over two protocols
    shares = {u.key: u for u in meter.take(("churn", "3"))}
    assert {k: u.requests for k, u in shares.items()} == {
        ("churn", "3", "champion"): 1,
        ("churn", "4", "challenger"): 2,
    }
    one, two = shares[("churn", "3", "champion")], shares[("churn", "4", "challenger")]
    assert math.isclose(two.gpu_seconds, 2 * one.gpu_seconds, rel_tol=1e-9)
    # Without a GPU price, GPUs cost nothing and count no GPU time.
    cpu_only = CostMeter(Prices(cpu_hour=0.04, gpu_hour=0.0, gpus=4))
    assert all(u.gpu_seconds == 0 for u in cpu_only.take(("churn", "3")))


def test_a_failing_store_loses_usage_rows_not_requests(
    trained_copy: Config, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    password = "s3cret-usage-pw"
    broken = trained_copy.model_copy(
        update={"database_url": f"postgresql+psycopg://shipyard:{password}@127.0.0.1:9/none"}
    )
    client = Tracking(trained_copy).client
    served = load_served_model(client, "churn", "1")
    app = create_app(served)
    metrics = app.state.metrics
    project = Project(broken, Principal("tester", "test"))
    recorder = usage_recorder(project, metrics)
    rows = pd.read_csv(trained_copy.root / "data" / "golden.csv").head(2)
    body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")})
    with caplog.at_level(logging.WARNING), in_process(app) as http:
        for _ in range(3):
            assert http.call("/v1/models/churn:predict", body.encode())[0] == 200
            recorder.flush()
    assert recorder.dropped == 3 and recorder.written == 0
    warnings = [r for r in caplog.records if r.name == "shipyard.serving.usage"]
    assert len(warnings) == 1, warnings  # logged once, counted always
    assert "DatabaseError" in warnings[0].getMessage()
    assert password not in caplog.text
    text = metrics.render().decode()
    assert 'shipyard_log_records_total{kind="usage",state="dropped"} 3.0' in text
    assert password not in text
