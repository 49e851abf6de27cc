"""The rides example's feature definitions: `shipyard features apply` registers them."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from shipyard.features import Entity, Feature, FeatureView, FileSource, on_demand

driver = Entity("driver", join_keys=("driver_id",), description="A driver on the platform.")

driver_hourly_stats = FeatureView(
    "driver_hourly_stats",
    entities=("driver",),
    source=FileSource("data/driver_hourly_stats.parquet"),
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    ttl=timedelta(hours=2),
    features=(
        Feature("conv_rate", "float64"),
        Feature("acc_rate", "float64"),
        Feature("avg_daily_trips", "int64"),
    ),
    freshness_sla=timedelta(hours=2),
    description="Each driver's statistics for the last hour, written a few minutes later.",
)


@on_demand(
    sources=["driver_hourly_stats:avg_daily_trips"],
    features=[Feature("trips_per_km", "float64")],
    request_inputs=[Feature("ride_distance_km", "float64")],
)
def ride_features(columns):
    """The driver's daily trips per kilometre of the ride offered (same code offline and online)."""
    trips = np.asarray(columns["avg_daily_trips"], dtype="float64")
    distance = np.asarray(columns["ride_distance_km"], dtype="float64")
    return {"trips_per_km": trips / np.maximum(distance, 0.1)}
