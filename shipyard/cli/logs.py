"""``shipyard logs``: read the prediction and label logs with DuckDB."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from shipyard.cli.output import console, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

__all__ = ["app", "parse_since"]

app = typer.Typer(help="Prediction and label logs.", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2026-11-24``, ``2026-11-24T09:00:00+00:00`` or a duration back from now (``90m``)."""
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = int(match[1]), _UNITS[match[2]]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is neither an ISO time nor a duration.",
            hint="Write e.g. 2026-11-24, 2026-11-24T09:30:00+00:00, 30m, 6h or 7d.",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Query a model's prediction log (or its join with the label log)."""
    from rich.table import Table

    from shipyard.serving.log_query import join_labels, query_log

    state: CliState = ctx.obj
    config = state.config()
    root = config.resolve(config.serving.logs)
    start = parse_since(since) if since else None
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
