"""Served features: a model that declares feature views gets them looked up per request.

A version registered with the MLflow tag ``shipyard.features`` (``registry.tags.FEATURES``,
written by training) is served from entity keys: the client sends the keys (and any
request-time inputs), the validate step reads *those* (:attr:`FeaturePlan.request_spec`:
a missing key is a 400 naming it, in every protocol), and the enrich step reads every
view's rows from the online store (one ``read`` per view per request, all the request's
rows at once), applies the view's ttl against now (an expired row is missing), its missing policy
(``null``: NaN/None, ``default``: the view's defaults, ``reject``: 404 naming the
entity), runs the on-demand views on the looked-up values and request inputs, and
assembles the model's matrix in its column order.

What was served is logged beside the model's inputs (:class:`ServedFeatures`): the
entity keys that are not model columns, and ``feature_ts__<view>``, the event time of
the served row in epoch seconds (NaN when missing, expired or defaulted).

A version without the tag keeps its plain :class:`~shipyard.models.signature.InputSpec`
and the steps here pass it straight through: one type check per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson

from shipyard.errors import ConfigError, NotFoundError
from shipyard.models.signature import InputSpec
from shipyard.serving.request import ServedFeatures

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shipyard.config import Config
    from shipyard.features.definitions import FeatureView, OnDemandView
    from shipyard.features.repo import FeatureRepo
    from shipyard.models.served import ServedModel
    from shipyard.serving.metrics import ServerMetrics
    from shipyard.serving.request import Request

__all__ = [
    "TS_PREFIX",
    "FeatureAttacher",
    "FeatureCheck",
    "FeatureLookup",
    "FeaturePlan",
    "FeatureSpec",
    "feature_plan",
    "pii_columns",
    "sent_spec",
]

TS_PREFIX = "feature_ts__"
"""Logged column ``feature_ts__<view>``: the served row's event time, epoch seconds."""


SourceTypes = Callable[["FeatureView"], dict[str, str]]  # a source's column → DuckDB type


class OnlineReader(Protocol):
    """What serving needs of an online store (:mod:`shipyard.features.online`)."""

    def read(self, view: FeatureView, keys: Sequence[tuple[Any, ...]]) -> list[Any]: ...


@dataclass(frozen=True, eq=False)
class ViewLookup:
    """One plain view of a plan: where its keys are in the request, where its values go."""

    view: FeatureView
    key_index: tuple[int, ...]  # the join keys' columns in the request spec
    key_names: tuple[str, ...]
    outputs: tuple[tuple[int, int], ...]  # (index in view.feature_names, model column)
    names: tuple[tuple[int, str, bool], ...]  # (index, view:feature, numeric) ODVs read
    ttl: float | None
    defaults: tuple[Any, ...]  # per feature, for missing: default
    needs_values: bool = False  # missing: null, but the model refuses NaN in a column


@dataclass(frozen=True, eq=False)
class OnDemandStep:
    """One on-demand view of a plan and the model columns its outputs fill."""

    view: OnDemandView
    outputs: tuple[tuple[str, int], ...]  # (output name, model column)
    sources: tuple[tuple[str, str], ...]  # (view:feature, feature) it reads
    requests: tuple[tuple[str, int], ...]  # (request input, request column) it reads


@dataclass(frozen=True, eq=False)
class FeaturePlan:
    """How one model version's inputs are made from a request: keys in, features looked up.

    Compared by identity: each loaded version has its own plan, so a challenger reading
    other view versions is enriched on its own (the pipeline re-runs per spec).
    """

    model: str
    version: str
    request_spec: InputSpec
    passthrough: tuple[tuple[int, int], ...]  # (request column, model column)
    lookups: tuple[ViewLookup, ...]
    on_demand: tuple[OnDemandStep, ...]
    extra_columns: tuple[str, ...]  # logged after the model's columns
    extra_keys: tuple[int, ...]  # request columns logged (keys, on-demand request inputs)
    store: OnlineReader


@dataclass(frozen=True)
class FeatureSpec(InputSpec):
    """A model's input spec whose feature columns are looked up, not sent."""

    plan: FeaturePlan | None = field(default=None, compare=True)


def sent_spec(spec: InputSpec) -> InputSpec:
    """What a client sends for a model reading ``spec``: its keys and request inputs, or
    ``spec`` itself for a model served as sent."""
    if type(spec) is FeatureSpec and spec.plan is not None:
        return spec.plan.request_spec
    return spec


