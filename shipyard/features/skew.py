"""Training-serving skew that the prediction log can prove: value skew and freshness.

**Value skew.** For a sample of logged live requests of a model version, the features are
recomputed offline *as served* (what the online store should have returned at the
request time, given the recorded materialisation runs) and compared with the values the
server logged. Per feature: how many values were compared, how many differ, and up to
five examples (entity key, request time, served, expected). Numbers are equal within a
relative ``features.skew.tolerance`` (NaN equals NaN); strings and booleans exactly.

A value served as missing is compared too: offline null against a served null is a
match; offline null against the view's default, when the view's ``missing`` policy is
``default``, is a match (the policy explains it); anything else is a mismatch (the
online store lost a row, or served one the offline source does not have).

**Freshness.** Each served row logs its view's event time (``feature_ts__<view>``); its
age at the request time against the view's ``freshness_sla`` gives the share of stale
values and the p50/p95 age. Rows served as missing have no age and are counted apart.

Both turn into a :data:`~shipyard.levels.Level` through their bands
(``mismatch_bands``, ``stale_bands``). Distribution skew is the monitor's (it reuses the
per-feature drift of the served columns, :mod:`shipyard.monitoring.feature_skew`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import ConfigError, DataError
from shipyard.jsonable import Record
from shipyard.levels import Level, worst
from shipyard.registry.tags import FEATURES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.config import Config
    from shipyard.config.features import SkewSettings
    from shipyard.features.repo import FeatureRepo
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "FEATURES_TAG",
    "TS_PREFIX",
    "FeatureUse",
    "FeatureValueSkew",
    "Freshness",
    "Mismatch",
    "ServedRows",
    "SkewCheck",
    "ValueSkew",
    "ViewFreshness",
    "band_level",
    "check_skew",
    "freshness_of",
    "mismatches",
    "read_served_rows",
    "recompute_as_served",
    "value_skew_of",
]

FEATURES_TAG = FEATURES
"""The model version tag that lists the features a model was trained on (training writes it)."""

TS_PREFIX = "feature_ts__"
"""Logged input field holding a view's served event time (epoch seconds; NaN if none)."""

EXAMPLES = 5
MIN_VALUES = 10
"""Fewest compared (or aged) values before a rate is judged: fewer give ``unknown``."""

Recompute = Callable[["pd.DataFrame"], "pd.DataFrame"]
"""Entity frame (join keys, ``event_timestamp``, request inputs) → features as served,
one row per entity row in order, one column per model input column."""


def band_level(score: float | None, bands: Sequence[float]) -> Level:
    """The level ``score`` reaches in ``(inspect, retrain, pause)``; unknown without a score."""
    if score is None or not math.isfinite(score):
        return "unknown"
    inspect, retrain, pause = bands
    if score >= pause:
        return "pause"
    if score >= retrain:
        return "retrain"
    if score >= inspect:
        return "inspect"
    return "ok"


