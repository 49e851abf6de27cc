"""``shipyard llm evaluate`` (a judge run now) and ``shipyard llm evals`` (the runs so far)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, RefArg
from shipyard.cli.output import console, esc, print_json

if TYPE_CHECKING:
    from shipyard.llm.evals_store import LlmEvaluation

__all__ = ["evals_cmd", "evaluate_cmd", "register"]


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``evals`` to ``shipyard llm``."""
    app.command("evaluate")(evaluate_cmd)
    app.command("evals")(evals_cmd)


def evaluate_cmd(
    ctx: typer.Context,
    ref: RefArg,
    kind: Annotated[
        str, typer.Option(help="gold (the gold set) or production (a sample of answers).")
    ] = "gold",
    sample: Annotated[
        int | None,
        typer.Option(min=1, help="Production answers to judge (default: llm.judge.sample)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge an LLM version now; a gold run is its judge scorecard (exit 1 if it fails)."""
    from shipyard.errors import ConfigError
    from shipyard.llm.evals import evaluate_llm
    from shipyard.registry import parse_ref

    if kind not in ("gold", "production"):
        raise ConfigError(f"--kind {kind!r} is not gold or production.", hint="Pick one.")
    parsed = parse_ref(ref)
    project = acting(ctx, Scope.MODELS_TRAIN, parsed.name)
    # The provider pool reads keys from this process's environment, and is closed after.
    run = evaluate_llm(project, parsed, kind=kind, sample=sample)  # type: ignore[arg-type]
    if as_json:
        print_json(run.to_dict())
    else:
        _show(run)
    if run.passed is False:
        raise typer.Exit(1)


def evals_cmd(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Model (default: model.name).")] = None,
    version: Annotated[str | None, typer.Option(help="Only this version's runs.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only gold or production runs.")] = None,
    last: Annotated[int, typer.Option(min=1, help="How many runs to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List judge runs (newest first); with --version, also its LLM signals vs the bands."""
    from shipyard.llm.evals_store import list_runs
    from shipyard.llm.signals import llm_signals
    from shipyard.registry.aliases import CHAMPION, alias_moves, rollback_targets
    from shipyard.registry.pointers import trusted_version

    state = ctx.obj
    name = model or state.config().model.name
    project = acting(ctx, Scope.MODELS_READ, name)
    runs = list_runs(project.store, name, version=version, kind=kind, limit=last)
    signals = []
    if version is not None:
        store = project.store
        champion = trusted_version(store, name, CHAMPION)
        stack = rollback_targets(alias_moves(store, name, CHAMPION))
        previous = stack[-2] if len(stack) >= 2 and version == champion else None
        signals = llm_signals(
            store,
            project.config.llm.bands,
            name,
            version,
            champion=champion,
            previous_champion=previous,
        )
    if as_json:
        print_json(
            {
                "runs": [_brief(run) for run in runs],
                "signals": [signal.to_dict() for signal in signals],
            }
        )
        return
    if not runs:
        console.print(
            f"No judge runs of {esc(name)} yet: run `shipyard llm evaluate {esc(name)}/N`."
        )
    for run in runs:
        console.print(_line(run), markup=False)
    for signal in signals:
        value = "n/a" if signal.value is None else f"{signal.value:.3g}"
        console.print(
            f"{signal.name:<18} {value:>8}  {signal.level:<8} bands {list(signal.bands)}",
            markup=False,
        )


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _line(run: LlmEvaluation) -> str:
    verdict = {True: "passed", False: "FAILED", None: ""}[run.passed]
    return (
        f"#{run.id} {run.created_at:%Y-%m-%d %H:%M} {run.model}/{run.version} {run.kind:<10} "
        f"score {_number(run.score)} guardrails {_number(run.guardrail_rate)} "
        f"hallucinations {_number(run.hallucination_rate)} kappa {_number(run.kappa)} "
        f"rows {run.rows} failures {run.failures} {verdict}"
    ).rstrip()


def _brief(run: LlmEvaluation) -> dict[str, object]:
    data = run.to_dict()
    data.pop("items", None)
    return data


def _show(run: LlmEvaluation) -> None:
    console.print(_line(run), markup=False)
    for criterion, mean in sorted(run.criteria.items()):
        console.print(f"  {criterion}: {mean:.2f}", markup=False)
    if run.champion_version:
        console.print(
            f"  champion {run.model}/{run.champion_version}: {_number(run.champion_score)}",
            markup=False,
        )
    found = run.agreement
    if found is not None:
        console.print(
            f"  judge vs people: kappa {_number(found.kappa)} "
            f"[{_number(found.low)}, {_number(found.high)}] on {found.n} items"
            + (" (judge drift)" if run.judge_drift else ""),
            markup=False,
        )
    for item in run.items:
        if not item.verdict.ok:
            console.print(f"  {item.id}: failed: {item.verdict.error}", markup=False)
        elif item.guardrail_hits:
            console.print(f"  {item.id}: guardrail {', '.join(item.guardrail_hits)}", markup=False)