class FeatureCheck:
    """Validate: the request against its model's spec, or its plan's request spec."""

    def validate(self, request: Request, spec: InputSpec) -> np.ndarray:
        """The matrix the protocol reads (entity keys and request inputs for a feature model)."""
        if type(spec) is FeatureSpec and spec.plan is not None:
            return request.protocol.read(request, spec.plan.request_spec)
        return request.protocol.read(request, spec)


class FeatureLookup:
    """Enrich: the model's matrix from the request's keys and the online store's rows."""

    def __init__(self, metrics: ServerMetrics | None = None) -> None:
        self.metrics = metrics

    def enrich(self, request: Request, spec: InputSpec, inputs: np.ndarray) -> np.ndarray:
        """``inputs`` as sent for a plain model; else the features looked up and assembled."""
        if type(spec) is not FeatureSpec or spec.plan is None:
            return inputs
        plan = spec.plan
        rows = len(inputs)
        out = np.empty((rows, len(spec.columns)), dtype=spec.matrix_dtype)
        named: dict[str, np.ndarray] = {}  # view:feature → values, for on-demand views
        for request_index, model_index in plan.passthrough:
            out[:, model_index] = inputs[:, request_index]
        times = [self._lookup(plan, lookup, inputs, out, named) for lookup in plan.lookups]
        for step in plan.on_demand:
            # As offline (features.training_set): sources by feature name and by ref, as
            # float64 with NaN for missing; request inputs by name.
            columns: dict[str, Any] = {}
            for ref, feature in step.sources:
                columns[feature] = columns[ref] = named[ref]
            for name, index in step.requests:
                columns[name] = inputs[:, index]
            computed = step.view.compute(columns)
            for name, model_index in step.outputs:
                out[:, model_index] = np.asarray(computed[name])
        extra = [inputs[:, index] for index in plan.extra_keys] + times
        if extra:
            dtype = out.dtype if all(e.dtype.kind in "fiub" for e in extra) else np.dtype(object)
            logged = np.empty((rows, len(extra)), dtype=dtype)
            for index, values in enumerate(extra):
                logged[:, index] = values
            request.features = ServedFeatures(spec, plan.extra_columns, logged)
        return out

    def _lookup(
        self,
        plan: FeaturePlan,
        lookup: ViewLookup,
        inputs: np.ndarray,
        out: np.ndarray,
        named: dict[str, Any],
    ) -> np.ndarray:
        """Fill ``lookup``'s columns of ``out``; the served rows' event times (NaN if none)."""
        view = lookup.view
        dtypes = plan.request_spec.dtypes
        columns = [inputs[:, i].astype(dtypes[i]).tolist() for i in lookup.key_index]
        keys = list(zip(*columns, strict=True))
        started = time.perf_counter()
        found = plan.store.read(view, keys)
        seconds = time.perf_counter() - started
        now = time.time()
        ttl = lookup.ttl
        width = len(view.features)
        values: list[list[Any]] = [[None] * len(keys) for _ in range(width)]
        times = np.full(len(keys), math.nan)
        counts = {"hit": 0, "unknown": 0, "expired": 0}
        rejected: int | None = None
        for row, entry in enumerate(found):
            if entry is None:
                counts["unknown"] += 1
            elif ttl is not None and now - entry.event_ts > ttl:
                counts["expired"] += 1
            else:
                counts["hit"] += 1
                times[row] = entry.event_ts
                for index, value in enumerate(entry.values):
                    values[index][row] = value
                continue
            if view.missing == "default":
                for index in range(width):
                    values[index][row] = lookup.defaults[index]
            elif rejected is None and (view.missing == "reject" or lookup.needs_values):
                rejected = row
        if self.metrics is not None:
            self.metrics.observe_lookup(plan.model, view.name, seconds, counts)
        if rejected is not None:
            key = ", ".join(
                f"{name}={value!r}"
                for name, value in zip(lookup.key_names, keys[rejected], strict=True)
            )
            if view.missing == "reject":
                why = "the view's missing policy is reject"
            else:  # null, for a model that refuses missing values
                why = (
                    f"{plan.model}/{plan.version} cannot take missing values; give the view "
                    "missing: default with defaults"
                )
            raise NotFoundError(
                f"Feature view {view.name!r} has no current row for {key} (row {rejected}).",
                hint="Materialise the view (`shipyard features materialize`), or send a known "
                f"entity; {why}.",
            )
        for index, model_index in lookup.outputs:
            out[:, model_index] = _column(values[index], out.dtype)
        for index, ref, numeric in lookup.names:  # numbers and booleans as float64, as offline
            named[ref] = _column(values[index], np.dtype(np.float64 if numeric else object))
        return times


