"""The versioned, date-effective price table: LiteLLM import, lookups, history, bad input.

Real SQLite store of a copied example project; the price file is a small LiteLLM-shaped
fixture (tests/support/litellm_prices.json, written in LiteLLM's documented format).
No provider is involved.
"""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shipyard.access import Grant, Permission, Principal, Scope
from shipyard.config import Config, load_config
from shipyard.errors import ConfigError, DataError, Forbidden
from shipyard.llm.prices import (
    LivePriceBook,
    PriceBook,
    import_configured_prices,
    import_prices,
    list_prices,
    parse_prices,
    set_price,
)
from shipyard.llm.types import TokenUsage
from shipyard.project import Project
from shipyard.store.event_kinds import EventKind
from tests.support import copy_example, project_of, wait_for

FIXTURE = Path(__file__).resolve().parents[1] / "support" / "litellm_prices.json"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    root = copy_example(tmp_path / "churn")
    return load_config(root / "shipyard.yaml", environ={})


@pytest.fixture
def project(config: Config) -> Project:
    return project_of(config)


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_litellm_import_stores_one_version_and_audits_it(project: Project) -> None:
    done = import_prices(project, FIXTURE, effective_from=T0, reason="initial prices")
    # sample_spec is LiteLLM's documentation entry; dall-e-3 has no per-token price.
    assert done.table_version == 1 and done.models == 4 and done.rows == 10
    assert done.skipped == ("dall-e-3",) and done.source.startswith("litellm:")
    (event,) = project.store.events(kind=EventKind.LLM_PRICES_IMPORTED.value)
    assert event.actor == "tester" and event.reason == "initial prices"
    assert event.payload["table_version"] == 1 and event.payload["rows"] == 10
    rows = list_prices(project, at=T0 + timedelta(days=1))
    assert {r.model_pattern for r in rows} == {
        "gpt\\-4o",
        "gpt\\-4o\\-mini",
        "stand\\-in\\-chat",
        "text\\-embedding\\-3\\-small",
    }
    assert list_prices(project, at=T0 - timedelta(days=1)) == []  # not in effect yet


def test_cost_prices_cached_tokens_and_matches_whole_names(project: Project) -> None:
    import_prices(project, FIXTURE, effective_from=T0)
    book = PriceBook.load(project.store)
    usage = TokenUsage(prompt_tokens=1000, completion_tokens=100, cached_tokens=200)
    cost = book.cost("gpt-4o", usage, T0 + timedelta(hours=1))
    assert cost.source == "computed" and cost.table_version == 1 and cost.currency == "USD"
    assert math.isclose(cost.amount, 800 * 2.5e-6 + 200 * 1.25e-6 + 100 * 1e-5)
    mini = book.cost("gpt-4o-mini", usage, T0 + timedelta(hours=1))
    assert math.isclose(mini.amount, 800 * 1.5e-7 + 200 * 7.5e-8 + 100 * 6e-7)
    # No cached price: cached tokens cost what input tokens do.
    plain = book.cost("stand-in-chat", usage, T0 + timedelta(hours=1))
    assert math.isclose(plain.amount, 1000 * 2e-6 + 100 * 8e-6)
    # "gpt-4o" does not price "gpt-4o-2024-08-06": a pattern matches the whole name.
    assert book.cost("gpt-4o-2024-08-06", usage, T0 + timedelta(hours=1)).source == "unpriced"
    assert book.cost("gpt-4o", usage, T0 - timedelta(seconds=1)).source == "unpriced"


def test_a_provider_reported_cost_wins(project: Project) -> None:
    import_prices(project, FIXTURE, effective_from=T0)
    book = PriceBook.load(project.store, currency="USD")
    cost = book.cost("gpt-4o", TokenUsage(10, 10), T0 + timedelta(days=1), reported=0.0421)
    assert (cost.amount, cost.source, cost.table_version) == (0.0421, "provider", None)


