"""``shipyard llm caps``: per-tenant request and cost caps of an LLM model.

    shipyard llm caps set --tenant acme --quota 1000 --window 1h
    shipyard llm caps set --tenant '*' --quota 500 --unit cents --window 1d
    shipyard llm caps list
    shipyard llm caps usage                  # what each tenant used in the current windows
    shipyard llm caps remove --tenant acme --window 1h

Stored caps replace the ``llm.caps.policies`` of shipyard.yaml with the same tenant,
unit and window; gateways pick them up within ``llm.caps.sync_seconds``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.options import JsonOpt, parse_interval
from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

__all__ = ["caps_app", "register"]

caps_app = typer.Typer(
    help="Per-tenant caps on requests and cost (cents) per window, enforced by the gateway.",
    no_args_is_help=True,
)

ModelOpt = Annotated[
    str | None, typer.Option("--model", help="LLM model name (default: model.name).")
]
TenantOpt = Annotated[
    str, typer.Option("--tenant", help="Tenant the cap applies to; '*' for every tenant.")
]
UnitOpt = Annotated[str, typer.Option("--unit", help="What the quota counts: request or cents.")]
WindowOpt = Annotated[
    str, typer.Option("--window", help="Length of the window, e.g. 60s, 1h or 1d.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]


def register(app: typer.Typer) -> None:
    """Add the ``caps`` group to ``shipyard llm``."""
    app.add_typer(caps_app, name="caps")


def _model(ctx: typer.Context, model: str | None) -> str:
    if model:
        return model
    state: CliState = ctx.obj
    return state.config().model.name


def _window(text: str) -> int:
    seconds = parse_interval(text, flag="--window")
    if seconds != int(seconds):
        raise ConfigError(f"--window {text!r} must be whole seconds.", hint="Write e.g. 60s or 1h.")
    return int(seconds)


def _unit(text: str) -> str:
    unit = text.strip().lower()
    if unit in ("requests", "request"):
        return "request"
    if unit in ("cent", "cents"):
        return "cents"
    raise ConfigError(f"--unit {text!r} is neither request nor cents.")


@caps_app.command("set")
def set_cmd(
    ctx: typer.Context,
    tenant: TenantOpt,
    quota: Annotated[float, typer.Option("--quota", help="Requests or cents per window.")],
    window: WindowOpt = "1h",
    unit: UnitOpt = "request",
    model: ModelOpt = None,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Store a cap (replacing one with the same tenant, unit and window); needs models:deploy."""
    from shipyard.llm.cap_store import set_cap

    state: CliState = ctx.obj
    name = _model(ctx, model)
    record = set_cap(
        state.project(existing_database=True),
        name,
        tenant=tenant.strip(),
        quota=quota,
        unit=_unit(unit),
        window_seconds=_window(window),
        reason=reason,
    )
    if as_json:
        print_json(record.to_dict())
        return
    console.print(
        f"Cap set on {esc(name)}: tenant {esc(record.tenant)}, "
        f"{esc(_amount(record.quota, record.unit))} per {record.window_seconds} s."
    )


@caps_app.command("remove")
def remove_cmd(
    ctx: typer.Context,
    tenant: TenantOpt,
    window: WindowOpt = "1h",
    unit: UnitOpt = "request",
    model: ModelOpt = None,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Remove a stored cap (kept in the audit log); needs models:deploy."""
    from shipyard.llm.cap_store import remove_cap

    state: CliState = ctx.obj
    name = _model(ctx, model)
    record = remove_cap(
        state.project(existing_database=True),
        name,
        tenant=tenant.strip(),
        unit=_unit(unit),
        window_seconds=_window(window),
        reason=reason,
    )
    if as_json:
        print_json(record.to_dict())
        return
    console.print(
        f"Cap removed from {esc(name)}: tenant {esc(record.tenant)}, "
        f"{esc(_amount(record.quota, record.unit))} per {record.window_seconds} s."
    )


@caps_app.command("list")
def list_cmd(ctx: typer.Context, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """List the caps in shipyard.yaml and the stored ones."""
    from rich.table import Table

    from shipyard.llm.cap_store import list_caps

    state: CliState = ctx.obj
    name = _model(ctx, model)
    records = list_caps(state.project(existing_database=True), name)
    if as_json:
        print_json([record.to_dict() for record in records])
        return
    if not records:
        console.print(
            f"No caps on {esc(name)}. Set one: shipyard llm caps set --tenant T --quota Q"
        )
        return
    table = Table("tenant", "quota", "window", "source", "set by", title=esc(name))
    for record in records:
        table.add_row(
            record.tenant,
            _amount(record.quota, record.unit),
            f"{record.window_seconds} s",
            record.source,
            record.created_by or "shipyard.yaml",
        )
    console.print(table, markup=False)  # every cell is data


@caps_app.command("usage")
def usage_cmd(ctx: typer.Context, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Show what each tenant used in the current window of every cap (as gateways synced it)."""
    from rich.table import Table

    from shipyard.llm.cap_store import current_usage

    state: CliState = ctx.obj
    name = _model(ctx, model)
    records = current_usage(state.project(existing_database=True), name)
    if as_json:
        print_json([record.to_dict() for record in records])
        return
    if not records:
        console.print(f"No tenant used {esc(name)} in the current windows of its caps.")
        return
    table = Table("tenant", "used", "window", "since", title=esc(name))
    for record in records:
        table.add_row(
            record.tenant,
            _amount(record.used, record.unit),
            f"{record.window_seconds} s",
            record.window_start.strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    console.print(table, markup=False)  # every cell is data


def _amount(quota: float, unit: str) -> str:
    from shipyard.llm.cap_policies import number_text

    return f"{number_text(round(quota, 6))} {'requests' if unit == 'request' else 'cents'}"
