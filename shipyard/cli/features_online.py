"""``shipyard features materialize | get | freshness``: the online store from the shell.

Commands of ``shipyard features`` (see :mod:`shipyard.cli.features`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, parse_moment
from shipyard.cli.output import console, esc, print_json, steps
from shipyard.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from shipyard.features.definitions import FeatureView
    from shipyard.features.materialize import Freshness, MaterializationResult

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``features`` group."""
    app.command("materialize")(materialize_cmd)
    app.command("get")(get_cmd)
    app.command("freshness")(freshness_cmd)


def materialize_cmd(
    ctx: typer.Context,
    views: Annotated[
        list[str] | None, typer.Argument(help="Views to copy (default: every feature view).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Copy rows with event time after this (ISO time or 7d back); default: "
            "where the view's last run ended. Use it to copy rows that arrived late."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Copy rows with event time up to this (default: now).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy feature views' newest rows into the online store, from where the last run ended."""
    from shipyard.features.materialize import MaterializeProgress, materialize

    project = acting(ctx, Scope.MODELS_TRAIN)
    since_at = parse_moment(since, flag="--since") if since else None
    until_at = parse_moment(until, flag="--until") if until else None
    with steps(quiet=as_json or not console.is_terminal) as step:

        def progress(where: MaterializeProgress) -> None:
            step(f"{where.view}: {where.rows:,} rows copied")

        results = materialize(
            project, views or None, since=since_at, until=until_at, on_progress=progress
        )
    if as_json:
        print_json([result.to_dict() for result in results])
        return
    if not results:
        console.print("No feature views are defined: nothing to materialise.")
    for result in results:
        _print_run(result)


def _print_run(result: MaterializationResult) -> None:
    start = "the beginning" if result.start_ts is None else _when(result.start_ts)
    console.print(
        f"{esc(result.view)} [dim]({esc(result.version)})[/]: {result.rows:,} rows with event "
        f"time in ({esc(start)}, {esc(_when(result.end_ts))}] → {result.backend}, "
        f"{result.written:,} entities updated"
        + (f", newest event {esc(_when(result.max_event_ts))}" if result.max_event_ts else ""),
        soft_wrap=True,
    )


def get_cmd(
    ctx: typer.Context,
    view: Annotated[str, typer.Argument(help="Feature view name.")],
    entity: Annotated[
        list[str],
        typer.Option(help="A join key and its value, e.g. driver_id=1 (repeat for each key)."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show the online store's row of one entity: values, event time, age, and whether expired."""
    from shipyard.features.online import open_online_store
    from shipyard.features.repo import load_repo

    project = acting(ctx, Scope.MODELS_READ)
    repo = load_repo(project.config)
    found = repo.view(view)
    if view not in repo.views:
        raise ConfigError(
            f"{view!r} is an on-demand view: it is computed per request, not stored.",
            hint="Get the views it reads instead.",
        )
    plain = repo.views[view]
    keys = repo.join_keys(plain)
    given = _entity_values(entity, keys, view)
    store = open_online_store(project.config)
    try:
        row = store.read(plain, [tuple(given[key] for key in keys)])[0]
    finally:
        store.close()
    where = ", ".join(f"{key}={given[key]}" for key in keys)
    if row is None:
        raise NotFoundError(
            f"The online store has no row of {found.name} (version {plain.version}) for {where}.",
            hint="Materialise the view (shipyard features materialize) or check the key.",
        )
    age = time.time() - row.event_ts
    ttl = None if plain.ttl is None else plain.ttl.total_seconds()
    expired = ttl is not None and age > ttl
    document: dict[str, Any] = {
        "view": plain.name,
        "version": plain.version,
        "entity": given,
        "values": dict(zip(plain.feature_names, row.values, strict=True)),
        "event_ts": _when(row.event_ts),
        "created_ts": None if row.created_ts is None else _when(row.created_ts),
        "age_seconds": round(age, 3),
        "ttl_seconds": ttl,
        "expired": expired,
    }
    if as_json:
        print_json(document)
        return
    console.print(f"[bold]{esc(plain.name)}[/] [dim]({esc(plain.version)})[/] {esc(where)}")
    width = max(len(name) for name in plain.feature_names)
    for name, value in document["values"].items():
        shown = "[dim]null[/]" if value is None else esc(value)
        console.print(f"  {esc(name.ljust(width))}  {shown}", soft_wrap=True)
    line = f"event time {esc(document['event_ts'])}, age {_duration(age)}"
    if row.created_ts is not None:
        line += f", created {esc(document['created_ts'])}"
    console.print(line)
    if expired:
        assert ttl is not None
        console.print(
            f"[yellow]expired (ttl {_duration(ttl)})[/]: serving treats it as missing "
            f"({esc(plain.missing)})."
        )


def _entity_values(items: list[str], keys: tuple[str, ...], view: str) -> dict[str, str]:
    """``driver_id=1`` options as {key: value}, every join key given, no unknown one."""
    given: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--entity {item!r} is not KEY=VALUE.", hint=f"Write e.g. {keys[0]}=1."
            )
        if key.strip() not in keys:
            raise ConfigError(
                f"--entity {key.strip()!r} is not a join key of {view}.",
                hint=f"Its join keys: {', '.join(keys)}.",
            )
        given[key.strip()] = value.strip()
    missing = [key for key in keys if key not in given]
    if missing:
        raise ConfigError(
            f"--entity is missing the join key {', '.join(missing)} of {view}.",
            hint=" ".join(f"--entity {key}=…" for key in missing),
        )
    return given


def freshness_cmd(
    ctx: typer.Context,
    view: Annotated[
        str | None, typer.Argument(help="Only this view (default: every view).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """How fresh each view's online rows are: last run, newest event, age against the SLA."""
    from shipyard.features.materialize import freshness, plain_views
    from shipyard.features.repo import load_repo

    project = acting(ctx, Scope.MODELS_READ)
    repo = load_repo(project.config)
    chosen: list[FeatureView] = plain_views(repo, [view] if view else None)
    results = [freshness(project, item) for item in chosen]
    if as_json:
        print_json([result.to_dict() for result in results])
        return
    if not results:
        console.print("No feature views are defined.")
        return
    from rich.table import Table

    table = Table("view", "version", "last run", "newest event", "age", "SLA", "status")
    for result in results:
        table.add_row(
            esc(result.view),
            esc(result.version),
            _when(result.last_run_at) if result.last_run_at else "never",
            _when(result.max_event_ts) if result.max_event_ts else "-",
            _duration(result.age_seconds) if result.age_seconds is not None else "-",
            _duration(result.freshness_sla_seconds) if result.freshness_sla_seconds else "-",
            _status(result),
        )
    console.print(table)


def _status(result: Freshness) -> str:
    if result.breached is None:
        return "no SLA" if result.last_run_at else "never materialised"
    if result.breached:
        return "[red]stale[/]" if result.last_run_at else "[red]never materialised[/]"
    return "[green]fresh[/]"


def _when(moment: datetime | float | None) -> str:
    """A time as ISO text in UTC, to the second."""
    if moment is None:
        return "-"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _duration(seconds: float) -> str:
    """``2h``, ``1d 3h``, ``45m``, ``12s``: the two largest units of a duration."""
    negative = seconds < 0
    left = round(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    text = " ".join(parts[:2])
    return f"-{text}" if negative else text