def test_a_later_version_never_reprices_earlier_calls(project: Project, tmp_path: Path) -> None:
    import_prices(project, FIXTURE, effective_from=T0)
    usage = TokenUsage(prompt_tokens=1000, completion_tokens=500)
    t1 = T0 + timedelta(days=3)
    first = PriceBook.load(project.store).cost("gpt-4o", usage, t1)
    doubled = json.loads(FIXTURE.read_text(encoding="utf-8"))
    doubled["gpt-4o"]["input_cost_per_token"] = 5e-06
    doubled["gpt-4o"]["output_cost_per_token"] = 2e-05
    t2 = T0 + timedelta(days=10)
    v2 = import_prices(project, write(tmp_path / "v2.json", doubled), effective_from=t2)
    assert v2.table_version == 2
    book = PriceBook.load(project.store)
    assert book.version == 2
    # A call dated before v2's effective_from is still priced at v1 ...
    again = book.cost("gpt-4o", usage, t1)
    assert again == first and first.table_version == 1
    # ... and a call after it at v2.
    later = book.cost("gpt-4o", usage, t2 + timedelta(hours=1))
    assert later.table_version == 2 and math.isclose(later.amount, 2 * first.amount)
    # Old rows are kept: every version can still be explained.
    everything = list_prices(project, every_version=True)
    assert {r.table_version for r in everything} == {1, 2}


def test_own_format_most_specific_pattern_and_manual_prices(
    project: Project, tmp_path: Path
) -> None:
    own = {
        "currency": "EUR",
        "effective_from": "2026-11-01T00:00:00Z",
        "prices": [
            {"model_pattern": "gpt-4o.*", "input": 1e-06, "output": 2e-06},
            {"model_pattern": "gpt-4o-mini.*", "input": 1e-07, "output": 2e-07},
        ],
    }
    done = import_prices(project, write(tmp_path / "own.json", own))
    assert done.source.startswith("shipyard:") and done.effective_from == T0
    book = PriceBook.load(project.store)
    usage = TokenUsage(1000, 1000)
    assert math.isclose(book.cost("gpt-4o-mini-2024", usage, T0).amount, 3e-4)
    assert math.isclose(book.cost("gpt-4o-2024", usage, T0).amount, 3e-3)
    assert book.cost("gpt-4o-2024", usage, T0).currency == "EUR"
    manual = set_price(
        project, "gpt-4o.*", input=0.0, output=1e-06, effective_from=T0 + timedelta(days=1)
    )
    assert manual.table_version == 2 and manual.source == "manual"
    book = PriceBook.load(project.store)
    assert math.isclose(book.cost("gpt-4o-2024", usage, T0 + timedelta(days=2)).amount, 1e-3)
    # "gpt-4o.*" of version 2 matches the mini too: the newest version in effect wins.
    assert book.cost("gpt-4o-mini-2024", usage, T0 + timedelta(days=2)).table_version == 2


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ("{not json", "not JSON"),
        ([1, 2], "must hold a JSON object"),
        ({"gpt-4o": {"input_cost_per_token": -1e-06}}, "gpt-4o.input_cost_per_token"),
        ({"gpt-4o": {"output_cost_per_token": "cheap"}}, "gpt-4o.output_cost_per_token"),
        ({"gpt-4o": {"cache_read_input_token_cost": True}}, "gpt-4o.cache_read_input_token_cost"),
        ({"gpt-4o": 3}, "'gpt-4o' must be an object"),
        ({"prices": [{"model_pattern": "gpt-(4o", "input": 1e-06}]}, "prices[0].model_pattern"),
        ({"prices": [{"input": 1e-06}]}, "prices[0].model_pattern is missing"),
        ({"prices": [{"model_pattern": "x", "input": 1, "outptu": 2}]}, "outptu"),
        ({"prices": [{"model_pattern": "x", "output": None}]}, "prices[0] has no price"),
        ({"prices": [{"model_pattern": "x", "output": [1]}]}, "prices[0].output"),
        ({"currency": "dollars", "prices": []}, "currency"),
        ({"dall-e-3": {"input_cost_per_pixel": 1e-08}}, "no per-token price"),
    ],
)
def test_bad_price_files_name_the_field_and_store_nothing(
    project: Project, tmp_path: Path, data: Any, names: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError) as refused:
        import_prices(project, path)
    assert names in str(refused.value)
    assert project.store.events(kind=EventKind.LLM_PRICES_IMPORTED.value) == []
    assert list_prices(project, every_version=True) == []


