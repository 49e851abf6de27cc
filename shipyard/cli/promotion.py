"""``shipyard evaluate``, ``promote``, ``approve`` and ``rollback``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, RefArg
from shipyard.cli.output import console, esc, print_json, steps
from shipyard.cli.state import CliState

__all__ = ["approve_cmd", "evaluate_cmd", "promote_cmd", "rollback_cmd"]


def evaluate_cmd(
    ctx: typer.Context,
    ref: RefArg,
    golden: Annotated[
        Path | None, typer.Option(help="Golden set (default: evaluation.golden).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a version and the champion on the golden set; exit 1 if any criterion fails."""
    from shipyard.evaluation.evaluate import evaluate_version
    from shipyard.registry import parse_ref

    state: CliState = ctx.obj
    with steps(quiet=as_json) as on_step:
        record = evaluate_version(
            state.project(),
            parse_ref(ref),
            golden=golden,
            on_step=on_step,
        )
    if as_json:
        print_json(record.to_dict())
    else:
        from shipyard.evaluation import ScorecardResult

        console.print(ScorecardResult.from_dict(record.result).render(), markup=False)
        against = (
            f"champion {record.model}/{record.champion_version}"
            if record.champion_version
            else "no champion"
        )
        verdict = "[green]PASSED[/]" if record.passed else "[red]FAILED[/]"
        console.print(
            f"{esc(record.model)}/{esc(record.version)} {verdict} on golden set "
            f"{esc(record.golden_digest[:12])} (vs {esc(against)})"
        )
        console.print(f"report: {esc(record.report_path)}")
    if not record.passed:
        raise typer.Exit(1)


def promote_cmd(
    ctx: typer.Context,
    ref: RefArg,
    to: Annotated[str, typer.Option("--to", help="champion or challenger.")],
    force: Annotated[bool, typer.Option(help="Override failed checks (needs --reason).")] = False,
    reason: Annotated[str, typer.Option(help="Why; recorded in the history.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Move an alias to a version with a passing scorecard (and approval, if required)."""
    from shipyard.governance.promotion import promote
    from shipyard.registry import parse_ref

    state: CliState = ctx.obj
    result = promote(
        state.project(),
        parse_ref(ref),
        to=to,
        force=force,
        reason=reason,
    )
    if as_json:
        print_json(result.to_dict())
        return
    was = f" (was {result.previous})" if result.previous else ""
    console.print(
        f"[green]✓[/] {esc(result.model)}@{esc(result.alias)} → {esc(result.version)}{esc(was)}"
    )
    if result.forced:
        console.print("[yellow]override recorded:[/] " + esc("; ".join(result.overridden)))
    if result.alias == "champion":
        console.print(
            "model card signed"
            if result.signed
            else "[yellow]model card not signed:[/] run `shipyard keys init` to sign "
            "future promotions"
        )


def approve_cmd(
    ctx: typer.Context,
    ref: RefArg,
    comment: Annotated[str, typer.Option(help="Why this version may ship.")],
    as_json: JsonOpt = False,
) -> None:
    """Approve a version for promotion to champion (recorded with your name)."""
    from shipyard.governance.approvals import approve
    from shipyard.registry import get_version, parse_ref

    state: CliState = ctx.obj
    project = state.project()
    version = get_version(project.client, parse_ref(ref))
    approval = approve(project, version, comment=comment)
    if as_json:
        print_json(approval.to_dict())
        return
    console.print(
        f"[green]✓[/] {esc(approval.actor)} approved {esc(approval.model)}/{esc(approval.version)}"
    )


def rollback_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    to: Annotated[str | None, typer.Option("--to", help="An earlier champion version.")] = None,
    reason: Annotated[str, typer.Option(help="Why; recorded in the history.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Move champion back to the previous champion (or --to an earlier one)."""
    from shipyard.registry.aliases import rollback

    project = acting(ctx, Scope.MODELS_DEPLOY, name)
    # No MLflow client: the alias moves in MLflow's table, in the transaction that records
    # it, and the command never pays for importing MLflow.
    move = rollback(project.store, None, name, to=to, reason=reason)
    if as_json:
        print_json(move.to_dict())
        return
    console.print(
        f"[green]✓[/] {esc(name)}@champion → {esc(move.to_version)} (was {esc(move.from_version)})"
    )
