"""Time ranges and buckets of the dashboard's charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipyard.ui.data import ACCEPTED, RangeError, parse_range
from shipyard.ui.data.buckets import MAX_BUCKETS, grid_for

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "span"),
    [("15m", timedelta(minutes=15)), ("6h", timedelta(hours=6)), ("7d", timedelta(days=7))],
)
def test_a_duration_reaches_back_from_now(text: str, span: timedelta) -> None:
    window = parse_range(text, None, None, "24h", now=NOW)
    assert (window.since, window.until, window.label) == (NOW - span, NOW, text)


def test_the_default_applies_without_a_range() -> None:
    window = parse_range(None, None, None, "24h", now=NOW)
    assert window.since == NOW - timedelta(hours=24)


def test_iso_since_and_until_are_read_as_utc() -> None:
    window = parse_range(None, "2026-12-01T09:30:00Z", "2026-12-02T09:30:00+01:00", "24h")
    assert window.since == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert window.until == datetime(2026, 12, 2, 8, 30, tzinfo=UTC)
    naive = parse_range(None, "2026-12-01", None, "24h", now=NOW)
    assert (naive.since, naive.until) == (datetime(2026, 12, 1, tzinfo=UTC), NOW)


@pytest.mark.parametrize(
    ("text", "since", "until", "words"),
    [
        ("6 hours", None, None, "not a duration"),
        ("0h", None, None, "not a duration"),
        ("-5m", None, None, "not a duration"),
        (None, "yesterday", None, "not an ISO 8601 time"),
        (None, "2026-12-02", "2026-12-01", "must be before"),
        (None, "2026-12-01", "2026-12-01", "must be before"),
        (None, "2020-01-01", "2026-12-01", "more than 400"),
        ("6h", "2026-12-01", None, "not both"),
        ("999999w", None, None, "more than 400"),
        ("60w", None, None, "more than 400"),
    ],
)
def test_a_bad_range_says_what_is_accepted(
    text: str | None, since: str | None, until: str | None, words: str
) -> None:
    with pytest.raises(RangeError) as caught:
        parse_range(text, since, until, "24h", now=NOW)
    assert words in str(caught.value)
    assert ACCEPTED in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("text", ["1m", "15m", "1h", "6h", "24h", "7d", "30d", "400d"])
def test_a_range_is_cut_into_at_most_200_round_buckets(text: str) -> None:
    window = parse_range(text, None, None, "24h", now=NOW)
    grid = grid_for(window)
    assert grid.count <= MAX_BUCKETS
    assert grid.start(grid.count) >= window.until > grid.start(grid.count - 1)
    assert sum(grid.seconds(i) for i in range(grid.count)) == window.seconds
    if window.seconds >= 3600:
        assert grid.count >= 40  # enough points to see a shape