def test_bad_manual_prices_are_refused(project: Project) -> None:
    with pytest.raises(DataError, match=r"input is -0\.5"):
        set_price(project, "gpt-4o", input=-0.5)
    with pytest.raises(ConfigError, match="at least one price"):
        set_price(project, "gpt-4o")
    with pytest.raises(DataError, match="model_pattern"):
        set_price(project, "gpt-(", input=1e-06)
    with pytest.raises(ConfigError, match="currency"):
        set_price(project, "gpt-4o", input=1e-06, currency="usd")
    assert list_prices(project, every_version=True) == []


def test_prices_need_models_deploy_on_every_model(config: Config) -> None:
    viewer = project_of(config, "vic", role="viewer")
    with pytest.raises(Forbidden):
        import_prices(viewer, FIXTURE)
    one_model = Project(
        config,
        Principal(
            "dora",
            "test",
            "deployer",
            frozenset({Scope.MODELS_DEPLOY, Scope.MODELS_READ}),
            (Grant("model", "churn", Permission.MANAGE),),
        ),
    )
    with pytest.raises(Forbidden):  # the table prices every model, not only churn
        set_price(one_model, "gpt-4o", input=1e-06)
    assert list_prices(one_model, every_version=True) == []


def test_configured_prices_are_imported_once(config: Config, tmp_path: Path) -> None:
    configured = config.model_copy(
        update={"llm": config.llm.model_copy(update={"prices": str(FIXTURE)})}
    )
    project = project_of(configured)
    assert import_configured_prices(project) is not None
    assert import_configured_prices(project) is None  # the same file: nothing new
    assert PriceBook.load(project.store).version == 1


def test_parse_prices_reads_both_formats_without_a_store() -> None:
    entries, skipped, when = parse_prices(json.loads(FIXTURE.read_text(encoding="utf-8")))
    assert len(entries) == 4 and skipped == ["dall-e-3"] and when is None
    own, _, moment = parse_prices(
        {"effective_from": "2026-11-01", "prices": [{"model_pattern": "m", "output": 0}]}
    )
    assert own[0].prices == {"output": 0.0} and moment == T0


def test_a_live_book_follows_imports_without_a_restart(project: Project, tmp_path: Path) -> None:
    import_prices(project, FIXTURE, effective_from=T0)
    live = LivePriceBook(project.store, every=0.05).start()
    try:
        usage = TokenUsage(1000, 0)
        assert live.version == 1
        assert math.isclose(live.cost("gpt-4o", usage, T0).amount, 2.5e-3)
        set_price(project, "gpt-4o", input=5e-06, effective_from=T0 + timedelta(days=1))
        wait_for(lambda: live.version == 2, what="the live book to load version 2")
        assert math.isclose(live.cost("gpt-4o", usage, T0 + timedelta(days=2)).amount, 5e-3)
        assert math.isclose(live.cost("gpt-4o", usage, T0).amount, 2.5e-3)  # before v2
        assert live.refresh() is False  # nothing new
    finally:
        live.close()


def test_imports_at_once_on_postgresql_take_distinct_versions(
    tmp_path: Path, postgres_url: str
) -> None:
    """Real PostgreSQL: four imports racing each get their own table version."""
    root = copy_example(tmp_path / "churn")
    config = load_config(
        root / "shipyard.yaml", environ={}, overrides={"database_url": postgres_url}
    )
    projects = [project_of(config, f"p{i}") for i in range(4)]
    for project in projects:
        assert project.store.events(kind=EventKind.LLM_PRICES_IMPORTED.value) == []
    start = threading.Barrier(len(projects))

    def one(project: Project) -> int:
        start.wait()
        return import_prices(project, FIXTURE, effective_from=T0).table_version

    with ThreadPoolExecutor(len(projects)) as pool:
        versions = sorted(pool.map(one, projects))
    assert versions == [1, 2, 3, 4]
    book = PriceBook.load(projects[0].store)
    assert book.version == 4
    cost = book.cost("gpt-4o", TokenUsage(1000, 0), T0 + timedelta(days=1))
    assert cost.table_version == 4 and math.isclose(cost.amount, 2.5e-3)
    events = projects[0].store.events(kind=EventKind.LLM_PRICES_IMPORTED.value)
    assert sorted(e.payload["table_version"] for e in events) == [1, 2, 3, 4]
