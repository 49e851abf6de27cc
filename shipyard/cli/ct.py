"""``shipyard retrain NAME`` and ``shipyard ct status NAME``: continuous training by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json, steps
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.pipelines import Cycle

__all__ = ["app", "retrain_cmd"]

app = typer.Typer(
    help="Continuous training: the last cycles and their gates.", no_args_is_help=True
)
NameArg = Annotated[str, typer.Argument(help="Model name.")]
MARKS = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[yellow]–[/]"}
STATES = {
    "running": "[cyan]running[/]",
    "promoted": "[green]promoted[/]",
    "rolled_back": "[red]rolled back[/]",
    "halted": "[red]halted[/]",
    "failed": "[red]failed[/]",
    "skipped": "[yellow]skipped[/]",
    "deferred": "[yellow]deferred[/]",
}


def retrain_cmd(
    ctx: typer.Context,
    name: NameArg,
    force: Annotated[
        bool, typer.Option(help="Ignore the cooldown, new-data and performance-loss guards.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; recorded with the trigger.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Retrain NAME now: validate → retrain → scorecard, then a shadow-canary roll-out.

    The roll-out's steps and the promotion are the agent's (`shipyard agent` or
    `shipyard serve --agent`); follow them with `shipyard ct status NAME`.
    """
    from shipyard.pipelines import ContinuousTraining, manual_trigger

    state: CliState = ctx.obj
    _config_for(state, name)  # refuses a model this project does not train
    loop = ContinuousTraining(state.project())
    with steps(quiet=as_json) as on_step:
        cycle = loop.run(manual_trigger(reason), force=force, step=on_step)
    if as_json:
        print_json(cycle.to_dict())
    else:
        _print_cycle(cycle)
        if cycle.state == "running":
            console.print(
                f"The agent takes it from here: `shipyard ct status {esc(name)}` follows it."
            )
    if cycle.state in ("halted", "failed"):
        raise typer.Exit(1)


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[int, typer.Option(min=1, help="How many cycles to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """NAME's last cycles: cause, gate outcomes in order, candidate, result."""
    from rich.table import Column, Table

    from shipyard.pipelines import list_cycles
    from shipyard.pipelines.gates import gate_names

    cycles = list_cycles(acting(ctx, Scope.MODELS_READ, name).store, name, limit=limit)
    if as_json:
        print_json([cycle.to_dict() for cycle in cycles])
        return
    if not cycles:
        console.print(f"{esc(name)} has no continuous-training cycles yet.")
        return
    gates = gate_names()  # the registered gates, then the roll-out's
    table = Table(
        "cycle",
        Column("started", no_wrap=True),
        Column("cause", no_wrap=True),
        *gates,
        "candidate",
        "result",
    )
    for cycle in cycles:
        marks = []
        for gate in gates:
            found = cycle.gate(gate)
            marks.append(MARKS.get(found["status"], "?") if found else "·")
        table.add_row(
            str(cycle.id),
            cycle.created_at.strftime("%m-%d %H:%M:%S"),
            esc(cycle.cause),
            *marks,
            esc(cycle.candidate or "—"),
            STATES.get(cycle.state, esc(cycle.state)),
        )
    console.print(table)
    _print_cycle(cycles[0], header=False)


def _print_cycle(cycle: Cycle, *, header: bool = True) -> None:
    from shipyard.pipelines.gates import gate_summary

    if header:
        console.print(
            f"Cycle {esc(cycle.id)} of {esc(cycle.model)} ({esc(cycle.cause)}): "
            f"{STATES.get(cycle.state, esc(cycle.state))}"
        )
    if cycle.reason:
        console.print(f"  {esc(cycle.reason)}")
    for gate in cycle.gates:
        console.print(
            f"  {MARKS.get(gate['status'], '?')} {esc(gate['gate'])}: {esc(gate_summary(gate))}"
        )


def _config_for(state: CliState, name: str) -> Config:
    config = state.config()
    if name != config.model.name:
        raise ConfigError(
            f"This project trains {config.model.name!r}, not {name!r}.",
            hint=f"Run from {name}'s project folder, or pass --config its shipyard.yaml.",
        )
    return config
