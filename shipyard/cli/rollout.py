"""``shipyard rollout``: take a candidate from first traffic to champion, step by step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, RefArg, parse_interval
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Group

    from shipyard.config import Config
    from shipyard.delivery.guardrails import GuardrailReport
    from shipyard.delivery.rollout import Rollout
    from shipyard.store import Store

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
        str | None,
        typer.Option(help="Shortest time per step, e.g. 30s, 10m, 1h [delivery.step_seconds]."),
    ] = None,
    min_requests: Annotated[
        int | None,
        typer.Option(
            min=0, help="Fewest candidate requests before a step may pass [delivery.min_requests]."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start rolling NAME/VERSION out; servers follow within one polling interval."""
    from shipyard.delivery.rollout import Strategy, start_rollout
    from shipyard.registry import get_version, parse_ref
    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version

    project = acting(ctx, Scope.MODELS_DEPLOY, parse_ref(ref).name)
    config, client = project.config, project.client
    version = get_version(client, parse_ref(ref))
    name, number = version.name, str(version.version)
    rollout = start_rollout(
        project.store,
        name,
        number,
        champion=trusted_version(project.store, name, CHAMPION),
        strategy=cast(Strategy, strategy),  # start_rollout refuses unknown strategies
        steps=_steps(steps),
        step_seconds=(
            parse_interval(step_duration, flag="--step-duration")
            if step_duration
            else config.delivery.step_seconds
        ),
        min_requests=min_requests if min_requests is not None else config.delivery.min_requests,
    )
    if as_json:
        print_json(rollout.to_dict())
        return
    console.print(
        f"[green]✓[/] {esc(name)}/{esc(number)}: {esc(rollout.strategy)} roll-out started at "
        f"{esc(rollout.describe_step())} (champion {esc(rollout.champion or 'none')})."
    )


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    name: NameArg,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Keep the view up to date until the roll-out ends (Ctrl-C stops)."
        ),
    ] = False,
    every: Annotated[str, typer.Option(help="How often --watch refreshes, e.g. 1s, 5s.")] = "1s",
    as_json: JsonOpt = False,
) -> None:
    """Show NAME's roll-out: step, traffic, guardrails against their limits, time left."""
    from shipyard.delivery.rollout import active_rollout

    if watch and as_json:
        raise ConfigError("--watch and --json do not go together.", hint="Choose one.")
    interval = parse_interval(every, flag="--every")
    project = acting(ctx, Scope.MODELS_READ, name)
    config, store = project.config, project.store
    rollout = active_rollout(store, name)
    if rollout is None:
        if as_json:
            print_json(None)
        else:
            last = _last_outcome(store, name)
            console.print(f"{esc(name)} has no roll-out in progress.{esc(last)}", soft_wrap=True)
        return
    if as_json:
        report = _guardrails(config, rollout)
        print_json({**rollout.to_dict(), "guardrails": report and report.to_dict()})
        return
    if not watch:
        console.print(_view(config, store, rollout))
        return
    _watch(config, store, rollout, interval)


