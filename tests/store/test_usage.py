"""Stored usage rows: written, read back, summed and bucketed alike on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect

from shipyard.store import Store, UsageRow
from shipyard.store.usage import (
    UsageRecord,
    read_usage,
    usage_buckets,
    usage_totals,
    write_usage,
)

START = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)


def record(seconds: int, version: str, role: str, requests: int, cpu: float) -> UsageRecord:
    return UsageRecord(
        at=START + timedelta(seconds=seconds),
        host="host-a",
        pid=4242,
        model="churn",
        version=version,
        role=role,
        requests=requests,
        cpu_seconds=cpu,
        gpu_seconds=0.0,
        cost=cpu * 0.04 / 3600,
        currency="USD",
    )


def check_usage(url: str) -> None:
    store = Store(url, actor="tester")
    try:
        assert "shipyard_usage" in inspect(store.engine).get_table_names()
        assert {c["name"] for c in inspect(store.engine).get_columns("shipyard_usage")} == set(
            UsageRow.__table__.columns.keys()
        )
        records = [
            record(0, "1", "champion", 10, 0.5),  # 12:00:10
            record(15, "1", "champion", 20, 1.0),  # 12:00:25
            record(15, "2", "challenger", 5, 0.25),
            record(65, "1", "champion", 0, 0.125),  # 12:01:15, idle: the champion's
            record(3600, "1", "champion", 7, 0.5),  # an hour later
        ]
        other = replace(record(20, "1", "champion", 1, 1.0), model="other")
        assert write_usage(store, [*records, other]) == 6
        assert write_usage(store, []) == 0
        found = read_usage(store, "churn")
        assert [(r.at, r.version, r.requests) for r in found] == [
            (r.at, r.version, r.requests) for r in records
        ]
        assert all(r.at.tzinfo is not None for r in found)
        # since is inclusive, until exclusive; an aware time in another zone is the same moment
        paris = timezone(timedelta(hours=1))
        window = read_usage(
            store,
            "churn",
            since=(START + timedelta(seconds=15)).astimezone(paris),
            until=START + timedelta(seconds=65),
        )
        assert [(r.version, r.requests) for r in window] == [("1", 20), ("2", 5)]
        totals = {(t.version, t.role): t for t in usage_totals(store, "churn")}
        assert totals["1", "champion"].requests == 37
        assert math.isclose(totals["1", "champion"].cpu_seconds, 2.125)
        assert totals["2", "challenger"].requests == 5
        assert math.isclose(totals["2", "challenger"].cost, 0.25 * 0.04 / 3600)
        # Minute buckets, aligned to the epoch: 12:00 holds two champion rows.
        buckets = usage_buckets(store, "churn", START, START + timedelta(hours=2), 60)
        assert [(b.start.strftime("%H:%M"), b.version, b.requests) for b in buckets] == [
            ("12:00", "1", 30),
            ("12:00", "2", 5),
            ("12:01", "1", 0),
            ("13:00", "1", 7),
        ]
        assert math.isclose(buckets[0].cpu_seconds, 1.5)
        assert buckets[0].start.tzinfo is not None
        hour = usage_buckets(store, "churn", START, START + timedelta(minutes=30), 3600)
        assert [(b.start.hour, b.version, b.requests) for b in hour] == [
            (12, "1", 30),
            (12, "2", 5),
        ]
    finally:
        store.close()


def test_usage_on_sqlite(tmp_path: Path) -> None:
    check_usage(f"sqlite:///{tmp_path / 'control.db'}")


def test_usage_on_postgresql(postgres_url: str) -> None:
    check_usage(postgres_url)


@pytest.mark.parametrize("seconds", [1, 7, 900])
def test_buckets_cover_every_row_once(tmp_path: Path, seconds: int) -> None:
    store = Store(f"sqlite:///{tmp_path / 'control.db'}", actor="tester")
    try:
        write_usage(store, [record(i * 13, "1", "champion", 1, 0.1) for i in range(50)])
        buckets = usage_buckets(store, "churn", START, START + timedelta(hours=1), seconds)
        assert sum(b.requests for b in buckets) == 50
        assert all(b.start.timestamp() % seconds == 0 for b in buckets)
        assert [b.start for b in buckets] == sorted({b.start for b in buckets})
    finally:
        store.close()
