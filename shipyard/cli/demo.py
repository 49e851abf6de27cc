"""``shipyard demo``: the whole loop (drift → retrain → gates → canary → champion, and a
rollback) on river's Agrawal benchmark, in a fresh workspace; ``--llm``: the LLM loop
(prompt v1 in production, v2 canaried, judged, rolled back) on the assistant example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, print_json
from shipyard.cli.state import os_user_principal
from shipyard.errors import ConfigError

__all__ = ["demo_cmd"]

_LOANS = Path(".demo/loans")
_ASSISTANT = Path(".demo/assistant")


def demo_cmd(
    folder: Annotated[
        Path, typer.Option(help="Fresh workspace to create (removed first with --fresh).")
    ] = _LOANS,
    fresh: Annotated[
        bool, typer.Option(help="Delete the folder first if it holds an earlier demo.")
    ] = True,
    rate: Annotated[float, typer.Option(min=10.0, help="Live requests per second.")] = 150.0,
    before_switch: Annotated[
        int, typer.Option(min=200, help="Requests before the approval policy switches.")
    ] = 1500,
    quick: Annotated[
        bool,
        typer.Option(
            help="Shorter roll-out steps and fewer samples per step (what the test runs)."
        ),
    ] = False,
    llm: Annotated[
        bool,
        typer.Option(
            "--llm",
            help="The LLM loop instead, offline on a stand-in provider: prompt v1 in "
            "production, v2 canaried, the judge flags it, automatic rollback, cost and cache "
            "savings (workspace .demo/assistant unless --folder).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train, serve (2 workers + agent), stream traffic, switch the concept, and watch the
    loop retrain, gate, shadow, canary and promote; then roll back a worse candidate.
    With --llm: the same loop for an LLM behind the OpenAI-compatible gateway."""
    import shutil

    from shipyard.demo.workspace import holds_a_demo

    if llm and folder == _LOANS:
        folder = _ASSISTANT
    target = folder.resolve()
    if target.exists():
        if not holds_a_demo(target):
            raise ConfigError(
                f"{target} already exists and holds no earlier demo, so it is left alone.",
                hint="Pass another --folder, or remove that folder yourself.",
            )
        if not fresh:
            raise ConfigError(
                f"{target} holds an earlier demo.",
                hint="Pass another --folder, or --fresh to replace the earlier demo.",
            )
        shutil.rmtree(target)
    if llm:
        from shipyard.demo.llm import LlmDemoOptions, run_llm_demo

        found = run_llm_demo(LlmDemoOptions(folder=target, principal=os_user_principal()), console)
        if as_json:
            print_json(found.to_dict())
        if not found.ok:
            raise typer.Exit(1)
        return
    from shipyard.demo.run import DemoOptions, run_demo

    options = DemoOptions(
        folder=target,
        rate=rate,
        before_switch=before_switch,
        quick=quick,
        principal=os_user_principal(),
    )
    summary = run_demo(options, console)
    if as_json:
        print_json(summary.to_dict())
    if not summary.ok:
        raise typer.Exit(1)
