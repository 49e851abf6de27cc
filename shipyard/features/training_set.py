"""Point-in-time training sets: entity rows + feature refs → a snapshotted frame with lineage.

:func:`training_set` checks everything it can before any join runs (the refs against the
definitions, the entity frame's columns, the applied versions, the sources' schemas),
joins in DuckDB (:mod:`~shipyard.features.pit`), computes the on-demand features over
the whole frame at once, and snapshots the result like any dataset. The
:class:`TrainingSet` carries what a model version records in its
``shipyard.features`` tag (:meth:`TrainingSet.lineage`): the features, the columns
they fill, the view versions, the entity keys, the request inputs, the entity set's
digest and the mode. Serving reads that tag to know what to look up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError, DataError
from shipyard.features.definitions import FeatureRef, FeatureView, OnDemandView, parse_refs
from shipyard.features.pit import MODES, ROW_COLUMN, PitMode, ViewJoin, output_names
from shipyard.registry.tags import FEATURES

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from shipyard.data import Snapshot
    from shipyard.features.repo import FeatureRepo
    from shipyard.project import Project

__all__ = [
    "FEATURES_TAG",
    "HistoricalFeatures",
    "TrainingSet",
    "historical_features",
    "training_set",
]

FEATURES_TAG = FEATURES
"""The MLflow run and model-version tag holding :meth:`TrainingSet.lineage` as JSON
(``shipyard.registry.tags.FEATURES``)."""

_HIDDEN = "__shipyard_src__"
_NULLABLE_INTS = {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}


@dataclass(frozen=True)
class TrainingSet:
    """A point-in-time training set: the frame, its snapshot and its lineage.

    ``frame`` holds the entity columns (keys, timestamp, anything carried through such
    as a label) and one column per requested feature (``columns`` maps each ref to
    it). ``views`` maps every view it read (on-demand ones included) to its applied
    version.
    """

    frame: pd.DataFrame
    snapshot: Snapshot
    refs: tuple[str, ...]
    columns: dict[str, str]
    views: dict[str, str]
    entity_keys: tuple[str, ...]
    request_inputs: tuple[str, ...]
    entities_digest: str
    mode: str
    timestamp_column: str

    @property
    def feature_columns(self) -> list[str]:
        """The output columns of the requested features, in request order."""
        return [self.columns[ref] for ref in self.refs]

    @property
    def model_columns(self) -> list[str]:
        """A model's input columns: the feature columns, then the request inputs."""
        return [*self.feature_columns, *(c for c in self.request_inputs if c not in self.columns)]

    def inputs(self, target: str | None = None) -> tuple[pd.DataFrame, pd.Series | None]:
        """The model's inputs ``X`` (:attr:`model_columns`, in order) and ``target`` ``y``.

        Integer feature columns come as float64: a served feature may be missing (an
        unknown entity, an expired row), so the model's signature must admit NaN there.
        """
        y = None if target is None else self.frame[target]
        x = self.frame[self.model_columns].copy()
        for column in self.feature_columns:
            if x[column].dtype.kind in "iu" or str(x[column].dtype) in _NULLABLE_INTS:
                x[column] = x[column].astype("float64")
        return x, y

    @classmethod
    def recorded(cls, lineage: dict[str, Any], snapshot: Snapshot) -> TrainingSet:
        """The training set a run recorded (its tag's ``lineage`` and stored snapshot),
        rows exactly as trained on: what ``shipyard reproduce`` hands the train function."""
        return cls(
            frame=snapshot.frame(),
            snapshot=snapshot,
            refs=tuple(lineage["features"]),
            columns=dict(lineage["columns"]),
            views=dict(lineage["views"]),
            entity_keys=tuple(lineage["entity_keys"]),
            request_inputs=tuple(lineage.get("request_inputs", ())),
            entities_digest=str(lineage["entities_digest"]),
            mode=str(lineage["mode"]),
            timestamp_column=str(lineage.get("timestamp_column", "event_timestamp")),
        )

    def lineage(self) -> dict[str, Any]:
        """What the ``shipyard.features`` tag records (serving reads it)."""
        return {
            "features": list(self.refs),
            "columns": dict(self.columns),
            "views": dict(self.views),
            "entity_keys": list(self.entity_keys),
            "request_inputs": list(self.request_inputs),
            "entities_digest": self.entities_digest,
            "mode": self.mode,
            "timestamp_column": self.timestamp_column,
            "snapshot": self.snapshot.digest,
        }

    def tag_value(self) -> str:
        """:meth:`lineage` as the compact JSON text of the tag."""
        return json.dumps(self.lineage(), sort_keys=True, separators=(",", ":"))

    def null_counts(self) -> dict[str, int]:
        """Missing values per feature column."""
        return {c: int(self.frame[c].isna().sum()) for c in self.feature_columns}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the frame itself is not part of it)."""
        return {
            **self.lineage(),
            "rows": len(self.frame),
            "output_columns": [str(c) for c in self.frame.columns],
            "null_counts": self.null_counts(),
            "snapshot": self.snapshot.to_dict(),
        }


@dataclass(frozen=True)
class _Plan:
    """What to join and compute, worked out before touching any data."""

    refs: tuple[FeatureRef, ...]
    columns: dict[str, str]
    joins: dict[str, list[tuple[str, str]]]  # view → (feature, output column)
    joined: dict[str, str]  # ref → the joined column holding it
    on_demand: tuple[OnDemandView, ...]
    entity_keys: tuple[str, ...]
    request_inputs: tuple[str, ...]


def _plan(repo: FeatureRepo, refs: tuple[FeatureRef, ...], full_names: bool) -> _Plan:
    names = output_names([(r.view, r.feature) for r in refs], full_names=full_names)
    columns = {str(ref): name for ref, name in zip(refs, names, strict=True)}
    joins: dict[str, list[tuple[str, str]]] = {}
    on_demand: list[OnDemandView] = []
    request_inputs: list[str] = []

    joined: dict[str, str] = {}

    def add(view: str, feature: str, out: str) -> None:
        ref = f"{view}:{feature}"
        if ref not in joined:
            joins.setdefault(view, []).append((feature, out))
            joined[ref] = out

    for ref, name in zip(refs, names, strict=True):
        view = repo.view(ref.view)
        if isinstance(view, FeatureView):
            add(view.name, ref.feature, name)
        elif view not in on_demand:
            on_demand.append(view)
    for odv in on_demand:
        for source in repo.resolve(list(odv.sources)) if odv.sources else ():
            add(source.view, source.feature, f"{_HIDDEN}{source.view}__{source.feature}")
        request_inputs.extend(f.name for f in odv.request_inputs if f.name not in request_inputs)
    keys: list[str] = []
    for name in joins:
        keys.extend(k for k in repo.join_keys(name) if k not in keys)
    return _Plan(refs, columns, joins, joined, tuple(on_demand), tuple(keys), tuple(request_inputs))


def _entity_frame(entities: pd.DataFrame | str | Path, root: Path) -> pd.DataFrame:
    import pandas as pd

    if isinstance(entities, pd.DataFrame):
        return entities.reset_index(drop=True)
    from shipyard.data import read_frame

    path = Path(entities)
    path = path if path.is_absolute() else root / path
    if not path.exists():
        raise DataError(
            f"The entity file {path} does not exist.",
            hint="Give a CSV or Parquet file of entity keys and timestamps.",
        )
    return read_frame(path)


def _checked_entities(frame: pd.DataFrame, plan: _Plan, timestamp_column: str) -> pd.DataFrame:
    """A copy with the timestamp as UTC datetimes; a DataError naming a missing column."""
    import pandas as pd

    present = [str(c) for c in frame.columns]
    for column, role in [
        *((k, "join key") for k in plan.entity_keys),
        (timestamp_column, "entity timestamp"),
        *((c, "request input of an on-demand feature") for c in plan.request_inputs),
    ]:
        if column not in present:
            raise DataError(
                f"The entity rows have no column {column!r} ({role}).",
                hint=f"Their columns: {', '.join(present) or 'none'}. Add it"
                + (" or pass --timestamp-column." if role == "entity timestamp" else "."),
            )
    taken = sorted(set(present) & set(plan.columns.values()))
    if taken or ROW_COLUMN in present:
        raise ConfigError(
            f"The entity rows already have a column {(taken or [ROW_COLUMN])[0]!r}, "
            "the name of a requested feature.",
            hint="Rename that column, or ask for full names (view__feature).",
        )
    out = frame.copy()
    stamps = out[timestamp_column]
    try:
        out[timestamp_column] = pd.to_datetime(stamps, utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"Column {timestamp_column!r} of the entity rows is not a timestamp: {exc}",
            hint="Use ISO timestamps (2024-01-01T00:30:00Z) or datetimes.",
        ) from None
    if out[timestamp_column].isna().any():
        row = int(out[timestamp_column].isna().to_numpy().argmax())
        raise DataError(
            f"Row {row} of the entity rows has no {timestamp_column!r}.",
            hint="Every entity row needs the time its features are wanted at.",
        )
    return out


def _versions(project: Project, repo: FeatureRepo, names: list[str]) -> dict[str, str]:
    """The applied version of each view; an error when the files define another one."""
    from shipyard.store.feature_views import current_views

    applied = current_views(project.store)
    versions: dict[str, str] = {}
    for name in names:
        defined = repo.view(name).version
        stored = applied.get(name)
        if stored is None:
            raise ConfigError(
                f"Feature view {name!r} has not been applied.",
                hint="Run `shipyard features apply` first.",
            )
        if stored.version != defined:
            raise ConfigError(
                f"Feature view {name!r} in the files (version {defined}) differs from the "
                f"applied one (version {stored.version}).",
                hint="Run `shipyard features apply` (see `shipyard features diff "
                f"{name}`), then build the training set again.",
            )
        versions[name] = defined
    return versions


def _runs(con: duckdb.DuckDBPyConnection, project: Project, versions: dict[str, str]) -> str:
    """Register the finished materialisation runs of each view's joined version.

    The online store keys rows by view version: after an apply, the runs of an older
    version served nothing of this one, so ``as_served`` replays only this version's.
    """
    import pandas as pd

    from shipyard.store.feature_views import materializations

    rows = [
        {
            "view": run.view,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "start_ts": run.start_ts,
            "end_ts": run.end_ts,
        }
        for view, version in versions.items()
        for run in materializations(project.store, view)
        if run.version == version
    ]
    frame = pd.DataFrame(rows, columns=["view", "started_at", "finished_at", "start_ts", "end_ts"])
    for column in ("started_at", "finished_at", "start_ts", "end_ts"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    frame["view"] = frame["view"].astype(str)
    con.register("shipyard_runs", frame)
    return "shipyard_runs"


def _column(frame: pd.DataFrame, name: str) -> Any:
    """A column as NumPy: numbers (and booleans) as float64 with NaN for missing, as the
    server passes them; anything else as objects."""
    import numpy as np

    series = frame[name]
    if series.dtype.kind in "biuf" or str(series.dtype) in _NULLABLE_INTS | {"boolean"}:
        return series.to_numpy(dtype="float64", na_value=np.nan)
    return series.to_numpy(dtype=object)


def _compute_on_demand(frame: pd.DataFrame, plan: _Plan) -> None:
    """Run each on-demand view once over the whole frame, in place."""
    import numpy as np

    for odv in plan.on_demand:
        inputs: dict[str, Any] = {}
        for source in parse_refs(list(odv.sources)) if odv.sources else ():
            inputs[source.feature] = inputs[str(source)] = _column(frame, plan.joined[str(source)])
        for request in odv.request_inputs:
            inputs[request.name] = frame[request.name].to_numpy()
        try:
            computed = odv.compute(inputs)
        except ConfigError:
            raise
        except Exception as exc:  # the user's function: say which one, not a traceback
            raise ConfigError(
                f"On-demand view {odv.name!r} failed: {type(exc).__name__}: {exc}",
                hint="Fix its function; it gets one NumPy array per source feature "
                "(by name and by view:feature) and per request input.",
            ) from None
        for name, values in computed.items():
            ref = f"{odv.name}:{name}"
            array = np.asarray(values)
            if array.shape != (len(frame),):
                raise ConfigError(
                    f"On-demand view {odv.name!r} returned {name!r} with shape "
                    f"{array.shape}, not ({len(frame)},).",
                    hint="Return one value per input row.",
                )
            if ref in plan.columns:
                frame[plan.columns[ref]] = array


@dataclass(frozen=True)
class HistoricalFeatures:
    """A point-in-time join's result before it is snapshotted (see :func:`training_set`)."""

    frame: pd.DataFrame
    refs: tuple[str, ...]
    columns: dict[str, str]
    views: dict[str, str]
    entity_keys: tuple[str, ...]
    request_inputs: tuple[str, ...]
    entities_digest: str
    mode: str
    timestamp_column: str


