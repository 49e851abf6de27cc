"""``shipyard rollout``: take a candidate from first traffic to champion, step by step."""

from __future__ import annotations

from typing import Annotated, cast

import typer

from shipyard.cli.options import JsonOpt, RefArg, parse_interval
from shipyard.cli.output import console, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(
    help="Roll-outs: shadow, canary and blue/green steps, paused, aborted or promoted.",
    no_args_is_help=True,
)
NameArg = Annotated[str, typer.Argument(help="Model name.")]
ReasonOpt = Annotated[str, typer.Option(help="Why; recorded in the history.")]


@app.command("start")
def start_cmd(
    ctx: typer.Context,
    ref: RefArg,
    strategy: Annotated[
        str, typer.Option(help="canary, shadow, bluegreen or shadow-canary.")
    ] = "canary",
    steps: Annotated[
        str | None, typer.Option(help="Traffic percentages per step, e.g. 10,50,100.")
    ] = None,
    step_duration: Annotated[
        str, typer.Option(help="Shortest time per step, e.g. 30s, 10m, 1h.")
    ] = "10m",
    min_requests: Annotated[
        int, typer.Option(min=0, help="Fewest candidate requests before a step may pass.")
    ] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Start rolling NAME/VERSION out; servers follow within one polling interval."""
    from shipyard.delivery.rollout import Strategy, start_rollout
    from shipyard.registry import Tracking, get_version, parse_ref
    from shipyard.registry.aliases import CHAMPION, current_alias

    state: CliState = ctx.obj
    client = Tracking(state.config()).client
    version = get_version(client, parse_ref(ref))
    name, number = version.name, str(version.version)
    rollout = start_rollout(
        state.store(),
        name,
        number,
        champion=current_alias(client, name, CHAMPION),
        strategy=cast(Strategy, strategy),  # start_rollout refuses unknown strategies
        steps=_steps(steps),
        step_seconds=parse_interval(step_duration, flag="--step-duration"),
        min_requests=min_requests,
    )
    if as_json:
        print_json(rollout.to_dict())
        return
    console.print(
        f"[green]✓[/] {name}/{number}: {rollout.strategy} roll-out started at "
        f"{rollout.describe_step()} (champion {rollout.champion or 'none'})."
    )


@app.command("status")
def status_cmd(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Show NAME's roll-out: step, traffic, time left, history."""
    from datetime import UTC, datetime

    from rich.table import Table

    from shipyard.delivery.rollout import active_rollout

    state: CliState = ctx.obj
    rollout = active_rollout(state.store(), name)
    if rollout is None:
        if as_json:
            print_json(None)
        else:
            console.print(f"{name} has no roll-out in progress.")
        return
    if as_json:
        print_json(rollout.to_dict())
        return
    left = rollout.remaining(datetime.now(UTC))
    console.print(
        f"[bold]{name}/{rollout.candidate}[/] against champion {rollout.champion}: "
        f"{rollout.state}, step {rollout.step_index + 1} of {len(rollout.steps)} "
        f"({rollout.describe_step()}), {left:.0f} s left, "
        f"needs {rollout.min_requests} requests."
    )
    table = Table("at", "from", "to", "step", "reason")
    for entry in rollout.history:
        table.add_row(
            entry["at"][:19],
            str(entry["from"]),
            entry["to"],
            str(entry["step_index"] + 1),
            entry["reason"],
        )
    console.print(table)


@app.command("pause")
def pause_cmd(ctx: typer.Context, name: NameArg, reason: ReasonOpt = "") -> None:
    """Hold NAME's roll-out at its current step (traffic stays as it is)."""
    from shipyard.delivery.rollout import pause_rollout

    state: CliState = ctx.obj
    rollout = pause_rollout(state.store(), name, reason)
    console.print(f"Paused at {rollout.describe_step()}.")


@app.command("resume")
def resume_cmd(ctx: typer.Context, name: NameArg) -> None:
    """Carry on with NAME's paused roll-out."""
    from shipyard.delivery.rollout import resume_rollout

    state: CliState = ctx.obj
    rollout = resume_rollout(state.store(), name)
    console.print(f"Resumed at {rollout.describe_step()}.")


@app.command("abort")
def abort_cmd(ctx: typer.Context, name: NameArg, reason: ReasonOpt = "") -> None:
    """Stop NAME's roll-out; all traffic goes back to the champion."""
    from shipyard.delivery.rollout import abort_rollout

    state: CliState = ctx.obj
    rollout = abort_rollout(state.store(), name, reason)
    console.print(f"Aborted {name}/{rollout.candidate}; the champion has all traffic.")


@app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    name: NameArg,
    force: Annotated[bool, typer.Option(help="Override failed checks (needs --reason).")] = False,
    reason: ReasonOpt = "",
) -> None:
    """Skip the remaining steps: make the candidate champion (approval rules apply)."""
    from shipyard.delivery.rollout import active_rollout, complete_rollout
    from shipyard.errors import NotFoundError
    from shipyard.governance.promotion import promote
    from shipyard.registry import Tracking
    from shipyard.registry.refs import ModelRef

    state: CliState = ctx.obj
    config, store = state.config(), state.store()
    rollout = active_rollout(store, name)
    if rollout is None:
        raise NotFoundError(f"{name} has no roll-out in progress.", hint="Nothing to promote.")
    promote(
        config,
        ModelRef(name, version=rollout.candidate),
        to="champion",
        store=store,
        tracking=Tracking(config),
        force=force,
        reason=reason,
    )
    complete_rollout(store, name)
    console.print(f"[green]✓[/] {name}@champion → {rollout.candidate}; roll-out complete.")


def _steps(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part.strip().rstrip("%")) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"--steps {text!r} is not a list of percentages.", hint="Write e.g. 10,50,100."
        ) from None
