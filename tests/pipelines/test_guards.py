"""The CT guards as functions of their evidence: the cost guard's arithmetic, both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipyard.config import Config
from shipyard.pipelines.economics import KpiDrop, RetrainEconomics
from shipyard.pipelines.guards import GuardDecision, PerformanceLoss, check_guards, cost_decision

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def _config(**ct: object) -> Config:
    """Defaults with only the guards named in ``ct`` on."""
    config = Config.model_validate({})
    settings = {"min_performance_loss": None, "cooldown_seconds": 0, **ct}
    return config.model_copy(update={"ct": config.ct.model_copy(update=settings)})


def _economics(traffic: int | None = 2000, kpi: KpiDrop | None = None) -> RetrainEconomics:
    # 360 CPU-seconds at 0.04 EUR per CPU-hour: 0.004 EUR of compute, plus 5 EUR fixed.
    return RetrainEconomics(
        currency="EUR",
        traffic=traffic,
        since=SINCE,
        retrain_version="3",
        cpu_seconds=360.0,
        gpu_seconds=0.0,
        compute_cost=360.0 * 0.04 / 3600,
        fixed_cost=5.0,
        kpi=kpi,
    )


def _loss(current: float, unreliable: str | None = None) -> PerformanceLoss:
    return PerformanceLoss("accuracy", 0.90, current, "labelled (800 rows)", unreliable)


def test_a_loss_worth_more_than_the_retrain_goes_ahead_with_both_numbers() -> None:
    decision = cost_decision(0.10, _loss(0.86), _economics(traffic=2000))
    # 0.04 drop × 0.10 EUR × 2000 predictions = 8.00 EUR ≥ 5.004 EUR.
    assert decision.allowed and decision.guard == "cost"
    assert decision.evidence["loss_per_prediction"] == pytest.approx(0.004)
    assert decision.evidence["expected_loss"] == pytest.approx(8.0)
    assert decision.evidence["retrain_cost"] == pytest.approx(5.004)
    assert decision.evidence["traffic"] == 2000 and decision.evidence["currency"] == "EUR"
    assert "expected loss 8.00 EUR" in decision.reason
    assert "retraining cost 5.00 EUR" in decision.reason and "worth retraining" in decision.reason


def test_a_loss_worth_less_than_the_retrain_skips_and_spends_the_trigger() -> None:
    decision = cost_decision(0.10, _loss(0.88), _economics(traffic=2000))
    # 0.02 × 0.10 × 2000 = 4.00 EUR < 5.004 EUR.
    assert not decision.allowed and decision.spends_trigger
    assert decision.evidence["expected_loss"] == pytest.approx(4.0)
    assert "expected loss 4.00 EUR" in decision.reason and "<" in decision.reason
    assert "not worth a retrain" in decision.reason
    # The same drop over more traffic is worth it: 0.02 × 0.10 × 3000 = 6.00 EUR.
    assert cost_decision(0.10, _loss(0.88), _economics(traffic=3000)).allowed


def test_an_improvement_is_no_loss_and_a_lower_is_better_metric_counts_its_rise() -> None:
    better = cost_decision(0.10, _loss(0.95), _economics())
    assert not better.allowed and better.evidence["expected_loss"] == 0.0
    log_loss = PerformanceLoss("log_loss", 0.30, 0.40, "labelled (800 rows)")
    worse = cost_decision(0.05, log_loss, _economics(traffic=1000))
    assert worse.evidence["expected_loss"] == pytest.approx(0.10 * 0.05 * 1000)


def test_an_unknown_or_unreliable_loss_never_skips_and_says_why() -> None:
    unknown = cost_decision(0.10, None, _economics())
    assert unknown.allowed and "expected loss unknown" in unknown.reason
    assert unknown.evidence["expected_loss"] is None
    flagged = cost_decision(0.10, _loss(0.89, "scores outside the reference"), _economics())
    assert flagged.allowed and "unreliable: scores outside the reference" in flagged.reason
    no_traffic_count = cost_decision(0.10, _loss(0.80), _economics(traffic=None))
    assert no_traffic_count.allowed and "traffic" in no_traffic_count.reason


def test_a_kpi_replaces_the_metric_drop_times_cost_per_error() -> None:
    kpi = KpiDrop("revenue", 1.20, 1.17, 0.03, "KPI 'revenue' per prediction: 1.2 then 1.17")
    decision = cost_decision(None, None, _economics(traffic=1000, kpi=kpi))
    # 0.03 EUR lost per prediction × 1000 = 30 EUR ≥ 5.004 EUR.
    assert decision.allowed and decision.evidence["expected_loss"] == pytest.approx(30.0)
    none_yet = KpiDrop("revenue", None, None, None, "KPI 'revenue' has 1 bucket(s)")
    waiting = cost_decision(None, _loss(0.5), _economics(kpi=none_yet))
    assert waiting.allowed and "has 1 bucket(s)" in waiting.reason


def test_check_guards_runs_the_cost_guard_only_when_configured() -> None:
    def guards(config: Config, economics: RetrainEconomics | None) -> list[GuardDecision]:
        return check_guards(
            config, now=NOW, last_started=None, new_rows=None, loss=_loss(0.88), economics=economics
        )

    assert not _config().ct.cost_guard and guards(_config(), _economics()) == []
    configured = _config(cost_per_error=0.10, retrain_fixed_cost=5.0)
    assert configured.ct.cost_guard
    [decision] = guards(configured, _economics())
    assert decision.guard == "cost" and not decision.allowed
    [blind] = guards(configured, None)
    assert blind.allowed and "unknown" in blind.reason


def test_an_unreliable_estimate_is_an_unknown_performance_loss() -> None:
    config = _config(min_performance_loss=0.05)
    flagged = _loss(0.89, "62% of the window's scores fall where the reference has little")
    [decision] = check_guards(config, now=NOW, last_started=None, new_rows=None, loss=flagged)
    assert decision.allowed and "unreliable" in decision.reason
    assert "treated as unknown" in decision.reason and decision.evidence["loss"] is None
    [measured] = check_guards(config, now=NOW, last_started=None, new_rows=None, loss=_loss(0.89))
    assert not measured.allowed  # the same 0.01 drop, measured, is below 0.05: skipped
