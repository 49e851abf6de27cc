"""What the feature store knows: entities, feature views, on-demand views, feature refs.

A :class:`FeatureView` is a group of features of one or more entities, read from one
source, with the column that says when each row became true (its event time), an
optional created time, and a ttl. Its :attr:`~FeatureView.version` is the digest of its
definition, so a changed source, ttl or feature list is a new version and the registry
keeps every one.

An :class:`OnDemandView` computes features from other features and request-time inputs
with a plain Python function over columns (``dict[str, numpy array]`` in and out). The
same function runs offline on a whole training set and online on one request's rows,
so the two cannot drift apart.

Declare them in ``features.py`` (module-level objects) or in ``shipyard.yaml``
(``features.entities`` / ``features.views``)::

    driver = Entity("driver", join_keys=("driver_id",))
    driver_stats = FeatureView(
        "driver_stats", entities=("driver",), source=FileSource("data/driver_stats.parquet"),
        ttl=timedelta(hours=2), created_timestamp_column="created",
        features=(Feature("conv_rate", "float64"), Feature("trips", "int64")),
    )
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal

from shipyard.errors import ConfigError
from shipyard.jsonable import canonical_json

__all__ = [
    "DTYPES",
    "Entity",
    "Feature",
    "FeatureRef",
    "FeatureSource",
    "FeatureView",
    "FileSource",
    "MissingPolicy",
    "OnDemandFunction",
    "OnDemandView",
    "PostgresSource",
    "SqlSource",
    "on_demand",
    "parse_refs",
]

DTYPES = ("float64", "float32", "int64", "int32", "string", "bool")
"""The feature types a view may declare."""

MissingPolicy = Literal["null", "default", "reject"]
OnDemandFunction = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _digest(document: Mapping[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of ``document`` as canonical JSON."""
    return hashlib.sha256(canonical_json(document)).hexdigest()[:12]


@dataclass(frozen=True)
class Entity:
    """Something features describe, found by its join keys (``driver`` by ``driver_id``)."""

    name: str
    join_keys: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "join_keys", tuple(self.join_keys))
        if not self.join_keys:
            raise ConfigError(
                f"Entity {self.name!r} has no join keys.", hint="Give e.g. join_keys=('id',)."
            )

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data."""
        return {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "description": self.description,
        }


@dataclass(frozen=True)
class Feature:
    """One feature of a view: its name, type and whether it is personal data."""

    name: str
    dtype: str = "float64"
    pii: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(
                f"Feature {self.name!r} has type {self.dtype!r}.",
                hint=f"Use one of {', '.join(DTYPES)}.",
            )

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data."""
        return {"name": self.name, "dtype": self.dtype, "pii": self.pii}


