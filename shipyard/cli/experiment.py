"""``shipyard experiment``: A/B experiments that split traffic and declare a winner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.store.experiments import Experiment

__all__ = ["app"]

app = typer.Typer(
    help="A/B experiments: split traffic between versions and declare a winner, sequentially.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Model name.")]


@app.command("start")
def start_cmd(
    ctx: typer.Context,
    name: NameArg,
    arms: Annotated[str, typer.Option(help="Versions to compare, the champion among them: 3,4.")],
    metric: Annotated[
        str,
        typer.Option(
            help="accuracy, error_rate, mse, rmse, mae (on labels) or outcome:NAME "
            "(business outcomes posted to POST /v1/feedback)."
        ),
    ],
    split: Annotated[
        str | None, typer.Option(help="Traffic percentages per arm, e.g. 50,50 (default even).")
    ] = None,
    min_effect: Annotated[
        float | None,
        typer.Option(
            help="Smallest difference worth acting on, in the metric's units "
            "[experiments.min_effect]."
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--name", help="The experiment's name (default: arms and time).")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Chance of a false winner [experiments.alpha].")
    ] = None,
    power: Annotated[
        float | None,
        typer.Option(help="Chance of finding a min_effect difference [experiments.power]."),
    ] = None,
    lower_is_better: Annotated[
        bool, typer.Option(help="For outcome:NAME, smaller values are better (costs, delays).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start an experiment on NAME: split its live traffic between the arms, sticky by key."""
    from shipyard.delivery.experiments import start_experiment

    project = acting(ctx, Scope.MODELS_DEPLOY, name)
    started = start_experiment(
        project,
        name,
        _items(arms, "--arms"),
        metric=metric,
        split=[_number(item, "--split") for item in _items(split, "--split")] if split else None,
        name=experiment,
        min_effect=min_effect,
        alpha=alpha,
        power=power,
        lower_is_better=lower_is_better,
    )
    if as_json:
        print_json(started.to_dict())
        return
    shares = ", ".join(f"{a} {s:.0%}" for a, s in zip(started.arms, started.split, strict=True))
    console.print(
        f"Experiment {esc(started.name)} on {esc(name)} started: {esc(shares)}, "
        f"deciding on {esc(started.metric)}."
    )
    if project.config.serving.sticky_key is None:
        console.print(
            "serving.sticky_key is not set: each request draws an arm at random. Set it "
            "(e.g. header:X-User-ID) to keep each caller on one arm."
        )


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    name: NameArg,
    experiment: Annotated[
        str | None, typer.Option("--name", help="Which experiment (default: the current one).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show NAME's experiment: its arms, the evidence so far and the test's verdict."""
    from shipyard.delivery.experiments import decide_experiment
    from shipyard.store.experiments import find_experiment

    project = acting(ctx, Scope.MODELS_READ, name)
    found = find_experiment(project.store, name, experiment)
    verdict = decide_experiment(project, found).to_dict() if found.state == "running" else None
    if as_json:
        print_json({**found.to_dict(), "verdict": verdict})
        return
    _print_experiment(found, verdict)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this model's.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List experiments, newest first."""
    from rich.table import Table

    from shipyard.store.experiments import list_experiments

    project = acting(ctx, Scope.MODELS_READ, name)
    found = list_experiments(project.store, model=name)
    if as_json:
        print_json([e.to_dict() for e in found])
        return
    view = Table("model", "name", "arms", "metric", "state", "winner", "started")
    for e in found:
        view.add_row(
            e.model,
            e.name,
            ",".join(e.arms),
            e.metric,
            e.state,
            e.winner or "",
            f"{e.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(view, markup=False)  # every cell is data


@app.command("stop")
def stop_cmd(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option(help="Why; recorded in the audit log.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Stop NAME's experiment; all traffic goes back to the champion."""
    from shipyard.delivery.experiments import stop_experiment

    stopped = stop_experiment(acting(ctx, Scope.MODELS_DEPLOY, name), name, reason)
    if as_json:
        print_json(stopped.to_dict())
        return
    console.print(
        f"Experiment {esc(stopped.name)} on {esc(name)} stopped; all traffic goes to the champion."
    )


def _print_experiment(found: Experiment, verdict: dict[str, Any] | None) -> None:
    from rich.table import Table

    effect = "none" if found.min_effect is None else f"{found.min_effect:g}"
    console.print(
        f"{esc(found.model)} experiment {esc(found.name)}: {esc(found.state)}"
        + (f", winner {esc(found.winner)}" if found.winner else "")
        + f" — {esc(found.metric)}, alpha {found.alpha:g}, power {found.power:g}, "
        f"min effect {esc(effect)}"
    )
    shown = verdict or found.decision
    counts, means = shown.get("counts") or {}, shown.get("means") or {}
    view = Table("arm", "share", "observations", "mean")
    for arm, share in zip(found.arms, found.split, strict=True):
        mean = means.get(arm)
        view.add_row(
            arm, f"{share:.0%}", str(counts.get(arm, 0)), "" if mean is None else f"{mean:.4g}"
        )
    console.print(view, markup=False)
    if shown.get("reason"):
        console.print(esc(str(shown["reason"])))


def _items(text: str | None, flag: str) -> list[str]:
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    if not items:
        hint = f"Give a comma-separated list, e.g. {flag} 3,4."
        raise ConfigError(f"{flag} is empty.", hint=hint)
    return items


def _number(text: str, flag: str) -> float:
    try:
        return float(text.rstrip("%"))
    except ValueError:
        raise ConfigError(
            f"{flag} item {text!r} is not a number.", hint="E.g. --split 50,50."
        ) from None
