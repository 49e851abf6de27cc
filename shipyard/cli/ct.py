"""``shipyard retrain NAME``, ``shipyard ct status NAME``, and a cycle step by step.

``shipyard ct start NAME --cause JSON`` and ``shipyard ct step CYCLE GATE`` are what an
orchestrator runs, one process per gate (``shipyard pipeline export`` writes the
pipeline): see docs/orchestrators.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, err_console, esc, print_json, steps
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.pipelines import Cycle

__all__ = ["app", "cost_evidence", "retrain_cmd", "start_cmd", "status_cmd", "step_cmd"]

app = typer.Typer(
    help="Continuous training: the last cycles and their gates.", no_args_is_help=True
)
CAUSE_HELP = (
    "The trigger as JSON: the one a cycle stores (kind, key, cause, …), or "
    '{"kind": "manual", "reason": …}, {"kind": "drift"} (the pending retrain_requested), '
    '{"kind": "schedule", "fired_at": …}, {"kind": "new_data"}.'
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
    """Retrain NAME now: validate → retrain → scorecard → feature skew, then a roll-out.

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


@app.command("start")
def start_cmd(
    ctx: typer.Context,
    name: NameArg,
    cause: Annotated[str, typer.Option(help=CAUSE_HELP)] = '{"kind": "manual"}',
    force: Annotated[
        bool, typer.Option(help="Ignore the cooldown, new-data and performance-loss guards.")
    ] = False,
    id_file: Annotated[
        Path | None,
        typer.Option(help="Also write the cycle id to this file (an orchestrator's output)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a cycle of NAME for a trigger, after the guards: the first step of a pipeline.

    Records the cycle and its cause exactly as the agent does, and prints its id. A
    trigger the guards turn down is recorded as skipped or deferred, and exits 1 so the
    orchestrator stops. Then run `shipyard ct step CYCLE validate`, and on through promote.
    """
    from shipyard.pipelines import ContinuousTraining
    from shipyard.pipelines.steps import parse_cause, start

    state: CliState = ctx.obj
    _config_for(state, name)
    loop = ContinuousTraining(state.project())
    cycle = start(loop, parse_cause(cause, loop), force=force)
    if cycle.state == "running" and id_file is not None:
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(str(cycle.id))
    if as_json:
        print_json(cycle.to_dict())
    else:
        _print_cycle(cycle)
        if cycle.state == "running":
            console.print(f"Next: `shipyard ct step {cycle.id} validate`.")
    if cycle.state != "running":
        raise typer.Exit(1)


@app.command("step")
def step_cmd(
    ctx: typer.Context,
    cycle_id: Annotated[int, typer.Argument(metavar="cycle", help="The cycle's id.")],
    gate: Annotated[
        str,
        typer.Argument(
            help="validate, retrain, scorecard (or another registered gate), "
            "shadow, canary or promote."
        ),
    ],
    timeout: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds a roll-out gate waits for the agent to move the roll-out."
        ),
    ] = 6 * 3600.0,
    poll: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks at the roll-out.")
    ] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Run one gate of CYCLE (or wait for the roll-out to pass it) and record it.

    Exits 0 when the gate passed (or was skipped), 1 when it failed, halting the cycle,
    or when a roll-out gate was not reached within --timeout. A gate already recorded
    is reported again, not re-run, so a retried step is safe.
    """
    from shipyard.pipelines import ContinuousTraining
    from shipyard.pipelines.steps import run_step

    state: CliState = ctx.obj
    loop = ContinuousTraining(state.project())
    with steps(quiet=as_json) as on_step:
        on_step(f"cycle {cycle_id}: {gate}")

        def waiting(where: str) -> None:  # a line in the orchestrator's log as it moves
            err_console.print(esc(where))
            on_step(f"cycle {cycle_id}: {gate}: {where}")

        report = run_step(loop, cycle_id, gate, timeout=timeout, poll=poll, on_wait=waiting)
    if as_json:
        print_json(report.to_dict())
    else:
        mark = MARKS.get(report.status, "[red]✗[/]")
        (console if report.ok else err_console).print(f"{mark} {esc(report.message)}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[int, typer.Option(min=1, help="How many cycles to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """NAME's last cycles: cause, gate outcomes in order, candidate, result.

    With the cost guard on (ct.cost_per_error or ct.cost_kpi), each cycle shows the
    expected loss against the retraining cost it weighed; --json has them under "cost".
    """
    from rich.table import Column, Table

    from shipyard.pipelines import list_cycles
    from shipyard.pipelines.gates import gate_names

    cycles = list_cycles(acting(ctx, Scope.MODELS_READ, name).store, name, limit=limit)
    if as_json:
        print_json([{**cycle.to_dict(), "cost": cost_evidence(cycle)} for cycle in cycles])
        return
    if not cycles:
        console.print(f"{esc(name)} has no continuous-training cycles yet.")
        return
    gates = gate_names()  # the registered gates, then the roll-out's
    weighed = any(cost_evidence(cycle) for cycle in cycles)
    table = Table(
        "cycle",
        Column("started", no_wrap=True),
        Column("cause", no_wrap=True),
        *([Column("loss vs retrain", no_wrap=True)] if weighed else []),
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
            *([_cost_cell(cost_evidence(cycle))] if weighed else []),
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


def cost_evidence(cycle: Cycle) -> dict[str, Any] | None:
    """The cost guard's numbers as the cycle recorded them, if it weighed the retrain."""
    guards = cycle.gate("guards")
    found = ((guards or {}).get("evidence") or {}).get("cost")
    return found if isinstance(found, dict) else None


def _cost_cell(cost: dict[str, Any] | None) -> str:
    """``8.00 ≥ 5.00 EUR``: expected loss against retraining cost, or ``?`` when unknown."""
    if cost is None:
        return "·"
    retrain = cost.get("retrain_cost")
    expected = cost.get("expected_loss")
    currency = esc(cost.get("currency") or "")
    if expected is None or retrain is None:
        return f"? vs {retrain or 0:.2f} {currency}"
    sign = "≥" if cost.get("allowed") else "<"
    return f"{expected:.2f} {sign} {retrain:.2f} {currency}"


def _config_for(state: CliState, name: str) -> Config:
    config = state.config()
    if name != config.model.name:
        raise ConfigError(
            f"This project trains {config.model.name!r}, not {name!r}.",
            hint=f"Run from {name}'s project folder, or pass --config its shipyard.yaml.",
        )
    return config
