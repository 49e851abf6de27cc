"""Triggers: monitoring's request, the cron schedule, new data at the source, by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from shipyard.errors import ConfigError
from shipyard.pipelines.triggers import (
    DataWatch,
    drift_trigger,
    manual_trigger,
    next_fire,
    schedule_trigger,
)
from shipyard.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ct.db'}", actor="tester")


def test_drift_trigger_takes_the_champions_newest_request(store: Store) -> None:
    assert drift_trigger(store, "loans", "1", set()) is None
    store.record("retrain_requested", "model:loans2", {"signal": "prediction", "version": "1"})
    assert drift_trigger(store, "loans", "1", set()) is None  # another model's
    event = store.record(
        "retrain_requested", "model:loans", {"signal": "performance:accuracy", "version": "1"}
    )
    found = drift_trigger(store, "loans", "1", set())
    assert found is not None
    assert found.key == f"drift:{event.id}" and found.cause == "drift:performance:accuracy"
    assert drift_trigger(store, "loans", "1", {found.key}) is None  # spent
    assert drift_trigger(store, "loans", "2", set()) is None  # about a retired champion


def test_schedule_fires_once_per_time_and_catches_up_with_the_latest() -> None:
    last = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert (
        schedule_trigger(
            "0 3 * * *", last=last, now=datetime(2026, 11, 23, 23, tzinfo=UTC), spent=set()
        )
        is None
    )
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # three fire times passed while stopped
    found = schedule_trigger("0 3 * * *", last=last, now=now, spent=set())
    assert found is not None and found.details["fired_at"] == "2026-11-26T03:00:00+00:00"
    assert found.cause == "schedule:0 3 * * *"
    assert schedule_trigger("0 3 * * *", last=last, now=now, spent={found.key}) is None


def test_a_bad_cron_expression_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        next_fire("every day at 3", datetime.now(UTC))
    assert "five fields" in (caught.value.hint or "")


def test_data_watch_notices_a_new_file_and_reads_only_on_change(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]}).to_parquet(folder / "0000.parquet")
    watch = DataWatch(folder, every=0.0)
    first = watch.digest(0.0)
    assert first is not None and first[1] == 3
    assert watch.trigger(1.0, first[0], set()) is None  # nothing new
    pd.DataFrame({"x": [4], "y": [1]}).to_parquet(folder / "0001.parquet")
    found = watch.trigger(2.0, first[0], set())
    assert found is not None and found.kind == "new_data" and found.details["rows"] == 4
    assert found.details["digest"] != first[0]
    assert watch.trigger(3.0, first[0], {found.key}) is None


def test_data_watch_waits_between_checks(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(folder / "0000.parquet")
    watch = DataWatch(folder, every=60.0)
    first = watch.digest(0.0)
    pd.DataFrame({"x": [2]}).to_parquet(folder / "0001.parquet")
    assert watch.digest(30.0) == first  # not looked at again yet
    later = watch.digest(61.0)
    assert later is not None and later[1] == 2


def test_manual_trigger_keeps_the_reason() -> None:
    found = manual_trigger("new quarter")
    assert found.kind == "manual" and found.cause == "manual"
    assert found.details["reason"] == "new quarter" and found.key.startswith("manual:")
