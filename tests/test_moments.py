"""The one UTC helper: naive times are UTC already, aware ones are converted to UTC."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from shipyard.moments import as_utc, parse_moment
from shipyard.store import EventKind, Store

REPO = Path(__file__).resolve().parents[1]
PARIS_SUMMER = timezone(timedelta(hours=2))


def test_a_naive_time_is_taken_as_utc() -> None:
    moment = as_utc(datetime(2026, 11, 24, 9, 30))
    assert moment == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert moment.tzinfo is UTC


def test_an_aware_time_is_converted_to_the_same_instant_in_utc() -> None:
    local = datetime(2026, 7, 1, 9, 30, tzinfo=PARIS_SUMMER)
    moment = as_utc(local)
    assert moment == local  # the same instant
    assert moment.tzinfo is UTC and moment.hour == 7
    assert moment.isoformat() == "2026-07-01T07:30:00+00:00"


def test_utc_stays_as_it_is() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert as_utc(moment) == moment and as_utc(as_utc(moment)) == moment


def test_parsed_moments_come_out_in_utc() -> None:
    assert parse_moment("2026-11-24T09:00:00+02:00") == datetime(2026, 11, 24, 7, tzinfo=UTC)
    assert parse_moment("2026-11-24T09:00:00+02:00").tzinfo is UTC
    assert parse_moment("2026-11-24") == datetime(2026, 11, 24, tzinfo=UTC)


def test_events_from_sqlite_read_back_in_utc(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cp.db'}", actor="tester")
    try:
        event = store.record(EventKind.KEYS_CREATED, "project:x")
        (found,) = store.events()
        assert found.to_dict()["at"] == as_utc(event.at).isoformat()
        assert found.to_dict()["at"].endswith("+00:00")
    finally:
        store.close()


@pytest.mark.postgres
def test_events_from_postgres_in_another_zone_read_back_in_utc(postgres_url: str) -> None:
    # The session's zone decides the offset PostgreSQL hands back; the event says UTC anyway.
    store = Store(f"{postgres_url}?options=-c%20timezone%3DAsia/Kolkata", actor="tester")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Kolkata"
        store.record(EventKind.KEYS_CREATED, "project:x")
        (found,) = store.events()
        assert found.at.utcoffset() == timedelta(hours=5, minutes=30)  # as the driver gave it
        assert found.to_dict()["at"].endswith("+00:00")
        assert abs(as_utc(found.at) - datetime.now(UTC)) < timedelta(hours=1)
    finally:
        store.close()


def test_the_library_has_one_utc_helper() -> None:
    definitions, replacements = [], []
    for path in sorted((REPO / "shipyard").rglob("*.py")):
        where = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name == "as_utc":
                definitions.append(where)
            if (  # moment.replace(tzinfo=UTC): what as_utc is for
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "replace"
                and any(k.arg == "tzinfo" and ast.unparse(k.value) == "UTC" for k in node.keywords)
            ):
                replacements.append(f"{where}:{node.lineno}")
    assert definitions == ["shipyard/moments.py"]
    assert {where.split(":")[0] for where in replacements} == {"shipyard/moments.py"}