def _column(values: list[Any], dtype: np.dtype[Any]) -> np.ndarray:
    """Looked-up values as one column: None is NaN in a numeric matrix."""
    if dtype.kind == "f":
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def feature_plan(
    served: ServedModel,
    tag: str | dict[str, Any],
    repo: FeatureRepo,
    store: OnlineReader,
    source_types: SourceTypes | None = None,
) -> FeaturePlan:
    """The plan for ``served`` from its ``shipyard.features`` tag; a ConfigError if unfit.

    An entity key's type is the tag's (``entity_key_types``), else the model's when it is
    a model column, else its type in a view's source (``source_types``), else text.
    """
    from shipyard.features.definitions import FeatureRef, FeatureView, parse_refs

    declared = orjson.loads(tag) if isinstance(tag, str) else dict(tag)
    spec = served.spec
    where = f"{served.name}/{served.version}"
    refs = list(repo.resolve(declared.get("features") or []))
    columns: dict[str, str] = dict(declared.get("columns") or {})
    target = {str(ref): columns.get(str(ref), ref.feature) for ref in refs}
    for text, column in target.items():
        if column not in spec.column_set:
            raise ConfigError(
                f"{where} reads feature {text} into column {column!r}, which its signature lacks.",
                hint="Retrain the model: its signature and its features tag disagree.",
            )
    views: list[FeatureView] = []
    on_demand: list[OnDemandView] = []
    for ref in refs:
        view = repo.view(ref.view)
        if isinstance(view, FeatureView):
            if view not in views:
                views.append(view)
        elif view not in on_demand:
            on_demand.append(view)
    read: set[FeatureRef] = set()  # what the on-demand views read, looked up too
    for odv in on_demand:
        for source in parse_refs(list(odv.sources)) if odv.sources else ():
            read.add(source)
            found = repo.view(source.view)
            if isinstance(found, FeatureView) and found not in views:
                views.append(found)
    _check_versions(where, declared.get("views") or {}, [*views, *on_demand])
    keys: list[str] = list(declared.get("entity_keys") or [])
    for view in views:
        keys.extend(k for k in repo.join_keys(view) if k not in keys)
    feature_columns = set(target.values())
    request = [(k, _key_dtype(k, spec, views, declared, repo, source_types)) for k in keys]
    request += [
        (name, dtype)
        for name, dtype in zip(spec.columns, spec.dtypes, strict=True)
        if name not in feature_columns and name not in keys
    ]
    for odv in on_demand:
        for feature in odv.request_inputs:
            if feature.name not in {name for name, _ in request}:
                request.append((feature.name, _dtype(feature.dtype)))
    request_spec = InputSpec(
        tuple(name for name, _ in request),
        tuple(dtype for _, dtype in request),
        tuple(dtype.kind == "f" for _, dtype in request),
    )
    position = {name: i for i, name in enumerate(request_spec.columns)}
    model_index = {name: i for i, name in enumerate(spec.columns)}
    lookups = []
    for view in views:
        join = repo.join_keys(view)
        names = view.feature_names
        lookups.append(
            ViewLookup(
                view=view,
                key_index=tuple(position[k] for k in join),
                key_names=join,
                outputs=tuple(
                    (names.index(ref.feature), model_index[target[str(ref)]])
                    for ref in refs
                    if ref.view == view.name
                ),
                names=tuple(
                    (
                        names.index(ref.feature),
                        str(ref),
                        view.feature(ref.feature).dtype != "string",
                    )
                    for ref in sorted(read)
                    if ref.view == view.name
                ),
                ttl=None if view.ttl is None else view.ttl.total_seconds(),
                defaults=tuple(view.defaults.get(name) for name in names),
                needs_values=view.missing == "null"
                and any(
                    spec.dtypes[model_index[target[str(ref)]]].kind == "f"
                    and not spec.allow_nan[model_index[target[str(ref)]]]
                    for ref in refs
                    if ref.view == view.name
                ),
            )
        )
    steps = tuple(
        OnDemandStep(
            odv,
            tuple(
                (ref.feature, model_index[target[str(ref)]]) for ref in refs if ref.view == odv.name
            ),
            tuple(
                (str(ref), ref.feature)
                for ref in (parse_refs(list(odv.sources)) if odv.sources else ())
            ),
            tuple((item.name, position[item.name]) for item in odv.request_inputs),
        )
        for odv in on_demand
    )
    # What the request carried that the model does not read: entity keys, and request
    # inputs only on-demand views read (the skew check recomputes those from the log).
    logged_keys = tuple(name for name in request_spec.columns if name not in model_index)
    return FeaturePlan(
        model=served.name,
        version=served.version,
        request_spec=request_spec,
        passthrough=tuple(
            (position[name], model_index[name])
            for name in request_spec.columns
            if name in model_index
        ),
        lookups=tuple(lookups),
        on_demand=steps,
        extra_columns=(*logged_keys, *(TS_PREFIX + v.name for v in views)),
        extra_keys=tuple(position[k] for k in logged_keys),
        store=store,
    )


