"""``shipyard train`` and ``shipyard reproduce``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.output import console, esc, print_json, steps
from shipyard.cli.state import CliState

if TYPE_CHECKING:
    from shipyard.training import ReproduceReport

__all__ = ["reproduce_cmd", "train_cmd"]


def train_cmd(
    ctx: typer.Context,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Override a parameter: -p key=value (repeatable)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override train.seed.")] = None,
    trigger: Annotated[str, typer.Option(help="Why this run happened (recorded).")] = "manual",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Snapshot → validate → train → log → register → model card, as one reproducible run."""
    from shipyard.training import parse_overrides, train

    state: CliState = ctx.obj
    overrides = parse_overrides(param or [])
    with steps(quiet=as_json) as on_step:
        result = train(
            state.project(),
            params=overrides,
            seed=seed,
            trigger=trigger,
            on_step=on_step,
        )
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"[green]✓[/] Registered [bold]{esc(result.name)}/{esc(result.version)}[/] "
        f"({esc(result.flavour)}) from run {esc(result.run_id)}"
    )
    console.print(
        f"  data {esc(result.data_digest[:12])}"
        + ("" if result.validated else " (not validated: no train.schema set)")
    )
    for name, value in sorted(result.metrics.items()):
        console.print(f"  {esc(name)} = {value:.6g}")


def reproduce_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")],
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Relative tolerance for metrics.")
    ] = 1e-6,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Retrain a version from its recorded params, seed and data; compare; exit 1 if it differs."""
    from shipyard.registry import parse_ref
    from shipyard.training import reproduce

    state: CliState = ctx.obj
    with console.status(f"Reproducing {ref}…"):
        report = reproduce(state.project(), parse_ref(ref), tolerance=tolerance)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.reproduced:
        raise typer.Exit(1)


def _print_report(report: ReproduceReport) -> None:
    from rich.table import Table

    table = Table("metric", "recorded", "reproduced", "match")
    for m in report.metrics:
        table.add_row(
            esc(m.name),
            f"{m.recorded:.6g}",
            "—" if m.reproduced is None else f"{m.reproduced:.6g}",
            "[green]yes[/]" if m.within_tolerance else "[red]no[/]",
        )
    console.print(table)
    console.print(
        f"predictions: {esc(report.predictions_compared - report.predictions_differing)} of "
        f"{esc(report.predictions_compared)} identical"
    )
    for note in report.notes:
        console.print(f"[yellow]note:[/] {esc(note)}")
    label = f"{report.name}/{report.version}"
    if report.reproduced:
        console.print(f"[green]✓ Reproduced[/] {esc(label)}")
    else:
        console.print(f"[red]✗ Not reproduced[/] {esc(label)}:")
        for line in report.differences:
            console.print(f"  - {esc(line)}")
