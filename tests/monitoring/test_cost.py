"""The dashboard's cost figures: serving cost in buckets and in total per version and arm,
cost per 1,000 predictions, and the errors a caller must fix."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.config import Config, load_config
from shipyard.errors import Forbidden, RequestError
from shipyard.monitoring import cost_summary, serving_cost
from shipyard.project import Principal, Project
from shipyard.store.usage import UsageRecord, write_usage
from tests.support import copy_example, project_of

T0 = datetime(2026, 5, 4, 9, 0, 0, tzinfo=UTC)


def usage(
    seconds: int, version: str, role: str, requests: int, cost: float, currency: str = "USD"
) -> UsageRecord:
    return UsageRecord(
        T0 + timedelta(seconds=seconds), "h", 7, "churn", version, role, requests,
        cost * 1000, 0.0, cost, currency,
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Config:
    root = copy_example(tmp_path / "churn")
    return load_config(root / "shipyard.yaml", environ={})


@pytest.fixture
def project(config: Config) -> Project:
    project = project_of(config)
    write_usage(
        project.store,
        [
            usage(10, "1", "champion", 800, 0.08),
            usage(25, "2", "challenger", 200, 0.03),
            usage(70, "1", "champion", 1200, 0.12),
            usage(85, "1", "champion", 0, 0.01),  # idle: no predictions, still a cost
            usage(100, "1", "shadow", 0, 0.0),
            usage(40, "1", "champion", 50, 9.0, currency="EUR"),  # priced before a change
            usage(4000, "1", "champion", 10, 0.5),  # outside the hour
        ],
    )
    return project


def test_serving_cost_in_buckets_per_version_and_arm(project: Project) -> None:
    found = serving_cost(project, "churn", T0, T0 + timedelta(hours=1), 60)
    assert found.currency == "USD" and found.bucket_seconds == 60
    rows = [(b.start - T0, b.version, b.role, b.requests) for b in found.buckets]
    assert rows == [
        (timedelta(0), "1", "champion", 800),
        (timedelta(0), "2", "challenger", 200),
        (timedelta(minutes=1), "1", "champion", 1200),
        (timedelta(minutes=1), "1", "shadow", 0),
    ]
    first, challenger, second, shadow = found.buckets
    assert math.isclose(first.cost_per_1000 or 0, 0.1)
    assert math.isclose(challenger.cost_per_1000 or 0, 0.15)
    assert math.isclose(second.cost, 0.13) and math.isclose(second.cost_per_1000 or 0, 0.13 / 1.2)
    assert shadow.cost_per_1000 is None  # no predictions: no price per prediction
    assert found.other_currency_rows == 1  # the EUR row is left out, and said so
    data = found.to_dict()
    assert data["buckets"][0]["start"].startswith("2026-05-04T09:00:00")


def test_cost_summary_per_version_and_arm(project: Project) -> None:
    summary = cost_summary(project, "churn", T0, T0 + timedelta(hours=1))
    champion = summary.total("1", "champion")
    assert champion is not None and champion.requests == 2000
    assert math.isclose(champion.cost, 0.21)
    assert math.isclose(champion.cost_per_1000 or 0, 0.105)
    challenger = summary.total("2", "challenger")
    assert challenger is not None and math.isclose(challenger.cost_per_1000 or 0, 0.15)
    assert summary.total("3", "champion") is None
    assert summary.requests == 2200 and math.isclose(summary.cost, 0.24)
    assert math.isclose(summary.cost_per_1000 or 0, 0.24 / 2.2)
    assert math.isclose(summary.cpu_seconds, 240.0)
    # Without a range: everything stored.
    assert cost_summary(project, "churn").requests == 2210
    assert cost_summary(project, "nothing-served").totals == ()


def test_the_currency_is_the_configured_one(config: Config, project: Project) -> None:
    priced_in_euros = config.cost.model_copy(update={"currency": "EUR"})
    euros = project_of(config.model_copy(update={"cost": priced_in_euros}))
    summary = cost_summary(euros, "churn")
    assert summary.currency == "EUR" and summary.requests == 50
    assert math.isclose(summary.cost, 9.0) and summary.other_currency_rows == 3


def test_bad_ranges_and_buckets_say_what_is_accepted(project: Project) -> None:
    with pytest.raises(RequestError, match="since < until") as ended:
        serving_cost(project, "churn", T0, T0 - timedelta(minutes=1), 60)
    assert ended.value.http_status == 400
    for bad in (0, -5, 0.5, True, "60"):
        with pytest.raises(RequestError, match="at least 1"):
            serving_cost(project, "churn", T0, T0 + timedelta(hours=1), bad)  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="larger bucket or a shorter range"):
        serving_cost(project, "churn", T0, T0 + timedelta(days=30), 1)
    with pytest.raises(RequestError, match="since < until"):
        cost_summary(project, "churn", T0, T0)


def test_reading_cost_needs_models_read(config: Config, project: Project) -> None:
    nobody = Project(config, Principal("nobody", "test", "none", frozenset()))
    with pytest.raises(Forbidden):
        cost_summary(nobody, "churn")
    viewer = project_of(config, "vic", role="viewer")
    assert cost_summary(viewer, "churn").requests == 2210