@dataclass(frozen=True)
class FeatureUse:
    """What a model version was trained on, from its ``shipyard.features`` tag."""

    features: tuple[str, ...]  # view:feature refs
    columns: Mapping[str, str]  # ref → model input column
    views: Mapping[str, str]  # view → version digest
    entity_keys: tuple[str, ...]
    request_inputs: tuple[str, ...] = ()
    mode: str = "event_time"

    @classmethod
    def from_tags(cls, tags: Mapping[str, str] | None) -> FeatureUse | None:
        """The use the tags record; None for a model that uses no features."""
        raw = (tags or {}).get(FEATURES_TAG)
        if not raw:
            return None
        try:
            data = orjson.loads(raw)
            features = tuple(str(ref) for ref in data["features"])
            columns = {
                ref: str(data.get("columns", {}).get(ref, ref.split(":", 1)[1])) for ref in features
            }
            return cls(
                features=features,
                columns=columns,
                views={str(k): str(v) for k, v in (data.get("views") or {}).items()},
                entity_keys=tuple(data.get("entity_keys") or ()),
                request_inputs=tuple(data.get("request_inputs") or ()),
                mode=str(data.get("mode") or "event_time"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(
                f"The model version's {FEATURES_TAG} tag is not readable: {exc}",
                hint="Retrain the model with ctx.training_set(...) so training writes it again.",
            ) from None

    def view_names(self) -> tuple[str, ...]:
        """The views its features come from, in first-use order."""
        return tuple(dict.fromkeys(ref.split(":", 1)[0] for ref in self.features))


@dataclass(frozen=True)
class ServedRows:
    """Logged live predictions: the inputs as served (model columns, entity keys,
    ``feature_ts__<view>``), the request time and id of each row."""

    inputs: pd.DataFrame
    times: pd.Series  # datetime64[us, UTC]
    request_ids: np.ndarray

    @property
    def rows(self) -> int:
        """Rows held."""
        return len(self.request_ids)

    def sample(self, limit: int, seed: int = 0) -> ServedRows:
        """At most ``limit`` rows, drawn at random (fixed seed), in their logged order."""
        import numpy as np

        if self.rows <= limit:
            return self
        picked = np.sort(np.random.default_rng(seed).choice(self.rows, limit, replace=False))
        return ServedRows(
            self.inputs.iloc[picked].reset_index(drop=True),
            self.times.iloc[picked].reset_index(drop=True),
            self.request_ids[picked],
        )


@dataclass(frozen=True)
class Mismatch(Record):
    """One served value that differs from its offline recomputation."""

    entity: dict[str, Any]
    time: str
    request_id: str
    served: Any
    expected: Any


@dataclass(frozen=True)
class FeatureValueSkew(Record):
    """Value skew of one served feature: share of values that differ from offline."""

    feature: str  # view:feature
    column: str  # the model input column
    compared: int
    mismatched: int
    rate: float | None
    level: Level
    examples: list[Mismatch] = field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True)
class ValueSkew(Record):
    """Value skew of a model version over a sample of its logged requests."""

    sampled: int
    tolerance: float
    bands: tuple[float, float, float]
    features: list[FeatureValueSkew]
    level: Level
    note: str | None = None

    def worst_feature(self) -> FeatureValueSkew | None:
        """The feature with the highest mismatch rate."""
        rated = [f for f in self.features if f.rate is not None]
        return max(rated, key=lambda f: f.rate or 0.0, default=None)

    def describe(self) -> str:
        """One line for people: the level and the worst feature's numbers."""
        top = self.worst_feature()
        if top is None:
            return f"value skew {self.level}: {self.note or 'nothing compared'}"
        return (
            f"value skew {self.level}: {top.feature} differs in {top.mismatched} of "
            f"{top.compared} sampled requests ({top.rate:.1%}; pause band "
            f"{self.bands[2]:.0%})"
        )


@dataclass(frozen=True)
class ViewFreshness(Record):
    """Age of one view's served values at their request times, against its SLA."""

    view: str
    sla_seconds: float | None
    served: int  # rows with a served event time
    missing: int  # rows served as missing/default (no event time)
    stale: int
    stale_share: float | None
    p50_age_seconds: float | None
    p95_age_seconds: float | None
    level: Level
    note: str | None = None


@dataclass(frozen=True)
class Freshness(Record):
    """Freshness of every view a model version reads."""

    rows: int
    bands: tuple[float, float, float]
    views: list[ViewFreshness]
    level: Level


def mismatches(served: pd.Series, expected: pd.Series, tolerance: float) -> np.ndarray:
    """Boolean mask of the rows where ``served`` differs from ``expected``.

    Numbers: equal within relative ``tolerance``; NaN/None on both sides equal; a value
    on one side only differs. Anything else (strings, booleans): exact equality.
    """
    import numpy as np
    import pandas as pd

    served_na = pd.isna(served).to_numpy()
    expected_na = pd.isna(expected).to_numpy()
    s_num = pd.to_numeric(served, errors="coerce")
    e_num = pd.to_numeric(expected, errors="coerce")
    numeric = (pd.isna(s_num).to_numpy() <= served_na) & (pd.isna(e_num).to_numpy() <= expected_na)
    both = ~served_na & ~expected_na
    differ = served_na != expected_na
    if numeric.all() and not _is_text(served) and not _is_text(expected):
        s = s_num.to_numpy(dtype=np.float64)
        e = e_num.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            close = np.abs(s - e) <= tolerance * np.maximum(np.abs(s), np.abs(e))
        return differ | (both & ~close)
    s_text = served.astype(object).to_numpy()
    e_text = expected.astype(object).to_numpy()
    same = np.array([_same(a, b) for a, b in zip(s_text, e_text, strict=True)], dtype=bool)
    return differ | (both & ~same)


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object and any(isinstance(v, str) for v in values.head(50))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return bool(a == b)


def value_skew_of(
    rows: ServedRows,
    expected: pd.DataFrame,
    use: FeatureUse,
    repo: FeatureRepo,
    settings: SkewSettings,
) -> ValueSkew:
    """Compare the served values in ``rows`` with ``expected`` (aligned row by row)."""
    import pandas as pd

    bands = tuple(settings.mismatch_bands)
    results: list[FeatureValueSkew] = []
    for ref in use.features:
        column = use.columns[ref]
        view_name, feature_name = ref.split(":", 1)
        view = repo.view(view_name)
        if column not in rows.inputs.columns or column not in expected.columns:
            where = "the log" if column not in rows.inputs.columns else "the recomputation"
            results.append(_unjudged(ref, column, f"column {column!r} is not in {where}"))
            continue
        if feature_name in view.pii_features:
            results.append(_unjudged(ref, column, "personal data: logged masked, not compared"))
            continue
        want = expected[column].reset_index(drop=True)
        default = getattr(view, "defaults", {}).get(feature_name)
        if getattr(view, "missing", "null") == "default" and default is not None:
            want = want.astype(object).where(pd.notna(want), default)
        got = rows.inputs[column].reset_index(drop=True)
        differ = mismatches(got, want, settings.tolerance)
        count, total = int(differ.sum()), len(differ)
        rate = count / total if total else None
        examples = [
            _example(rows, use, int(i), got.iloc[i], want.iloc[i])
            for i in differ.nonzero()[0][:EXAMPLES]
        ]
        judged_as: Level = band_level(rate, bands)
        why = None
        if total < MIN_VALUES:
            judged_as, why = "unknown", f"only {total} values compared (fewer than {MIN_VALUES})"
        results.append(FeatureValueSkew(ref, column, total, count, rate, judged_as, examples, why))
    judged = [r.level for r in results if r.level != "unknown"]
    level: Level = worst(judged) if judged else "unknown"
    note = None if rows.rows else "no logged requests to compare"
    return ValueSkew(rows.rows, settings.tolerance, bands, results, level, note)  # type: ignore[arg-type]


def _unjudged(ref: str, column: str, note: str) -> FeatureValueSkew:
    return FeatureValueSkew(ref, column, 0, 0, None, "unknown", [], note)


def _example(rows: ServedRows, use: FeatureUse, i: int, served: Any, expected: Any) -> Mismatch:
    entity = {
        key: _plain(rows.inputs[key].iloc[i]) for key in use.entity_keys if key in rows.inputs
    }
    return Mismatch(
        entity,
        rows.times.iloc[i].isoformat(),
        str(rows.request_ids[i]),
        _plain(served),
        _plain(expected),
    )


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: NumPy scalars as Python ones, every kind of missing as None."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def freshness_of(
    rows: ServedRows, use: FeatureUse, repo: FeatureRepo, bands: Sequence[float]
) -> Freshness:
    """Age of each view's served values (request time − ``feature_ts__<view>``) vs its SLA."""
    import numpy as np

    request_ts = _epoch_seconds(rows.times)
    views = []
    for name in use.view_names():
        view = repo.views.get(name)
        if view is None:  # an on-demand view: its inputs' views carry the ages
            continue
        sla = None if view.freshness_sla is None else view.freshness_sla.total_seconds()
        column = f"{TS_PREFIX}{name}"
        if column not in rows.inputs.columns:
            views.append(
                ViewFreshness(
                    name,
                    sla,
                    0,
                    rows.rows,
                    0,
                    None,
                    None,
                    None,
                    "unknown",
                    f"the log has no {column} field",
                )
            )
            continue
        served_ts = rows.inputs[column].to_numpy(dtype=np.float64, na_value=np.nan)
        present = np.isfinite(served_ts)
        ages = (request_ts - served_ts)[present]
        stale = int((ages > sla).sum()) if sla is not None and ages.size else 0
        share = stale / ages.size if sla is not None and ages.size else None
        p50, p95 = (float(v) for v in np.percentile(ages, [50, 95])) if ages.size else (None, None)
        note = None if sla is not None else "no freshness_sla on the view: ages only"
        level: Level = band_level(share, bands) if sla is not None else "ok"
        if sla is not None and ages.size < MIN_VALUES:
            level, note = "unknown", f"only {ages.size} served values with an event time"
        views.append(
            ViewFreshness(
                name,
                sla,
                int(present.sum()),
                int((~present).sum()),
                stale,
                share,
                p50,
                p95,
                level,
                note,
            )
        )
    judged = [v.level for v in views if v.level != "unknown"]
    inspect, retrain, pause = bands
    return Freshness(
        rows.rows, (inspect, retrain, pause), views, worst(judged) if judged else "unknown"
    )


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    """UTC timestamps as float epoch seconds."""
    import numpy as np
    import pandas as pd

    epoch = pd.Timestamp(0, tz="UTC")
    return ((times - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def read_served_rows(
    config: Config,
    model: str,
    version: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
    include_shadow: bool = False,
) -> ServedRows:
    """``model``/``version``'s successful logged predictions in the span (newest ``last``)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from shipyard.logs.reader import query_log, sql_literal
    from shipyard.logs.root import project_log_root

    roles = "('live', 'shadow')" if include_shadow else "('live')"
    filters = ["status = 'ok'", f"role IN {roles}", f"version = {sql_literal(version)}"]
    if until is not None:
        filters.append(f"time < {sql_literal(until.isoformat())}::TIMESTAMPTZ")
    limit = f"LIMIT {int(last)}" if last else ""
    sql = (
        "SELECT request_id, time, inputs FROM log WHERE "
        f"{' AND '.join(filters)} ORDER BY time DESC, request_id DESC {limit}"
    )
    table = query_log(project_log_root(config), model, since=since, sql=sql)
    table = table.take(pa.array(np.arange(table.num_rows)[::-1]))
    column = table.column("inputs").combine_chunks()
    if isinstance(column, pa.StructArray) and column.type.num_fields:
        names = [column.type.field(i).name for i in range(column.type.num_fields)]
        inputs = pd.DataFrame(
            {
                n: f.to_numpy(zero_copy_only=False)
                for n, f in zip(names, column.flatten(), strict=True)
            }
        )
    else:
        inputs = pd.DataFrame(index=range(table.num_rows))
    return ServedRows(
        inputs,
        pd.Series(table.column("time").to_pandas(), dtype="datetime64[us, UTC]"),
        np.asarray(table.column("request_id").to_pylist(), dtype=object),
    )


def recompute_as_served(
    config: Config, store: Store, use: FeatureUse, repo: FeatureRepo, rows: ServedRows
) -> pd.DataFrame:
    """The features of ``rows`` recomputed offline *as served* at each request time.

    One point-in-time join (mode ``as_served``) over the views' sources and their recorded
    materialisation runs (of the view version the model reads); on-demand features are
    then computed by their own function from the joined values and the logged request
    inputs. One row per row of ``rows``, one column per model input column.
    """
    import duckdb
    import numpy as np
    import pandas as pd

    from shipyard.features.definitions import OnDemandView
    from shipyard.features.pit import ViewJoin, point_in_time_join
    from shipyard.features.sources import connect, source_relation

    entity = pd.DataFrame({"event_timestamp": rows.times.reset_index(drop=True)})
    for key in use.entity_keys:
        entity[key] = rows.inputs[key].reset_index(drop=True) if key in rows.inputs else None
    wanted: dict[str, list[tuple[str, str]]] = {}  # view → (feature, output column)
    on_demand: list[tuple[OnDemandView, str, str]] = []  # view, feature, model column
    for ref in use.features:
        view_name, feature = ref.split(":", 1)
        view = repo.view(view_name)
        if isinstance(view, OnDemandView):
            on_demand.append((view, feature, use.columns[ref]))
            for source in repo.resolve(list(view.sources)) if view.sources else ():
                _want(wanted, source.view, source.feature, _odv_column(str(source)))
        else:
            _want(wanted, view_name, feature, use.columns[ref])
    with connect() as con:
        joins = []
        for view_name, pairs in wanted.items():
            view = repo.views[view_name]
            joins.append(
                ViewJoin(
                    view_name,
                    source_relation(con, view, config.root, project_db_url=config.db_url),
                    repo.join_keys(view),
                    tuple(pairs),
                    view.timestamp_field,
                    view.created_timestamp_column,
                    view.ttl,
                )
            )
        for join in joins:  # logged keys arrive as JSON gave them (1.0 for 1): the source's type
            typed = con.execute(f"SELECT * FROM {join.relation} LIMIT 0").df()
            for key in join.join_keys:
                if key in entity and key in typed:
                    entity[key] = _as_type(entity[key], typed[key].dtype)
        con.register("skew_runs", _runs(store, use, list(wanted)))
        con.register("skew_entities", entity)
        try:
            joined = point_in_time_join(
                con, "skew_entities", joins, mode="as_served", runs="skew_runs"
            )
        except duckdb.Error as exc:
            raise DataError(
                f"Cannot recompute the served features offline: {exc}",
                hint="Check that the logged entity keys have the type of the views' join keys.",
            ) from None
    for view, feature, column in on_demand:  # as the training set computes them
        inputs: dict[str, Any] = {}
        for source in repo.resolve(list(view.sources)) if view.sources else ():
            values = joined[_odv_column(str(source))].to_numpy(dtype="float64", na_value=np.nan)
            inputs[source.feature] = values
            inputs[str(source)] = values
        for item in view.request_inputs:
            if item.name in rows.inputs:
                inputs[item.name] = rows.inputs[item.name].to_numpy()
        joined[column] = np.asarray(view.compute(inputs)[feature])
    return joined.reset_index(drop=True)


def _as_type(values: pd.Series, dtype: Any) -> pd.Series:
    """Logged key values in the source key's type where they fit (1.0 → 1, 7 → "7")."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(dtype):
        numbers = pd.to_numeric(values, errors="coerce")
        whole = numbers.dropna()
        if len(whole) == values.notna().sum() and (whole == whole.round()).all():
            return numbers.astype("Int64")
    elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return values.map(lambda v: v if v is None or isinstance(v, str) else _key_text(v))
    return values


def _key_text(value: Any) -> Any:
    if isinstance(value, float):
        return (
            None if math.isnan(value) else (str(int(value)) if value.is_integer() else str(value))
        )
    return str(value)


def _odv_column(ref: str) -> str:
    """The joined column holding an on-demand view's source ``ref``."""
    return "__odv__" + ref.replace(":", "__")


def _want(wanted: dict[str, list[tuple[str, str]]], view: str, feature: str, out: str) -> None:
    pairs = wanted.setdefault(view, [])
    if all(existing != out for _, existing in pairs):
        pairs.append((feature, out))


def _runs(store: Store, use: FeatureUse, views: list[str]) -> pd.DataFrame:
    """The finished materialisation runs of ``views`` (of the versions ``use`` reads)."""
    import pandas as pd
    from sqlalchemy import select

    from shipyard.store.tables import MaterializationRow

    query = select(MaterializationRow).where(
        MaterializationRow.view.in_(views), MaterializationRow.status == "done"
    )
    with store.session() as session:
        found = [
            row for row in session.scalars(query) if use.views.get(row.view) in (None, row.version)
        ]
    frame = pd.DataFrame(
        {
            "view": [row.view for row in found],
            "started_at": [row.started_at for row in found],
            "finished_at": [row.finished_at for row in found],
            "start_ts": [row.start_ts for row in found],
            "end_ts": [row.end_ts for row in found],
        }
    )
    for column in ("started_at", "finished_at", "start_ts", "end_ts"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    frame["view"] = frame["view"].astype(str)
    return frame


@dataclass(frozen=True)
class SkewCheck(Record):
    """Value skew and freshness of one model version's served features."""

    model: str
    version: str
    features: list[str]
    rows: int
    value: ValueSkew
    freshness: Freshness


def check_skew(
    project: Project,
    model: str,
    version: str,
    *,
    rows: ServedRows | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
    include_shadow: bool = False,
    use: FeatureUse | None = None,
) -> SkewCheck | None:
    """Value skew and freshness of ``model``/``version``; None if it uses no features.

    ``rows`` are the logged predictions to judge (the monitor passes its window); without
    them they are read from the log (``since``/``until``/``last``). Value skew recomputes
    at most ``features.skew.sample`` of them; freshness looks at all. ``use`` judges
    ``version``'s traffic for the features another version reads (default: its own tag).
    """
    from shipyard.features.repo import load_repo

    if use is None:
        use = FeatureUse.from_tags(project.client.get_model_version(model, version).tags)
    if use is None:
        return None
    config = project.config
    settings = config.features.skew
    if rows is None:
        rows = read_served_rows(
            config,
            model,
            version,
            since=since,
            until=until,
            last=last,
            include_shadow=include_shadow,
        )
    repo = load_repo(config)
    sample = rows.sample(settings.sample)
    if sample.rows:
        expected = recompute_as_served(config, project.store, use, repo, sample)
        value = value_skew_of(sample, expected, use, repo, settings)
    else:
        value = value_skew_of(sample, _empty(use), use, repo, settings)
    freshness = freshness_of(rows, use, repo, settings.stale_bands)
    return SkewCheck(model, version, list(use.features), rows.rows, value, freshness)


def _empty(use: FeatureUse) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({column: [] for column in use.columns.values()})
