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
    flat: Annotated[
        bool,
        typer.Option(
            "--flat",
            help="One column per input field: the model's inputs as served, then what the "
            "server looked features up with (entity keys) and when each served row became "
            "true (feature_ts__<view>, shown as UTC time; blank when nothing was served).",
        ),
    ] = False,
    kind: Annotated[
        str,
        typer.Option(
            help="Which log: predictions, labels, outcomes or traces (one row per span of "
            "an LLM call)."
        ),
    ] = "predictions",
    limit: Annotated[int, typer.Option(min=1, help="Rows shown (not with --json).")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Query a model's prediction log (or its join with the label log, or another log
    with --kind, e.g. an LLM's traces).

    A model served with features logs the values it was given (masked where tagged PII),
    its entity keys and ``feature_ts__<view>`` (epoch seconds) among its inputs.
    """
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
    if kind != "predictions" and (labels or flat or raw_pii):
        raise ConfigError(
            f"--labels, --flat and --raw-pii read the prediction log, not --kind {kind}.",
            hint="Drop them, or query --kind predictions.",
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
        else query_log(root, name, kind=kind, since=start, sql=sql)
    )
    if flat:
        table = _flat(table, readable_times=not as_json)
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


_TS_PREFIX = "feature_ts__"  # shipyard.serving.features.TS_PREFIX, without importing serving


def _flat(table: pa.Table, *, readable_times: bool) -> pa.Table:
    """``table`` with its ``inputs`` struct spread into one column per field.

    ``feature_ts__<view>`` (epoch seconds, NaN when nothing was served) becomes a UTC
    timestamp for people; JSON keeps the numbers.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if "inputs" not in table.column_names:
        return table
    inputs = table.column("inputs")
    if not pa.types.is_struct(inputs.type):
        return table
    position = table.column_names.index("inputs")
    table = table.remove_column(position)
    for offset, field in enumerate(inputs.type):
        values = pc.struct_field(inputs, field.name)
        if (
            readable_times
            and field.name.startswith(_TS_PREFIX)
            and pa.types.is_floating(field.type)
        ):
            micros = pc.round(pc.multiply(pc.if_else(pc.is_nan(values), None, values), 1e6))
            values = pc.cast(pc.cast(micros, pa.int64()), pa.timestamp("us", tz="UTC"))
        table = table.add_column(position + offset, f"inputs.{field.name}", values)
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
