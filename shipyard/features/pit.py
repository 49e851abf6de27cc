"""Point-in-time joins in DuckDB: what each feature was at each entity row's time.

:func:`point_in_time_join` builds one SQL statement over an entity relation and one
source relation per view, with Feast's semantics: for each entity row, the latest
source row of the same entity with ``event_ts <= entity_ts`` and, when the view has a
ttl, ``event_ts >= entity_ts - ttl`` (inclusive); ties on event time go to the later
created timestamp; every entity row is kept, duplicates included, in its order; an
unknown entity or an expired row gives nulls.

Three modes (:data:`PitMode`):

- ``event_time``: Feast's default, as above (an ASOF join on the source de-duplicated
  by event time, or the window-rank join with ``strategy="rank"``);
- ``as_known_at``: also ``created <= entity_ts``: only rows written by then count
  (Feast's ``filter_by_created_timestamp``);
- ``as_served``: what the online store would have returned at ``entity_ts``: only rows
  copied by a materialisation run that finished at or before ``entity_ts`` count, i.e.
  ``start_ts < event_ts <= end_ts`` of such a run and ``created <= started_at``; the
  newest by (event time, created) wins, then the ttl applies relative to ``entity_ts``.

Every timestamp is compared as ``TIMESTAMPTZ`` in UTC (a naive one is taken as UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from shipyard.errors import ConfigError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

__all__ = [
    "MODES",
    "ROW_COLUMN",
    "PitMode",
    "PitStrategy",
    "ViewJoin",
    "output_names",
    "pit_sql",
    "point_in_time_join",
]

PitMode = Literal["event_time", "as_known_at", "as_served"]
PitStrategy = Literal["asof", "rank"]
MODES: tuple[str, ...] = ("event_time", "as_known_at", "as_served")
ROW_COLUMN = "__shipyard_row"
"""The entity row number the join keeps order and duplicates by (not in the result)."""

_TS = "__shipyard_ts"
_NUMBERED = "__shipyard_numbered_entities"


@dataclass(frozen=True)
class ViewJoin:
    """One view's part of a join: where its rows are and which features to take.

    ``features`` pairs each source column with the output column it fills.
    """

    name: str
    relation: str
    join_keys: tuple[str, ...]
    features: tuple[tuple[str, str], ...]
    timestamp_field: str = "event_timestamp"
    created_column: str | None = None
    ttl: timedelta | None = None


def output_names(pairs: Sequence[tuple[str, str]], *, full_names: bool = False) -> list[str]:
    """Output columns for ``(view, feature)`` pairs: the feature name, or ``view__feature``.

    A ConfigError when two features share a name and ``full_names`` is off.
    """
    if full_names:
        return [f"{view}__{feature}" for view, feature in pairs]
    names = [feature for _, feature in pairs]
    seen: dict[str, str] = {}
    for view, feature in pairs:
        if feature in seen and seen[feature] != view:
            raise ConfigError(
                f"Two requested features are both called {feature!r} "
                f"({seen[feature]}:{feature} and {view}:{feature}).",
                hint="Ask for full names (full_names=True, --full-names): "
                "columns become view__feature.",
            )
        seen[feature] = view
    return names


def _q(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ts(expression: str) -> str:
    return f"CAST({expression} AS TIMESTAMPTZ)"


def _ttl_floor(view: ViewJoin) -> str | None:
    """``entity_ts - ttl`` in SQL, or None without a ttl."""
    if view.ttl is None:
        return None
    micros = round(view.ttl.total_seconds() * 1_000_000)
    return f"e.{_TS} - to_microseconds({micros})"


def _source_cte(view: ViewJoin, alias: str, *, dedupe: bool, number: bool = False) -> str:
    """The view's rows with its event (and created) time as TIMESTAMPTZ.

    ``dedupe``: one row per entity and event time (the one created last); ``number``:
    an ``rk`` column numbering each entity's rows by (event, created).
    """
    keys = ", ".join(_q(key) for key in view.join_keys)
    columns = ", ".join(
        f"{_q(source)} AS {_q(f'f{i}')}" for i, (source, _) in enumerate(view.features)
    )
    created = (
        f"{_ts(_q(view.created_column))}" if view.created_column else "CAST(NULL AS TIMESTAMPTZ)"
    )
    sql = (
        f"SELECT {keys}, {_ts(_q(view.timestamp_field))} AS ev, {created} AS cr, {columns} "
        f"FROM {view.relation} WHERE {_q(view.timestamp_field)} IS NOT NULL"
    )
    if number:
        sql = (
            f"SELECT *, row_number() OVER (PARTITION BY {keys} "
            f"ORDER BY ev, cr NULLS FIRST) AS rk FROM ({sql})"
        )
    if dedupe:  # one row per entity and event time: the one created last
        sql += (
            f" QUALIFY row_number() OVER (PARTITION BY {keys}, ev ORDER BY cr DESC NULLS LAST) = 1"
        )
    return f"{alias} AS ({sql})"


def _key_match(view: ViewJoin, alias: str) -> str:
    return " AND ".join(f"e.{_q(key)} = {alias}.{_q(key)}" for key in view.join_keys)


def _asof_cte(view: ViewJoin, index: int) -> str:
    s = f"s{index}"
    floor = _ttl_floor(view)
    keep = "TRUE" if floor is None else f"{s}.ev >= {floor}"
    columns = ", ".join(
        f"CASE WHEN {keep} THEN {s}.{_q(f'f{i}')} END AS {_q(out)}"
        for i, (_, out) in enumerate(view.features)
    )
    return (
        f"j{index} AS (SELECT e.{ROW_COLUMN}, {columns} FROM e "
        f"ASOF LEFT JOIN {s} ON {_key_match(view, s)} AND e.{_TS} >= {s}.ev)"
    )


def _best_asof_ctes(view: ViewJoin, index: int, mode: str, runs: str | None) -> list[str]:
    """``as_known_at`` / ``as_served`` as an ASOF join on the time each row became visible.

    A row is visible from ``greatest(event, created)`` (as known at) or from the end of
    a run that copied it (as served). Rows are numbered per entity by (event, created);
    ordered by visibility, a running maximum of that number is, at each visibility
    time, the row the rank join would pick among everything visible by then. The ASOF
    join takes the latest visibility at or before the entity time, and the number
    finds the row's values.
    """
    s, k, b = f"s{index}", f"k{index}", f"b{index}"
    keys = ", ".join(f"{s}.{_q(key)}" for key in view.join_keys)
    if mode == "as_known_at":
        visible = f"greatest({s}.ev, {s}.cr)"
        source = f"{s} WHERE {s}.cr IS NOT NULL"
    else:
        r = f"r{index}"
        visible = _ts(f"{r}.finished_at")
        source = (
            f"{s} JOIN {runs} AS {r} ON {r}.view = {_lit(view.name)}"
            f" AND {r}.finished_at IS NOT NULL"
            f" AND ({r}.start_ts IS NULL OR {s}.ev > {_ts(f'{r}.start_ts')})"
            f" AND {s}.ev <= {_ts(f'{r}.end_ts')}"
        )
        if view.created_column:
            source += f" AND {s}.cr <= {_ts(f'{r}.started_at')}"
    running = (
        f"max({s}.rk) OVER (PARTITION BY {keys} ORDER BY {visible} "
        "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    floor = _ttl_floor(view)
    keep = f"{b}.rk IS NOT NULL" + ("" if floor is None else f" AND {b}.ev >= {floor}")
    columns = ", ".join(
        f"CASE WHEN {keep} THEN {b}.{_q(f'f{i}')} END AS {_q(out)}"
        for i, (_, out) in enumerate(view.features)
    )
    back = " AND ".join(f"{b}.{_q(key)} = e.{_q(key)}" for key in view.join_keys)
    return [
        f"{k} AS (SELECT {keys}, {visible} AS vis, {running} AS best FROM {source})",
        f"j{index} AS (SELECT e.{ROW_COLUMN}, {columns} FROM e "
        f"ASOF LEFT JOIN {k} ON {_key_match(view, k)} AND e.{_TS} >= {k}.vis "
        f"LEFT JOIN {s} AS {b} ON {back} AND {b}.rk = {k}.best)",
    ]


def _rank_cte(view: ViewJoin, index: int, mode: str, runs: str | None) -> str:
    s = f"s{index}"
    conditions = [_key_match(view, s)]
    floor = _ttl_floor(view)
    if floor is not None:
        conditions.append(f"{s}.ev >= {floor}")
    joins = ""
    if mode == "as_served":
        r = f"r{index}"
        joins = (
            f" JOIN {runs} AS {r} ON {r}.view = {_lit(view.name)}"
            f" AND {r}.finished_at IS NOT NULL AND {_ts(f'{r}.finished_at')} <= e.{_TS}"
            f" AND ({r}.start_ts IS NULL OR {s}.ev > {_ts(f'{r}.start_ts')})"
            f" AND {s}.ev <= {_ts(f'{r}.end_ts')}"
        )
        if view.created_column:
            joins += f" AND {s}.cr <= {_ts(f'{r}.started_at')}"
    else:
        conditions.append(f"{s}.ev <= e.{_TS}")
        if mode == "as_known_at" and view.created_column:
            conditions.append(f"{s}.cr <= e.{_TS}")
    columns = ", ".join(
        f"{s}.{_q(f'f{i}')} AS {_q(out)}" for i, (_, out) in enumerate(view.features)
    )
    return (
        f"j{index} AS (SELECT e.{ROW_COLUMN}, {columns} FROM e JOIN {s} ON "
        + " AND ".join(conditions)
        + joins
        + f" QUALIFY row_number() OVER (PARTITION BY e.{ROW_COLUMN} "
        f"ORDER BY {s}.ev DESC, {s}.cr DESC NULLS LAST) = 1)"
    )


def pit_sql(
    entities: str,
    views: Sequence[ViewJoin],
    *,
    timestamp_column: str = "event_timestamp",
    mode: PitMode = "event_time",
    runs: str | None = None,
    row_column: str | None = None,
    strategy: PitStrategy = "asof",
) -> str:
    """The one SQL statement of :func:`point_in_time_join` (see there)."""
    if mode not in MODES:
        raise ConfigError(f"Unknown point-in-time mode {mode!r}.", hint=f"Use one of {MODES}.")
    if mode == "as_served" and runs is None:
        raise ConfigError("The as_served mode needs the materialisation runs.")
    if strategy not in ("asof", "rank"):
        raise ConfigError(f"Unknown join strategy {strategy!r}.", hint="Use asof or rank.")
    if row_column is None:
        row = f", row_number() OVER () - 1 AS {ROW_COLUMN}"
    else:
        row = "" if row_column == ROW_COLUMN else f", {_q(row_column)} AS {ROW_COLUMN}"
    ctes = [f"e AS (SELECT *, {_ts(_q(timestamp_column))} AS {_TS}{row} FROM {entities})"]
    for index, view in enumerate(views):
        effective = "event_time" if mode == "as_known_at" and not view.created_column else mode
        latest = effective == "event_time" and strategy == "asof"
        visible = strategy == "asof" and not latest
        ctes.append(_source_cte(view, f"s{index}", dedupe=latest, number=visible))
        if latest:
            ctes.append(_asof_cte(view, index))
        elif strategy == "asof":
            ctes.extend(_best_asof_ctes(view, index, effective, runs))
        else:
            ctes.append(_rank_cte(view, index, effective, runs))
    hidden = {_TS, ROW_COLUMN} | ({row_column} if row_column else set())
    selected = [f"e.* EXCLUDE ({', '.join(_q(name) for name in sorted(hidden))})"]
    joined = ""
    for index, view in enumerate(views):
        selected.extend(f"j{index}.{_q(out)}" for _, out in view.features)
        joined += f" LEFT JOIN j{index} ON j{index}.{ROW_COLUMN} = e.{ROW_COLUMN}"
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"\nSELECT {', '.join(selected)} FROM e{joined} ORDER BY e.{ROW_COLUMN}"
    )


def point_in_time_join(
    con: duckdb.DuckDBPyConnection,
    entities: str,
    views: Sequence[ViewJoin],
    *,
    timestamp_column: str = "event_timestamp",
    mode: PitMode = "event_time",
    runs: str | None = None,
    row_column: str | None = None,
    strategy: PitStrategy = "asof",
) -> pd.DataFrame:
    """Each entity row with the features it had at its timestamp, in entity order.

    ``entities`` and each view's ``relation`` are relations in ``con`` (tables, views or
    registered frames); ``row_column`` names the entity relation's row number, which
    orders the result (without one, the rows are copied into a temporary table in
    their order and numbered by it). ``runs`` is the
    relation of materialisation runs (``view, started_at, finished_at, start_ts,
    end_ts``) that ``as_served`` replays. The result holds the entity columns, then each
    view's output columns.
    """
    con.execute("SET TimeZone = 'UTC'")
    if row_column is None:
        # A copy keeps the input order (preserve_insertion_order), and its rowid numbers
        # the rows in that order; row_number() OVER () promises no order.
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_NUMBERED} AS SELECT * FROM {entities}")
        entities = f"(SELECT *, rowid AS {ROW_COLUMN} FROM {_NUMBERED})"
        row_column = ROW_COLUMN
    sql = pit_sql(
        entities,
        views,
        timestamp_column=timestamp_column,
        mode=mode,
        runs=runs,
        row_column=row_column,
        strategy=strategy,
    )
    try:
        return con.execute(sql).df()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_NUMBERED}")
