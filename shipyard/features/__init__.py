"""The feature store: feature views, point-in-time training sets, an online store, skew.

Definitions (:mod:`~shipyard.features.definitions`) are read by
:func:`~shipyard.features.repo.load_repo`; point-in-time joins run on DuckDB; the online
store is SQLite or Redis; skew compares what was served with what should have been.
Feast is an optional interop path, never imported here.
"""

from shipyard.features.definitions import (
    Entity,
    Feature,
    FeatureRef,
    FeatureView,
    FileSource,
    OnDemandView,
    PostgresSource,
    SqlSource,
    on_demand,
    parse_refs,
)
from shipyard.features.repo import FeatureRepo, load_repo

__all__ = [
    "Entity",
    "Feature",
    "FeatureRef",
    "FeatureRepo",
    "FeatureView",
    "FileSource",
    "OnDemandView",
    "PostgresSource",
    "SqlSource",
    "load_repo",
    "on_demand",
    "parse_refs",
]
