"""Materialisation: copy feature views' newest rows into the online store, incrementally.

Each run copies, per view, the source rows whose event time is in the window
``(start, end]``:

- ``start`` is ``since`` when given, else the ``end_ts`` of the view **version**'s last
  successful run, else nothing (everything up to ``end``);
- ``end`` is ``until`` when given, else now;
- for a view with a created column, only rows created at or before the run's start
  (``started_at``) are copied, so a run copies exactly what the source held when it
  began, and an "as served" training set can replay it.

A row that arrives late, with an event time at or before the previous run's ``end``,
is **not** copied by the next incremental run: its window is closed. Copy it with
``since`` (``shipyard features materialize --since …``); the online store keeps the
newest row per key, so re-copying a window never goes back in time.

The source is streamed in batches of ``features.batch_rows`` rows and written batch by
batch, so memory stays bounded whatever the source's size. Every run is recorded
(``shipyard_materializations``) with a ``features.materialized`` event, failed runs
included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shipyard.access import Scope
from shipyard.errors import ConfigError, ShipyardError
from shipyard.jsonable import Record
from shipyard.moments import as_utc

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.features.definitions import FeatureView
    from shipyard.features.online import OnlineStore
    from shipyard.features.repo import FeatureRepo
    from shipyard.project import Project
    from shipyard.store.feature_views import Materialization

__all__ = [
    "Freshness",
    "MaterializationResult",
    "MaterializeProgress",
    "freshness",
    "materialize",
    "plain_views",
]


@dataclass(frozen=True, slots=True)
class MaterializeProgress:
    """Where a run is: the view, the rows copied so far, and the batch just written."""

    view: str
    rows: int
    batches: int
    batch_rows: int


@dataclass(frozen=True)
class MaterializationResult(Record):
    """One view's materialisation: its window, what it copied, and how it ended."""

    id: int
    view: str
    version: str
    backend: str
    start_ts: datetime | None
    end_ts: datetime
    started_at: datetime
    finished_at: datetime | None
    rows: int
    """Source rows in the window, all of them read and written."""
    written: int
    """Entity rows the online store changed (an older row never replaces a newer one)."""
    batches: int
    max_event_ts: datetime | None
    status: str
    error: str = ""


def plain_views(repo: FeatureRepo, names: Sequence[str] | None) -> list[FeatureView]:
    """The views called ``names`` (default: every plain view); a ConfigError for an
    unknown name or an on-demand view (it is computed per request, never stored)."""
    if not names:
        return [repo.views[name] for name in sorted(repo.views)]
    out: list[FeatureView] = []
    for name in names:
        repo.view(name)  # a ConfigError naming the known views
        if name not in repo.views:
            reads = sorted({ref.split(":", 1)[0] for ref in repo.on_demand[name].sources})
            raise ConfigError(
                f"{name!r} is an on-demand view: it is computed per request, so there is "
                "nothing to materialise.",
                hint=f"Materialise the views it reads: {', '.join(reads) or 'none'}.",
            )
        out.append(repo.views[name])
    return out


def _runs(project: Project, view: FeatureView) -> list[Materialization]:
    """The view version's successful runs, oldest first."""
    from shipyard.store.feature_views import materializations

    return [
        run for run in materializations(project.store, view.name) if run.version == view.version
    ]


def _last_end(project: Project, view: FeatureView) -> datetime | None:
    """The end of the view version's last successful run, if any."""
    runs = _runs(project, view)
    return runs[-1].end_ts if runs else None


def _postgres_url(project: Project) -> str | None:
    """The project's database when it is PostgreSQL (a table source without a URL reads it)."""
    url = project.config.database_url
    return url if url and url.startswith("postgresql") else None


def _started_at(project: Project, run_id: int) -> datetime:
    """When the store says run ``run_id`` started (the cut-off for created times)."""
    from shipyard.store.tables import MaterializationRow

    with project.store.session() as session:
        row = session.get(MaterializationRow, run_id)
        assert row is not None  # just inserted by start_materialization
        return as_utc(row.started_at)


def _newest(batch: pa.RecordBatch, column: str) -> datetime | None:
    import pyarrow.compute as pc

    value = pc.max(batch.column(column)).as_py()
    return None if value is None else as_utc(value)


