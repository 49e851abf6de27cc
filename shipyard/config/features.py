"""The ``features`` section: entities, feature views, the online store and skew checks.

Definitions may also live in a Python file (``features.definitions``, default
``features.py`` beside ``shipyard.yaml``); both are read and merged by
:func:`shipyard.features.load_repo`. This section only declares their shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from shipyard.config._section import Section

__all__ = [
    "EntitySettings",
    "FeatureSettings",
    "FeatureSourceSettings",
    "FeatureViewSettings",
    "OnlineStoreSettings",
    "SkewSettings",
]

MissingPolicy = Literal["null", "default", "reject"]


class EntitySettings(Section):
    """Something features describe (a driver, a customer), found by its join keys."""

    name: str = Field(description="Entity name, e.g. driver.")
    join_keys: list[str] = Field(
        min_length=1, description="Columns that identify one entity, e.g. [driver_id]."
    )
    description: str = Field("", description="What the entity is.")


class FeatureSourceSettings(Section):
    """Where a view's rows come from: exactly one of ``path``, ``sql`` or ``table``."""

    path: str | None = Field(
        None, description="A Parquet or CSV file, or a folder of them (relative to the project)."
    )
    sql: str | None = Field(None, description="A DuckDB SQL query that returns the rows.")
    table: str | None = Field(None, description="A PostgreSQL table (schema.table).")
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL of ``table``; default: the project's database_url. "
        "Credentials come from the environment (PGPASSWORD), never this file.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> FeatureSourceSettings:
        given = [name for name in ("path", "sql", "table") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "a feature source needs exactly one of path, sql or table"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class FeatureViewSettings(Section):
    """A group of features of one entity, read from one source, versioned by definition."""

    name: str = Field(description="View name, e.g. driver_stats.")
    entities: list[str] = Field(min_length=1, description="Entity names this view is keyed by.")
    source: FeatureSourceSettings = Field(description="Where the rows come from.")
    timestamp_field: str = Field(
        "event_timestamp", description="Column holding when each row's values became true."
    )
    created_timestamp_column: str | None = Field(
        None,
        description="Column holding when each row was written; breaks ties on event time and "
        "drives the 'as known at' mode.",
    )
    ttl: str | None = Field(
        None,
        description="How long a row stays valid after its event time (30m, 2h, 7d); "
        "null: forever. Older rows join and serve as missing.",
    )
    features: dict[str, str] = Field(
        min_length=1,
        description="Feature name → type: float64, float32, int64, int32, string or bool.",
    )
    missing: MissingPolicy = Field(
        "null",
        description="An unknown or expired entity when serving: null (served as missing), "
        "default (the view's defaults) or reject (the request gets 404).",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="Values served for a missing entity (missing: default)."
    )
    freshness_sla: str | None = Field(
        None, description="Oldest acceptable age of a served value (e.g. 1h); null: no SLA."
    )
    pii: list[str] = Field(
        default_factory=list,
        description="Features holding personal data: masked in logs and events like pii.fields.",
    )
    description: str = Field("", description="What the view holds.")


class OnlineStoreSettings(Section):
    """Where materialised features are served from."""

    backend: Literal["sqlite", "redis"] = Field(
        "sqlite", description="sqlite (one machine) or redis (a team, several servers)."
    )
    path: Path = Field(
        Path(".shipyard/features/online.db"),
        description="SQLite file of the online store (relative to the project).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL of the online store; a password comes from REDIS_PASSWORD, "
        "never this file.",
    )
    key_prefix: str = Field(
        "shipyard", description="Prefix of every Redis key (the project name is added)."
    )
    timeout_seconds: float = Field(
        1.0, gt=0, description="Longest wait for one online read before the request gets 503."
    )


class SkewSettings(Section):
    """Training-serving skew: value mismatches, distribution shift and stale features."""

    sample: int = Field(
        1000, ge=10, description="Logged requests whose features are recomputed offline per run."
    )
    tolerance: float = Field(
        1e-6,
        ge=0,
        description="Relative difference under which a served number equals the offline one.",
    )
    mismatch_bands: tuple[float, float, float] = Field(
        (0.01, 0.05, 0.10),
        description="Share of mismatched values (per feature) at inspect, retrain, pause.",
    )
    stale_bands: tuple[float, float, float] = Field(
        (0.05, 0.20, 0.50),
        description="Share of served values older than their view's freshness_sla at "
        "inspect, retrain, pause.",
    )


class FeatureSettings(Section):
    """The feature store: definitions, the online store and skew checks."""

    definitions: Path = Field(
        Path("features.py"),
        description="Python file declaring Entity, FeatureView and on_demand objects "
        "(relative to the project; optional).",
    )
    entities: list[EntitySettings] = Field(
        default_factory=list, description="Entities declared here instead of features.py."
    )
    views: list[FeatureViewSettings] = Field(
        default_factory=list, description="Feature views declared here instead of features.py."
    )
    batch_rows: int = Field(
        50_000,
        ge=100,
        description="Rows per batch when materialising: memory stays bounded by this.",
    )
    online: OnlineStoreSettings = Field(default_factory=OnlineStoreSettings)  # type: ignore[arg-type]
    skew: SkewSettings = Field(default_factory=SkewSettings)  # type: ignore[arg-type]
