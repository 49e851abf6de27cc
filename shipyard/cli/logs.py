"""``shipyard logs``: read the prediction and label logs with DuckDB."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.options import JsonOpt, parse_moment
from shipyard.cli.output import console, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

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
    limit: Annotated[int, typer.Option(min=1, help="Rows shown (not with --json).")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Query a model's prediction log (or its join with the label log)."""
    from rich.table import Table

    from shipyard.logs.reader import join_labels, query_log

    state: CliState = ctx.obj
    config = state.config()
    root = config.resolve(config.serving.logs)
    start = parse_moment(since) if since else None
    if labels and sql:
        raise ConfigError(
            "--labels and --sql cannot be combined.",
            hint="Query the joined rows in Python with join_labels().",
        )
    table = (
        join_labels(root, name, since=start)
        if labels
        else query_log(root, name, since=start, sql=sql)
    )
    rows = table.to_pylist()
    if as_json:
        print_json(rows)
        return
    view = Table(*table.column_names, title=f"{table.num_rows} rows", title_justify="left")
    for row in rows[:limit]:
        view.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(view)
