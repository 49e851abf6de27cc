"""``shipyard llm prices|cost|traces``: the price table, what calls cost, trace export.

    shipyard llm prices import model_prices_and_context_window.json --effective-from 2026-12-01
    shipyard llm prices set 'gpt-4o(-mini)?' --input 2.5 --output 10 --per-million
    shipyard llm prices list [--at 2026-11-15] [--all]
    shipyard llm cost --since 7d --by tenant,prompt,day
    shipyard llm traces show --since 1h
    shipyard llm traces export --otlp traces.json --since 1d

Prices are per token unless ``--per-million``. Storing prices needs ``models:deploy`` on
every model and is audited (``llm.prices_imported``); a new price never changes a cost
already recorded. ``cost`` and ``traces`` read the trace log (``models:read``); the raw
rows are also ``shipyard logs query NAME --kind traces``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, parse_moment
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from shipyard.project import Project

__all__ = ["prices_app", "register", "traces_app"]

prices_app = typer.Typer(
    help="The versioned, date-effective LLM price table (LiteLLM's JSON or by hand).",
    no_args_is_help=True,
)
traces_app = typer.Typer(
    help="Traces of LLM calls: list them, export them as OTLP JSON.", no_args_is_help=True
)

SinceOpt = Annotated[
    str | None, typer.Option(help="From this ISO time, or this far back (30m, 6h, 7d).")
]
UntilOpt = Annotated[str | None, typer.Option(help="Until this ISO time (exclusive), or ago.")]
WhenOpt = Annotated[
    str | None,
    typer.Option("--effective-from", help="In effect from this ISO time (default: now)."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", help="LLM model name (repeatable; default: every traced model)."),
]


def register(app: typer.Typer) -> None:
    """Add ``prices``, ``cost`` and ``traces`` to ``shipyard llm``."""
    app.add_typer(prices_app, name="prices")
    app.command("cost")(cost_cmd)
    app.add_typer(traces_app, name="traces")


def _moment(text: str | None, flag: str) -> datetime | None:
    return parse_moment(text, flag=flag) if text else None


@prices_app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="LiteLLM's price JSON, or Shipyard's own.")],
    effective_from: WhenOpt = None,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Import a price file as a new table version; needs models:deploy on every model."""
    from shipyard.llm.prices import import_prices

    project = acting(ctx, Scope.MODELS_DEPLOY)
    done = import_prices(
        project, file, effective_from=_moment(effective_from, "--effective-from"), reason=reason
    )
    if as_json:
        print_json(done.to_dict())
        return
    console.print(
        f"Price table version {done.table_version}: {done.models} models ({done.rows} prices) "
        f"from {esc(file.name)}, in effect from {esc(done.effective_from.isoformat())}."
    )
    if done.skipped:
        console.print(f"Skipped {len(done.skipped)} without a per-token price.")


