"""Generate the rides example's data (deterministic: seed 11).

Run `python make_data.py` to recreate:

- data/driver_hourly_stats.parquet: hourly statistics per driver (the feature view's
  source): conv_rate, acc_rate, avg_daily_trips, stamped with the hour they describe
  (event_timestamp) and when the pipeline wrote them (created, 1-20 minutes later).
  A few hours are missing, so some rides find no fresh statistics (ttl 2 h).
- data/rides.parquet: ride requests (the entity rows): driver_id, event_timestamp (when
  the ride was offered), ride_distance_km (a request-time input) and accepted (the label).

`python make_data.py --recent` writes the same data shifted to end at the current hour,
so served statistics are fresh (within the view's ttl) for a serving demo.

Whether a driver accepts depends on their acceptance rate *at the time of the ride*,
their trips so far and the ride's distance, so a training set that leaks later
statistics into earlier rides would look better than it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

DRIVERS = 20
DAYS = 7
RIDES = 3000
START = pd.Timestamp("2024-03-01", tz="UTC")
DATA = Path(__file__).resolve().parent / "data"


def driver_hourly_stats(rng: np.random.Generator, start: pd.Timestamp) -> pd.DataFrame:
    """One row per driver and hour, each driver's rates drifting slowly over the week."""
    hours = pd.date_range(start, periods=DAYS * 24, freq="h")
    frames = []
    for driver in range(1001, 1001 + DRIVERS):
        base = rng.uniform(0.2, 0.9)
        walk = np.cumsum(rng.normal(0, 0.03, len(hours)))
        acc = np.clip(base + walk, 0.02, 0.98)
        frames.append(
            pd.DataFrame(
                {
                    "driver_id": driver,
                    "event_timestamp": hours,
                    "conv_rate": np.round(np.clip(acc * rng.uniform(0.6, 1.0), 0, 1), 3),
                    "acc_rate": np.round(acc, 3),
                    "avg_daily_trips": rng.poisson(8 + 20 * acc).astype("int64"),
                }
            )
        )
    stats = pd.concat(frames, ignore_index=True)
    stats = stats[rng.random(len(stats)) > 0.03].reset_index(drop=True)  # missing hours
    delay = pd.to_timedelta(rng.integers(1, 21, len(stats)), unit="min")
    stats["created"] = stats["event_timestamp"] + delay
    for column in ("event_timestamp", "created"):
        stats[column] = stats[column].astype("datetime64[us, UTC]")
    return stats[
        ["driver_id", "event_timestamp", "created", "conv_rate", "acc_rate", "avg_daily_trips"]
    ]


def rides(rng: np.random.Generator, stats: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """Ride offers at random times; accepted depends on the statistics known at that time."""
    offset = pd.to_timedelta(rng.integers(3600, DAYS * 24 * 3600, RIDES), unit="s")
    frame = pd.DataFrame(
        {
            "driver_id": rng.integers(1001, 1001 + DRIVERS, RIDES).astype("int64"),
            "event_timestamp": (start + offset).astype("datetime64[us, UTC]"),
            "ride_distance_km": np.round(rng.gamma(2.0, 3.0, RIDES) + 0.5, 2),
        }
    )
    ordered = frame.sort_values("event_timestamp")
    known = (
        pd.merge_asof(
            ordered,
            stats.sort_values("event_timestamp"),
            on="event_timestamp",
            by="driver_id",
            direction="backward",
        )
        .set_index(ordered.index)
        .sort_index()
    )
    acc = known["acc_rate"].fillna(0.5).to_numpy()
    trips = known["avg_daily_trips"].fillna(15).to_numpy()
    logit = 5 * (acc - 0.5) + 0.04 * (trips - 15) - 0.15 * (frame["ride_distance_km"] - 6)
    frame["accepted"] = (rng.random(RIDES) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def main(recent: bool = False) -> None:
    """Write both files under data/ (ending at the current hour when ``recent``)."""
    start = START
    if recent:
        start = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=DAYS * 24 - 1)
    rng = np.random.default_rng(11)
    DATA.mkdir(exist_ok=True)
    stats = driver_hourly_stats(rng, start)
    stats.to_parquet(DATA / "driver_hourly_stats.parquet", index=False)
    rides(rng, stats, start).to_parquet(DATA / "rides.parquet", index=False)


if __name__ == "__main__":
    main(recent="--recent" in sys.argv[1:])