def materialize(
    project: Project,
    views: Sequence[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    on_progress: Callable[[MaterializeProgress], None] | None = None,
    online: OnlineStore | None = None,
) -> list[MaterializationResult]:
    """Copy ``views`` (default: all) into the online store; one result per view.

    Each view's source schema is checked against what was applied first (a DataError
    naming a changed column). A view that fails is recorded as a failed run and its
    error raised; views before it stay materialised.
    """
    from shipyard.features.online import open_online_store
    from shipyard.features.registry import schema_drift
    from shipyard.features.repo import load_repo

    project.authorize(Scope.MODELS_TRAIN)
    now = datetime.now(UTC)
    if until is not None and as_utc(until) > now:
        raise ConfigError(
            f"--until {as_utc(until).isoformat()} is in the future.",
            hint="Leave it out to copy up to now; a future end would close a window "
            "before its rows exist.",
        )
    if since is not None and as_utc(since) >= as_utc(until or now):
        raise ConfigError("--since is not before --until (or now): the window is empty.")
    repo = load_repo(project.config)
    chosen = plain_views(repo, views)
    if not chosen:
        return []
    for view in chosen:
        schema_drift(project, view, repo)
    store = online or open_online_store(project.config)
    try:
        return [
            _materialize_view(project, repo, view, store, since, as_utc(until or now), on_progress)
            for view in chosen
        ]
    finally:
        if online is None:
            store.close()


def _materialize_view(
    project: Project,
    repo: FeatureRepo,
    view: FeatureView,
    store: OnlineStore,
    since: datetime | None,
    end: datetime,
    on_progress: Callable[[MaterializeProgress], None] | None,
) -> MaterializationResult:
    from shipyard.features.sources import iter_source_batches, quote
    from shipyard.store.feature_views import finish_materialization, start_materialization

    start = as_utc(since) if since is not None else _last_end(project, view)
    if start is not None and start >= end:
        start = end  # nothing new since the last run: an empty window, recorded as such
    run_id = start_materialization(
        project.store, view.name, view.version, store.backend, start, end
    )
    started_at = _started_at(project, run_id)
    event = quote(view.timestamp_field)
    conditions = [f"{event} <= ?"]
    params: list[datetime] = [end]
    if start is not None:
        conditions.insert(0, f"{event} > ?")
        params.insert(0, start)
    if view.created_timestamp_column:
        conditions.append(f"{quote(view.created_timestamp_column)} <= ?")
        params.append(started_at)
    keys = repo.join_keys(view)
    rows = written = batches = 0
    newest: datetime | None = None
    try:
        for batch in iter_source_batches(
            view,
            project.config.root,
            where_sql=" AND ".join(conditions),
            params=params,
            batch_rows=project.config.features.batch_rows,
            project_db_url=_postgres_url(project),
        ):
            if batch.num_rows == 0:
                continue
            written += store.write(view, keys, batch)
            rows += batch.num_rows
            batches += 1
            latest = _newest(batch, view.timestamp_field)
            if latest is not None and (newest is None or latest > newest):
                newest = latest
            if on_progress is not None:
                on_progress(MaterializeProgress(view.name, rows, batches, batch.num_rows))
    except BaseException as exc:
        reason = exc.message if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"
        finish_materialization(project.store, run_id, rows, newest, "failed", reason)
        raise
    done = finish_materialization(project.store, run_id, rows, newest, "done")
    return MaterializationResult(
        id=done.id,
        view=view.name,
        version=view.version,
        backend=store.backend,
        start_ts=done.start_ts,
        end_ts=done.end_ts,
        started_at=done.started_at,
        finished_at=done.finished_at,
        rows=rows,
        written=written,
        batches=batches,
        max_event_ts=done.max_event_ts,
        status=done.status,
    )


@dataclass(frozen=True)
class Freshness(Record):
    """How fresh a view's online rows are: its last run, its newest row, and its SLA."""

    view: str
    version: str
    last_run_at: datetime | None
    """When the view version's last successful materialisation finished."""
    end_ts: datetime | None
    """The end of the window that run copied."""
    max_event_ts: datetime | None
    """The newest event time any run of this version wrote."""
    age_seconds: float | None
    """Now minus ``max_event_ts``: the age of the newest value the store can serve."""
    freshness_sla_seconds: float | None
    breached: bool | None
    """Whether the age is beyond the SLA (never materialised counts); None without an SLA."""


def freshness(project: Project, view: FeatureView, *, now: datetime | None = None) -> Freshness:
    """Freshness of ``view``'s current version in the online store, from its runs."""
    moment = as_utc(now) if now is not None else datetime.now(UTC)
    runs = _runs(project, view)
    newest = max((run.max_event_ts for run in runs if run.max_event_ts), default=None)
    age = None if newest is None else (moment - newest).total_seconds()
    sla = None if view.freshness_sla is None else view.freshness_sla.total_seconds()
    breached = None if sla is None else (age is None or age > sla)
    last = runs[-1] if runs else None
    return Freshness(
        view=view.name,
        version=view.version,
        last_run_at=None if last is None else last.finished_at,
        end_ts=None if last is None else last.end_ts,
        max_event_ts=newest,
        age_seconds=age,
        freshness_sla_seconds=sla,
        breached=breached,
    )