@prices_app.command("set")
def set_cmd(
    ctx: typer.Context,
    model_pattern: Annotated[
        str, typer.Argument(help="Model name, or a regular expression matching whole names.")
    ],
    input_price: Annotated[
        float | None, typer.Option("--input", help="Price per input (prompt) token.")
    ] = None,
    output_price: Annotated[
        float | None, typer.Option("--output", help="Price per output (completion) token.")
    ] = None,
    cached_price: Annotated[
        float | None,
        typer.Option("--cached-input", help="Price per cached input token (default: input)."),
    ] = None,
    per_million: Annotated[
        bool, typer.Option("--per-million", help="The prices are per million tokens.")
    ] = False,
    currency: Annotated[str | None, typer.Option(help="Currency (default: llm.currency).")] = None,
    effective_from: WhenOpt = None,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Set one model pattern's prices as a new table version; needs models:deploy."""
    from shipyard.llm.prices import set_price

    scale = 1e-6 if per_million else 1.0
    project = acting(ctx, Scope.MODELS_DEPLOY)
    done = set_price(
        project,
        model_pattern,
        input=None if input_price is None else input_price * scale,
        output=None if output_price is None else output_price * scale,
        cached_input=None if cached_price is None else cached_price * scale,
        currency=currency,
        effective_from=_moment(effective_from, "--effective-from"),
        reason=reason,
    )
    if as_json:
        print_json(done.to_dict())
        return
    console.print(
        f"Price table version {done.table_version}: {esc(model_pattern)}, in effect from "
        f"{esc(done.effective_from.isoformat())}."
    )


@prices_app.command("list")
def list_cmd(
    ctx: typer.Context,
    at: Annotated[str | None, typer.Option(help="Prices in effect at this time.")] = None,
    every_version: Annotated[
        bool, typer.Option("--all", help="Every stored row of every version.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The prices in effect now (or --at), per model pattern and usage type."""
    from rich.table import Table

    from shipyard.llm.prices import list_prices

    project = acting(ctx, Scope.MODELS_READ)
    rows = list_prices(project, at=_moment(at, "--at"), every_version=every_version)
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    if not rows:
        console.print("No prices. Import some: shipyard llm prices import FILE")
        return
    view = Table("version", "model pattern", "usage", "per 1M tokens", "from", "source")
    for row in rows:
        view.add_row(
            str(row.table_version),
            row.model_pattern,
            row.usage_type,
            f"{row.price_per_token * 1e6:.4g} {row.currency}",
            row.effective_from.isoformat(timespec="seconds"),
            row.source,
        )
    console.print(view, markup=False)


def cost_cmd(
    ctx: typer.Context,
    model: ModelsOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: Annotated[
        str,
        typer.Option(help="Group by (comma-separated): tenant, model, version, prompt, role, day."),
    ] = "tenant,model,prompt,day",
    as_json: JsonOpt = False,
) -> None:
    """What LLM calls cost: requests, tokens, cost, cache hits and savings per group."""
    from rich.table import Table

    from shipyard.llm.costs import cost_rows, traced_models
    from shipyard.logs.root import project_log_root

    project = acting(ctx, Scope.MODELS_READ)
    root = project_log_root(project.config)
    names = _readable(project, model, lambda: traced_models(root))
    dims = [d.strip() for d in by.split(",") if d.strip()]
    rows = cost_rows(
        root,
        names,
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
        by=dims,
    )
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    if not rows:
        console.print("No traced LLM calls in that window.")
        return
    view = Table(
        *dims,
        "requests",
        "tokens in/out/cached",
        "cost",
        "cache hits",
        "saved",
        title="LLM cost",
        title_justify="left",
    )
    for row in rows:
        hits = "" if row.hit_rate is None else f"{row.cache_hits} ({row.hit_rate:.0%})"
        view.add_row(
            *(str(getattr(row, d) or "") for d in dims),
            str(row.requests),
            f"{row.prompt_tokens}/{row.completion_tokens}/{row.cached_tokens}",
            f"{row.cost:.6g} {row.currency}",
            hits,
            f"{row.saved:.6g} {row.currency}",
        )
    console.print(view, markup=False)
    unpriced = sum(row.unpriced for row in rows)
    if unpriced:
        console.print(
            f"{unpriced} calls matched no price (counted as 0): see shipyard llm prices list.",
            markup=False,
        )


def _readable(
    project: Project, named: list[str] | None, every: Callable[[], list[str]]
) -> list[str]:
    """The named models (each checked), or every traced one this principal may read."""
    if named:
        for name in named:
            project.authorize(Scope.MODELS_READ, name)
        return list(named)
    return [name for name in every() if project.principal.may(Scope.MODELS_READ, name)]


def _trace_rows(
    project: Project, model: str | None, since: str | None, until: str | None
) -> list[dict[str, object]]:
    from shipyard.logs.reader import query_log
    from shipyard.logs.root import project_log_root

    name = model or project.config.model.name
    project.authorize(Scope.MODELS_READ, name)
    start, end = _moment(since, "--since"), _moment(until, "--until")
    if start is not None and end is not None and start >= end:
        raise ConfigError("--since must come before --until.")
    import shipyard.logs.traces  # noqa: F401  (registers the traces kind)

    table = query_log(project_log_root(project.config), name, kind="traces", since=start)
    rows = table.to_pylist()
    if end is not None:
        rows = [row for row in rows if row["time"] < end]
    return rows


@traces_app.command("export")
def export_cmd(
    ctx: typer.Context,
    otlp: Annotated[
        Path, typer.Option("--otlp", help="Write OTLP/JSON here ('-' for standard output).")
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="LLM model name (default: model.name).")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export traces as OTLP/JSON (an ExportTraceServiceRequest) for Phoenix, Langfuse, MLflow.

    With ``--otlp -`` the document itself goes to standard output; ``--json`` prints what
    was written (file, traces, spans) as JSON.
    """
    from shipyard.jsonable import dump_json
    from shipyard.llm.otlp import otlp_json

    project = acting(ctx, Scope.MODELS_READ)
    rows = _trace_rows(project, model, since, until)
    data = dump_json(otlp_json(rows))
    if str(otlp) == "-":
        typer.echo(data.decode("utf-8"))
        return
    otlp.parent.mkdir(parents=True, exist_ok=True)
    otlp.write_bytes(data)
    calls = len({row["trace_id"] for row in rows})
    if as_json:
        print_json({"file": str(otlp), "traces": calls, "spans": len(rows)})
        return
    console.print(f"Wrote {calls} traces ({len(rows)} spans) to {esc(otlp)}.")


@traces_app.command("show")
def show_cmd(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option("--model", help="LLM model name (default: model.name).")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="Spans shown (not with --json).")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The spans of traced calls, oldest first (masked as logged)."""
    from rich.table import Table

    project = acting(ctx, Scope.MODELS_READ)
    rows = _trace_rows(project, model, since, until)
    if as_json:
        print_json(rows)
        return
    columns = ("time", "trace_id", "name", "kind", "status", "tenant", "prompt", "cache")
    view = Table(*columns, "ms", "tokens", "cost", title=f"{len(rows)} spans", title_justify="left")
    for row in rows[:limit]:
        tokens = f"{row['prompt_tokens']}/{row['completion_tokens']}"
        view.add_row(
            *(str(row[c] or "") for c in columns),
            f"{row['duration_ms']:.1f}",
            tokens if row["kind"] == "LLM" else "",
            "" if row["cost"] is None else f"{row['cost']:.6g} {row['currency']}",
        )
    console.print(view, markup=False)