def historical_features(
    project: Project,
    entities: pd.DataFrame | str | Path,
    features: str | list[str] | tuple[str, ...],
    *,
    mode: PitMode = "event_time",
    timestamp_column: str = "event_timestamp",
    full_names: bool = False,
) -> HistoricalFeatures:
    """The features each entity row had at its timestamp (in entity order), not stored.

    The join of :func:`training_set` without the snapshot: for checks that recompute
    features (skew) rather than train on them. Needs ``models:read``.
    """
    from shipyard.access import Scope

    project.authorize(Scope.MODELS_READ)
    return _join(project, entities, features, mode, timestamp_column, full_names)


def _join(
    project: Project,
    entities: pd.DataFrame | str | Path,
    features: str | list[str] | tuple[str, ...],
    mode: PitMode,
    timestamp_column: str,
    full_names: bool,
) -> HistoricalFeatures:
    from shipyard.data import dataset_digest
    from shipyard.features.pit import point_in_time_join
    from shipyard.features.registry import schema_drift
    from shipyard.features.repo import load_repo
    from shipyard.features.sources import connect, source_relation

    if mode not in MODES:
        raise ConfigError(f"Unknown mode {mode!r}.", hint=f"Use one of {', '.join(MODES)}.")
    repo = load_repo(project.config)
    refs = repo.resolve(features)  # an unknown feature fails here, before anything is read
    plan = _plan(repo, refs, full_names)
    raw = _entity_frame(entities, project.config.root)
    frame = _checked_entities(raw, plan, timestamp_column)
    used = [*plan.joins, *(odv.name for odv in plan.on_demand)]
    versions = _versions(project, repo, used)
    for name in plan.joins:
        schema_drift(project, name, repo)

    con = connect()
    try:
        joins = []
        for name, pairs in plan.joins.items():
            view = repo.views[name]
            relation = source_relation(
                con, view, project.config.root, project_db_url=_postgres_url(project)
            )
            joins.append(
                ViewJoin(
                    name,
                    relation,
                    repo.join_keys(view),
                    tuple(pairs),
                    view.timestamp_field,
                    view.created_timestamp_column,
                    view.ttl,
                )
            )
        con.register("shipyard_entities", frame.assign(**{ROW_COLUMN: range(len(frame))}))
        joined_versions = {name: versions[name] for name in plan.joins}
        runs = _runs(con, project, joined_versions) if mode == "as_served" else None
        joined = point_in_time_join(
            con,
            "shipyard_entities",
            joins,
            timestamp_column=timestamp_column,
            mode=mode,
            runs=runs,
            row_column=ROW_COLUMN,
        )
    finally:
        con.close()
    _compute_on_demand(joined, plan)
    ordered = [*frame.columns, *(plan.columns[str(ref)] for ref in refs)]
    return HistoricalFeatures(
        frame=joined[ordered],
        refs=tuple(str(ref) for ref in refs),
        columns=plan.columns,
        views=versions,
        entity_keys=plan.entity_keys,
        request_inputs=plan.request_inputs,
        entities_digest=dataset_digest(raw),
        mode=mode,
        timestamp_column=timestamp_column,
    )