def _watch(config: Config, store: Store, rollout: Rollout, interval: float) -> None:
    """Refresh the view every ``interval`` seconds until the roll-out ends or Ctrl-C."""
    import time

    from rich.live import Live

    from shipyard.delivery.rollout import active_rollout, get_rollout

    try:
        with Live(_view(config, store, rollout), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                current = active_rollout(store, rollout.model)
                if current is None or current.id != rollout.id:
                    live.update(_view(config, store, get_rollout(store, rollout.id)))
                    break
                live.update(_view(config, store, current), refresh=True)
    except KeyboardInterrupt:
        return  # Ctrl-C only stops watching
    finally:
        if not console.is_terminal:
            console.line()  # off a terminal, Live ends its only frame without a newline
    console.print(_outcome(get_rollout(store, rollout.id)), soft_wrap=True)


def _view(config: Config, store: Store, rollout: Rollout) -> Group:
    """The status view: where the roll-out is, its guardrails, its history."""
    from datetime import UTC, datetime

    from rich.console import Group
    from rich.table import Table

    report = _guardrails(config, rollout)
    step = f"At step {rollout.step_index + 1} of {len(rollout.steps)} ({rollout.describe_step()})"
    if rollout.state == "running":
        left = rollout.remaining(datetime.now(UTC))
        served = f" ({report.requests} so far)" if report is not None else ""
        step += f", {left:.0f} s left, needs {rollout.min_requests} requests{served}"
    elif rollout.state == "paused":
        step += ", paused (the step's clock starts again on resume)"
    elif rollout.state == "promoting":
        step += ", every step passed: waiting to be promoted"
    header = (
        f"[bold]{esc(rollout.model)}/{esc(rollout.candidate)}[/] against champion "
        f"{esc(rollout.champion)}: {rollout.state.replace('_', ' ')}\n{esc(step)}\n"
        f"Traffic: {esc(_traffic(rollout))}"
    )
    parts: list[Any] = [header]
    if report is not None:
        if report.champion_since is not None:
            parts.append(
                f"The champion answers nothing in this step: its side is what it answered "
                f"since {report.champion_since.isoformat()[:19]}."
            )
        parts.append(_checks_view(report.checks, f"Guardrails: {esc(report.reason)}"))
    elif rollout.history and rollout.history[-1].get("evidence", {}).get("checks"):
        last = rollout.history[-1]
        parts.append(
            _checks_view(
                last["evidence"]["checks"], f"Guardrails when {last['to'].replace('_', ' ')}"
            )
        )
    table = Table("at", "from", "to", "step", "reason", title="History")
    for entry in rollout.history:
        table.add_row(
            entry["at"][:19],
            str(entry["from"]),
            esc(entry["to"]),
            str(entry["step_index"] + 1),
            esc(entry["reason"]),
        )
    parts.append(table)
    return Group(*parts)


def _guardrails(config: Config, rollout: Rollout) -> GuardrailReport | None:
    """The current step's guardrails (running or paused roll-outs), with config limits."""
    from shipyard.delivery.guardrails import evaluate_guardrails
    from shipyard.logs.root import project_log_root

    if rollout.state not in ("running", "paused"):
        return None
    root = project_log_root(config)
    task = config.model.classical_task if rollout.model == config.model.name else None
    return evaluate_guardrails(
        root,
        rollout,
        since=rollout.step_started_at,
        settings=config.delivery,
        task=task,
        min_log_coverage=config.monitoring.min_log_coverage,
    )


def _checks_view(checks: dict[str, Any], title: str) -> Group:
    """Each guardrail: the candidate's value, the champion's, the limit, verdict, samples;
    then why, for those breached or still gathering evidence."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from shipyard.delivery.guardrails import GUARDRAILS, format_value

    colours = {"breach": "red", "ok": "green", "gathering": "yellow"}
    table = Table(title=title, title_justify="left")
    for column in ("guardrail", "candidate", "champion", "limit", "verdict", "samples"):
        table.add_column(column, no_wrap=True)
    notes = []
    for name in sorted(checks, key=lambda n: GUARDRAILS.index(n) if n in GUARDRAILS else 99):
        check = checks[name]
        unit = str(check.get("unit", ""))
        verdict = str(check.get("verdict", ""))
        colour = colours.get(verdict)
        table.add_row(
            esc(name),
            format_value(check.get("value"), unit),
            format_value(check.get("champion"), unit),
            format_value(check.get("limit"), unit),
            f"[{colour}]{verdict}[/]" if colour else verdict,
            str(check.get("samples", "")),
        )
        if verdict in ("breach", "gathering") and check.get("reason"):
            notes.append(Text(f"{name}: {check['reason']}"))
    return Group(table, *notes)


def _traffic(rollout: Rollout) -> str:
    """Who answers what in the current step."""
    from shipyard.delivery.rollout import step_kind

    champion = f"champion {rollout.champion}" if rollout.champion else "no champion"
    if rollout.state in ("rolled_back", "aborted"):
        return f"{champion} 100 % (all traffic back)"
    if rollout.state == "promoted":
        return f"{rollout.candidate} is the champion"
    share = rollout.step
    if step_kind(rollout.strategy, rollout.step_index) == "shadow":
        return f"{champion} 100 %; candidate {rollout.candidate} shadows {share:g} % of requests"
    return f"{champion} {100 - share:g} %, candidate {rollout.candidate} {share:g} %"


def _outcome(rollout: Rollout) -> str:
    """How a roll-out ended, in one line."""
    words = {"rolled_back": "rolled back", "aborted": "aborted", "promoted": "promoted"}
    state = words.get(rollout.state, rollout.state)
    return (
        f"{rollout.model}/{rollout.candidate} was {state} at {rollout.describe_step()}: "
        f"{rollout.reason}"
    )


def _last_outcome(store: Store, name: str) -> str:
    """`` The last one, …`` from the newest roll-out of ``name``, or nothing."""
    from shipyard.delivery.rollout import get_rollout
    from shipyard.store.event_kinds import EventKind

    started = store.events(kind=EventKind.ROLLOUT_STARTED, subject=f"model:{name}/", limit=1)
    if not started or "id" not in started[0].payload:
        return ""
    return f" The last one: {_outcome(get_rollout(store, int(started[0].payload['id'])))}."


@app.command("pause")
def pause_cmd(
    ctx: typer.Context, name: NameArg, reason: ReasonOpt = "", as_json: JsonOpt = False
) -> None:
    """Hold NAME's roll-out at its current step (traffic stays as it is)."""
    from shipyard.delivery.rollout import pause_rollout

    rollout = pause_rollout(acting(ctx, Scope.MODELS_DEPLOY, name).store, name, reason)
    if as_json:
        print_json(rollout.to_dict())
        return
    console.print(f"Paused at {esc(rollout.describe_step())}.")


@app.command("resume")
def resume_cmd(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Carry on with NAME's paused roll-out."""
    from shipyard.delivery.rollout import resume_rollout

    rollout = resume_rollout(acting(ctx, Scope.MODELS_DEPLOY, name).store, name)
    if as_json:
        print_json(rollout.to_dict())
        return
    console.print(f"Resumed at {esc(rollout.describe_step())}.")


@app.command("abort")
def abort_cmd(
    ctx: typer.Context, name: NameArg, reason: ReasonOpt = "", as_json: JsonOpt = False
) -> None:
    """Stop NAME's roll-out; all traffic goes back to the champion."""
    from shipyard.delivery.rollout import abort_rollout

    rollout = abort_rollout(acting(ctx, Scope.MODELS_DEPLOY, name).store, name, reason)
    if as_json:
        print_json(rollout.to_dict())
        return
    console.print(f"Aborted {esc(name)}/{esc(rollout.candidate)}; the champion has all traffic.")


@app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    name: NameArg,
    force: Annotated[bool, typer.Option(help="Override failed checks (needs --reason).")] = False,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Skip the remaining steps: make the candidate champion (approval rules apply)."""
    from shipyard.delivery.rollout import active_rollout, complete_rollout
    from shipyard.errors import NotFoundError
    from shipyard.governance.promotion import promote
    from shipyard.registry.refs import ModelRef

    project = acting(ctx, Scope.MODELS_DEPLOY, name)
    store = project.store
    rollout = active_rollout(store, name)
    if rollout is None:
        raise NotFoundError(f"{name} has no roll-out in progress.", hint="Nothing to promote.")
    result = promote(
        project,
        ModelRef(name, version=rollout.candidate),
        to="champion",
        force=force,
        reason=reason,
    )
    completed = complete_rollout(store, name)
    if as_json:
        print_json({"promotion": result.to_dict(), "rollout": completed.to_dict()})
        return
    console.print(
        f"[green]✓[/] {esc(name)}@champion → {esc(rollout.candidate)}; roll-out complete."
    )


def _steps(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part.strip().rstrip("%")) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"--steps {text!r} is not a list of percentages.", hint="Write e.g. 10,50,100."
        ) from None