@dataclass(frozen=True)
class FileSource:
    """A Parquet or CSV file, or a folder of them; a relative path is the project's."""

    path: str

    kind = "file"

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data."""
        return {"kind": self.kind, "path": self.path}


@dataclass(frozen=True)
class SqlSource:
    """A DuckDB query that returns the view's rows (it may read files itself)."""

    sql: str

    kind = "sql"

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data."""
        return {"kind": self.kind, "sql": self.sql}


@dataclass(frozen=True)
class PostgresSource:
    """A PostgreSQL table; ``database_url`` None means the project's database."""

    table: str
    database_url: str | None = None

    kind = "postgres"

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data (a URL's password is never part of it)."""
        return {
            "kind": self.kind,
            "table": self.table,
            "database": _without_password(self.database_url),
        }


FeatureSource = FileSource | SqlSource | PostgresSource


def _without_password(url: str | None) -> str | None:
    if url is None or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


class _Features:
    """What plain and on-demand views share: their declared features, by name."""

    name: str
    features: tuple[Feature, ...]
    _kind = "Feature view"

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of its features, in declared order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        """The feature called ``name``; a ConfigError naming the view's features if none."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise ConfigError(
            f"{self._kind} {self.name!r} has no feature {name!r}.",
            hint=f"Its features: {', '.join(self.feature_names)}.",
        )

    @property
    def pii_features(self) -> tuple[str, ...]:
        """Features tagged as personal data."""
        return tuple(f.name for f in self.features if f.pii)


@dataclass(frozen=True)
class FeatureView(_Features):
    """Features of ``entities`` read from ``source``, valid for ``ttl`` after their event time.

    ``missing`` says what serving does for an unknown or expired entity: ``null``
    (serve missing values), ``default`` (serve ``defaults``) or ``reject`` (404).
    ``freshness_sla`` is the oldest acceptable age of a served value.
    """

    name: str
    entities: tuple[str, ...]
    source: FeatureSource
    features: tuple[Feature, ...]
    timestamp_field: str = "event_timestamp"
    created_timestamp_column: str | None = None
    ttl: timedelta | None = None
    missing: MissingPolicy = "null"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    freshness_sla: timedelta | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "defaults", dict(self.defaults))
        if not self.features:
            raise ConfigError(f"Feature view {self.name!r} declares no features.")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ConfigError(f"Feature view {self.name!r} declares a feature twice.")
        unknown = sorted(set(self.defaults) - set(names))
        if unknown:
            raise ConfigError(
                f"Feature view {self.name!r} has defaults for {', '.join(unknown)}, "
                "which it does not declare."
            )
        if self.ttl is not None and self.ttl <= timedelta(0):
            raise ConfigError(f"Feature view {self.name!r} has a ttl that is not positive.")

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data: what :attr:`version` digests."""
        return {
            "name": self.name,
            "entities": list(self.entities),
            "source": self.source.to_dict(),
            "features": [f.to_dict() for f in self.features],
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "missing": self.missing,
            "defaults": dict(self.defaults),
            "freshness_sla_seconds": (
                None if self.freshness_sla is None else self.freshness_sla.total_seconds()
            ),
            "description": self.description,
        }

    @cached_property
    def version(self) -> str:
        """The digest of the definition: a changed view is a new version."""
        return _digest(self.to_dict())


@dataclass(frozen=True)
class OnDemandView(_Features):
    """Features computed by ``function`` from other views' features and request inputs.

    ``sources`` are feature refs (``view:feature``) the function reads; ``request_inputs``
    are values the request carries (and the entity frame, offline). The function takes
    a mapping of column name → NumPy array (all the same length) and returns one for
    each of ``features``. It runs unchanged offline and online.
    """

    name: str
    sources: tuple[str, ...]
    features: tuple[Feature, ...]
    function: OnDemandFunction
    request_inputs: tuple[Feature, ...] = ()
    description: str = ""

    _kind = "On-demand view"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "request_inputs", tuple(self.request_inputs))

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data, the function's source code included."""
        try:
            code = inspect.getsource(self.function)
        except (OSError, TypeError):
            code = getattr(self.function, "__qualname__", repr(self.function))
        return {
            "name": self.name,
            "kind": "on_demand",
            "sources": list(self.sources),
            "features": [f.to_dict() for f in self.features],
            "request_inputs": [f.to_dict() for f in self.request_inputs],
            "function": code,
            "description": self.description,
        }

    @cached_property
    def version(self) -> str:
        """The digest of the definition and the function's code."""
        return _digest(self.to_dict())

    def compute(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """The function's outputs for ``columns``; a ConfigError if one is missing."""
        out = dict(self.function(columns))
        absent = [name for name in self.feature_names if name not in out]
        if absent:
            raise ConfigError(
                f"On-demand view {self.name!r} did not return {', '.join(absent)}.",
                hint="Return a mapping with one array per declared feature.",
            )
        return {name: out[name] for name in self.feature_names}


def on_demand(
    *,
    sources: tuple[str, ...] | list[str],
    features: tuple[Feature, ...] | list[Feature],
    request_inputs: tuple[Feature, ...] | list[Feature] = (),
    name: str | None = None,
) -> Callable[[OnDemandFunction], OnDemandView]:
    """Decorator: the function becomes an :class:`OnDemandView` named after it."""

    def wrap(function: OnDemandFunction) -> OnDemandView:
        return OnDemandView(
            name or function.__name__,
            tuple(sources),
            tuple(features),
            function,
            tuple(request_inputs),
            (function.__doc__ or "").strip(),
        )

    return wrap


@dataclass(frozen=True, order=True)
class FeatureRef:
    """``view:feature``, one feature of one view (plain or on-demand)."""

    view: str
    feature: str

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        """``driver_stats:conv_rate`` → FeatureRef; a ConfigError for anything else."""
        view, sep, feature = text.strip().partition(":")
        if not sep or not view or not feature or ":" in feature:
            raise ConfigError(
                f"{text!r} is not a feature reference.",
                hint="Write view:feature, e.g. driver_stats:conv_rate.",
            )
        return cls(view, feature)


def parse_refs(refs: str | list[str] | tuple[str, ...]) -> tuple[FeatureRef, ...]:
    """Refs from ``a:x,a:y`` or a list; ``view:*`` is kept as feature ``*`` (all of them)."""
    items = refs.split(",") if isinstance(refs, str) else list(refs)
    parsed = tuple(FeatureRef.parse(item) for item in items if item.strip())
    if not parsed:
        raise ConfigError("No features asked for.", hint="Name them as view:feature,view:feature.")
    return parsed
