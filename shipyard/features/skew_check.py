"""Skew checks against the real pieces: the prediction log, the sources, the runs.

:func:`check_skew` judges one model version: it reads its logged requests
(:func:`read_served_rows`), recomputes a sample of them offline *as served*
(:func:`recompute_as_served`: the point-in-time join in ``as_served`` mode over the
views' sources and the recorded materialisation runs of the view versions the model
reads, then its on-demand features by their own function), and compares
(:mod:`shipyard.features.skew`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import DataError
from shipyard.features.skew import (
    FeatureUse,
    Freshness,
    ServedRows,
    ValueSkew,
    freshness_of,
    value_skew_of,
)
from shipyard.jsonable import Record

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import Config
    from shipyard.features.repo import FeatureRepo
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = ["SkewCheck", "check_skew", "read_served_rows", "recompute_as_served"]


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