def training_set(
    project: Project,
    entities: pd.DataFrame | str | Path,
    features: str | list[str] | tuple[str, ...],
    *,
    mode: PitMode = "event_time",
    timestamp_column: str = "event_timestamp",
    full_names: bool = False,
) -> TrainingSet:
    """The features each entity row had at its timestamp, snapshotted, with lineage.

    ``entities``: a DataFrame or a CSV/Parquet path (relative: the project's) with the
    join keys, the timestamp column and any request inputs (other columns, e.g. a
    label, are carried through).
    ``features``: ``view:feature`` refs (``view:*`` for all). ``mode``: ``event_time``,
    ``as_known_at`` or ``as_served`` (see :mod:`~shipyard.features.pit`).

    An unknown view or feature, a missing entity column, a view not applied (or changed
    since) and a source whose schema changed fail before any join runs. Needs
    ``models:train``. The result is snapshotted and recorded like any dataset.
    """
    from shipyard.access import Scope
    from shipyard.data import record_snapshot, snapshot_frame
    from shipyard.storage import artifact_location

    project.authorize(Scope.MODELS_TRAIN)
    found = _join(project, entities, features, mode, timestamp_column, full_names)
    source = (
        f"training set ({mode}) of {', '.join(found.refs)} "
        f"for entities {found.entities_digest[:12]}"
    )
    snap = snapshot_frame(found.frame, artifact_location(project.config), source=source)
    record_snapshot(project.store, snap)
    return TrainingSet(
        frame=snap.frame(),  # the stored copy: what a reproduction reads back
        snapshot=snap,
        refs=found.refs,
        columns=found.columns,
        views=found.views,
        entity_keys=found.entity_keys,
        request_inputs=found.request_inputs,
        entities_digest=found.entities_digest,
        mode=found.mode,
        timestamp_column=found.timestamp_column,
    )


def _postgres_url(project: Project) -> str | None:
    url = project.config.database_url
    return url if url and url.startswith("postgresql") else None