def _check_versions(where: str, declared: dict[str, str], views: Sequence[Any]) -> None:
    """Refuse to serve a version trained on view versions other than those defined now."""
    for view in views:
        wanted = declared.get(view.name)
        if wanted is not None and wanted != view.version:
            raise ConfigError(
                f"{where} was trained on feature view {view.name!r} version {wanted}, "
                f"but the definitions give version {view.version}.",
                hint="Serve a version trained on the current definitions, or restore the "
                "view's definition and run `shipyard features apply`.",
            )


_DTYPES = {"string": "object", "bool": "bool"}


def _dtype(name: str) -> np.dtype[Any]:
    return np.dtype(_DTYPES.get(name, name))


def _key_dtype(
    key: str,
    spec: InputSpec,
    views: Sequence[FeatureView],
    declared: dict[str, Any],
    repo: FeatureRepo,
    source_types: SourceTypes | None,
) -> np.dtype[Any]:
    """An entity key's type: as the tag or the model says, else from a view's source."""
    given = (declared.get("entity_key_types") or {}).get(key)
    if given is not None:
        return _dtype(str(given))
    if key in spec.column_set:
        return spec.dtypes[spec.columns.index(key)]
    if source_types is not None:
        for view in views:
            if key in repo.join_keys(view):
                found = _source_type(source_types(view), key)
                if found is not None:
                    return found
    return np.dtype(object)


def _source_type(types: dict[str, str], column: str) -> np.dtype[Any] | None:
    """``column``'s NumPy type from a source's DuckDB types, or None when absent."""
    kind = types.get(column)
    if kind is None:
        return None
    kind = kind.upper()
    if "INT" in kind:
        return np.dtype(np.int64)
    if kind in ("DOUBLE", "FLOAT", "REAL") or kind.startswith("DECIMAL"):
        return np.dtype(np.float64)
    return np.dtype(object)


def pii_columns(plan: FeaturePlan, spec: InputSpec) -> dict[str, str]:
    """Model columns filled with a PII-tagged feature, tagged ``pii`` for the log's mask."""
    tagged: dict[str, str] = {}
    for lookup in plan.lookups:
        pii = set(lookup.view.pii_features)
        for index, model_index in lookup.outputs:
            if lookup.view.feature_names[index] in pii:
                tagged[spec.columns[model_index]] = "pii"
    for step in plan.on_demand:
        pii = set(step.view.pii_features)
        for name, model_index in step.outputs:
            if name in pii:
                tagged[spec.columns[model_index]] = "pii"
    return tagged


class FeatureAttacher:
    """Turns a loaded version with the features tag into one served from entity keys.

    The definitions are read and the online store opened on the first such version, so
    a server of plain models never touches either.
    """

    def __init__(self, config: Config, store: OnlineReader | None = None) -> None:
        self.config = config
        self._store = store
        self._repo: FeatureRepo | None = None

    @property
    def store(self) -> OnlineReader:
        """The online store, opened on first use."""
        if self._store is None:
            from shipyard.features.online import open_online_store

            self._store = open_online_store(self.config)
        return self._store

    @property
    def repo(self) -> FeatureRepo:
        """The project's feature definitions, read on first use."""
        if self._repo is None:
            from shipyard.features.repo import load_repo

            self._repo = load_repo(self.config)
        return self._repo

    def attach(self, client: MlflowClient, served: ServedModel) -> ServedModel:
        """``served``, with a :class:`FeatureSpec` when its version has the features tag."""
        from shipyard.registry.tags import FEATURES  # the registry (MLflow) only when loading

        tag = (client.get_model_version(served.name, served.version).tags or {}).get(FEATURES)
        if not tag:
            return served
        return self.with_plan(served, tag)

    def _source_types(self, view: FeatureView) -> dict[str, str]:
        from shipyard.features.sources import source_schema

        try:
            return source_schema(view, self.config.root, self.config.db_url)
        except Exception:  # an unreadable source: its keys are read as sent, as text
            return {}

    def with_plan(self, served: ServedModel, tag: str | dict[str, Any]) -> ServedModel:
        """``served`` reading the features ``tag`` declares."""
        plan = feature_plan(served, tag, self.repo, self.store, self._source_types)
        base = served.spec
        spec = FeatureSpec(base.columns, base.dtypes, base.allow_nan, base.max_abs, plan)
        return replace(served, spec=spec)
