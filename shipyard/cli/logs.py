"""``shipyard logs``: read the prediction and label logs with DuckDB; enforce PII retention.

What ``query`` shows is the log as written: PII-tagged inputs are already hashed or
absent. ``--raw-pii`` reads the separate raw store instead, and needs ``pii:read``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, parse_moment
from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from datetime import datetime

    import pyarrow as pa

__all__ = ["app"]

app = typer.Typer(help="Prediction and label logs.", no_args_is_help=True)


@app.command("query")
def query_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    since: Annotated[
        str | None, typer.Option(help="From this ISO time, or this far back (30m, 6h, 7d).")
    ] = None,
    sql: Annotated[
        str | None,
        typer.Option(
            help="SQL over the view `log`, e.g. SELECT version, count(*) FROM log GROUP BY 1."
        ),
    ] = None,
    labels: Annotated[bool, typer.Option(help="Join each prediction with its label.")] = False,
    raw_pii: Annotated[
        bool,
        typer.Option(
            "--raw-pii",
            help="Show the raw values of PII-tagged columns kept with pii.retain_raw "
            "(needs pii:read; the read is audited).",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Rows shown (not with --json).")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Query a model's prediction log (or its join with the label log)."""
    from shipyard.logs.reader import join_labels, query_log
    from shipyard.logs.root import project_log_root

    state: CliState = ctx.obj
    config = state.config()
    root = project_log_root(config)
    start = parse_moment(since) if since else None
    if labels and sql:
        raise ConfigError(
            "--labels and --sql cannot be combined.",
            hint="Query the joined rows in Python with join_labels().",
        )
    if raw_pii:
        if labels or sql:
            raise ConfigError("--raw-pii shows the raw store alone: drop --labels and --sql.")
        _show(_raw_pii(ctx, name, start), limit, as_json)
        return
    acting(ctx, Scope.MODELS_READ, name)
    table = (
        join_labels(root, name, since=start)
        if labels
        else query_log(root, name, since=start, sql=sql)
    )
    _show(table, limit, as_json)


@app.command("prune")
def prune_cmd(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove PII past its retention (pii.retention_days) from the raw store and the log.

    Needs logs:prune; each prune that removes something is an audited logs.pruned event.
    """
    from shipyard.logs.pii import PiiPolicy
    from shipyard.logs.prune import prune_logs, record_prune
    from shipyard.logs.root import project_log_root

    project = acting(ctx, Scope.LOGS_PRUNE)
    config = project.config
    report = prune_logs(PiiPolicy.from_config(config), project_log_root(config), dry_run=dry_run)
    record_prune(project.store, report)
    if as_json:
        print_json(report.to_dict())
        return
    if not config.pii.retention_days:
        console.print("No retention is set (pii.retention_days): nothing to prune.")
        return
    if not report.changed:
        console.print("Nothing is past its retention.")
        return
    verb = "Would remove" if dry_run else "Removed"
    for item in report.pruned:
        console.print(f"{esc(verb)} {esc(item.describe())}")


def _raw_pii(ctx: typer.Context, name: str, start: datetime | None) -> pa.Table:
    """The raw store's rows for ``name``: pii:read checked, the read recorded."""
    from shipyard.logs.pii import PiiPolicy, read_raw_pii
    from shipyard.store.event_kinds import EventKind

    project = acting(ctx, Scope.PII_READ, name)
    policy = PiiPolicy.from_config(project.config)
    table = read_raw_pii(policy, name, project.principal, since=start)
    project.store.record(
        EventKind.PII_RAW_READ,
        f"model:{name}",
        {"rows": table.num_rows, "since": None if start is None else start.isoformat()},
    )
    return table


def _show(table: pa.Table, limit: int, as_json: bool) -> None:
    from rich.table import Table

    rows = table.to_pylist()
    if as_json:
        print_json(rows)
        return
    view = Table(*table.column_names, title=f"{table.num_rows} rows", title_justify="left")
    for row in rows[:limit]:
        view.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(view, markup=False)  # every cell is data
