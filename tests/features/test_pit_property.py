"""The point-in-time join agrees with a brute-force pure-Python reference on random data.

Random sources (ties on event time, a created column), random entity rows (unknown
entities, rows on the event grid, a duplicate), a random ttl, and for ``as_served``
random materialisation runs; all three modes, each by ASOF join and by window rank.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.features.pit import ROW_COLUMN, ViewJoin, point_in_time_join
from tests.support.features import BASE_TIME, random_entity_rows, random_feature_data

BASE = pd.Timestamp(BASE_TIME)
FEATURES = (("conv_rate", "conv_rate"), ("trips", "trips"))


def _reference(
    source: pd.DataFrame,
    entities: pd.DataFrame,
    ttl: timedelta | None,
    mode: str,
    runs: list[dict[str, Any]],
) -> list[float | None]:
    """conv_rate per entity row, by checking every source row against every entity row."""
    rows = list(source.itertuples(index=False))
    out: list[float | None] = []
    for entity in entities.itertuples(index=False):
        at = entity.event_timestamp

        def counts(row: Any, at: pd.Timestamp = at) -> bool:
            if mode == "as_served":
                return any(
                    run["finished_at"] <= at
                    and (run["start_ts"] is None or row.event_timestamp > run["start_ts"])
                    and row.event_timestamp <= run["end_ts"]
                    and row.created <= run["started_at"]
                    for run in runs
                )
            if row.event_timestamp > at:
                return False
            return mode != "as_known_at" or row.created <= at

        found = [r for r in rows if r.driver_id == entity.driver_id and counts(r)]
        best = max(found, key=lambda r: (r.event_timestamp, r.created), default=None)
        if best is not None and ttl is not None and best.event_timestamp < at - ttl:
            best = None
        out.append(None if best is None else float(best.conv_rate))
    return out


@st.composite
def _runs(draw: st.DrawFn) -> list[dict[str, Any]]:
    runs = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.none() | st.integers(-60, 24 * 60))
        end = draw(st.integers(0, 26 * 60))
        started = end + draw(st.integers(0, 600))
        finished = started + draw(st.integers(0, 120))
        runs.append(
            {
                "view": "driver_stats",
                "start_ts": None if start is None else BASE + pd.Timedelta(minutes=start),
                "end_ts": BASE + pd.Timedelta(minutes=end),
                "started_at": BASE + pd.Timedelta(minutes=started),
                "finished_at": BASE + pd.Timedelta(minutes=finished),
            }
        )
    return runs


def _on_the_edges(
    seed: int,
    source: pd.DataFrame,
    entities: pd.DataFrame,
    runs: list[dict[str, Any]],
    ttl: timedelta | None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Move some times onto the boundaries the modes compare: an entity time equal to a
    row's created time, a run's finish or a row's event time plus the ttl; a run started
    exactly when the newest row of a driver was created (and an entity row of that driver
    when the run finished)."""
    rng = np.random.default_rng(seed)
    extra: list[tuple[int, pd.Timestamp]] = []
    if len(source):
        newest = source.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1)
        for run in runs:
            if rng.random() < 0.5:
                row = newest.iloc[rng.integers(len(newest))]
                run["started_at"] = row["created"]
                if run["start_ts"] is not None and run["start_ts"] >= row["event_timestamp"]:
                    run["start_ts"] = None
                run["end_ts"] = max(run["end_ts"], row["event_timestamp"])
                run["finished_at"] = max(run["finished_at"], row["created"])
                extra.append((int(row["driver_id"]), run["finished_at"]))
    edges = [*source["created"].tolist(), *(run["finished_at"] for run in runs)]
    if ttl is not None:
        edges.extend(source["event_timestamp"] + ttl)
    entities = entities.copy()
    if edges:
        chosen = rng.random(len(entities)) < 0.4
        picks = [edges[i] for i in rng.integers(len(edges), size=int(chosen.sum()))]
        stamps = entities["event_timestamp"].tolist()
        for row, pick in zip(np.flatnonzero(chosen), picks, strict=True):
            stamps[row] = pick
        entities["event_timestamp"] = stamps
    if extra:
        added = pd.DataFrame(
            {
                "driver_id": [d for d, _ in extra],
                "event_timestamp": [t for _, t in extra],
                "label": 0,
            }
        )
        entities = pd.concat([entities, added], ignore_index=True)
    entities["driver_id"] = entities["driver_id"].astype("int64")
    entities["event_timestamp"] = pd.to_datetime(entities["event_timestamp"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    return entities, runs


def _runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(runs, columns=["view", "start_ts", "end_ts", "started_at", "finished_at"])
    for column in ("start_ts", "end_ts", "started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    frame["view"] = frame["view"].astype(str)
    return frame


@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    n_entities=st.integers(1, 6),
    n_rows=st.integers(0, 60),
    n_entity_rows=st.integers(1, 40),
    ttl_minutes=st.none() | st.sampled_from([10, 30, 120, 600]),
    mode=st.sampled_from(["event_time", "as_known_at", "as_served"]),
    strategy=st.sampled_from(["asof", "rank"]),
    runs=_runs(),
)
def test_join_matches_brute_force_reference(
    seed, n_entities, n_rows, n_entity_rows, ttl_minutes, mode, strategy, runs
) -> None:
    source = random_feature_data(seed, n_entities, n_rows)
    entities = random_entity_rows(seed + 1, n_entities, n_entity_rows)
    ttl = None if ttl_minutes is None else timedelta(minutes=ttl_minutes)
    entities, runs = _on_the_edges(seed, source, entities, runs, ttl)
    view = ViewJoin(
        "driver_stats", "source", ("driver_id",), FEATURES, "event_timestamp", "created", ttl
    )
    con = duckdb.connect()
    con.register("source", source)
    numbered = entities.assign(**{ROW_COLUMN: range(len(entities))})
    con.register("entities", numbered)
    con.register("runs", _runs_frame(runs))
    out = point_in_time_join(
        con,
        "entities",
        [view],
        mode=mode,
        runs="runs",
        row_column=ROW_COLUMN,
        strategy=strategy,
    )
    expected = _reference(source, entities, ttl, mode, runs)
    got = [None if pd.isna(value) else float(value) for value in out["conv_rate"]]
    assert len(out) == len(entities)
    assert out["label"].tolist() == entities["label"].tolist()
    assert got == expected
    # trips comes from the same row as conv_rate
    assert out["trips"].isna().tolist() == out["conv_rate"].isna().tolist()
