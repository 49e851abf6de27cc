"""``shipyard demo``: the whole loop (drift → retrain → gates → canary → champion, and a
rollback) on river's Agrawal benchmark, in a fresh workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, print_json
from shipyard.cli.state import os_user_principal
from shipyard.errors import ConfigError

__all__ = ["demo_cmd"]


def demo_cmd(
    folder: Annotated[
        Path, typer.Option(help="Fresh workspace to create (removed first with --fresh).")
    ] = Path(".demo/loans"),
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
    as_json: JsonOpt = False,
) -> None:
    """Train, serve (2 workers + agent), stream traffic, switch the concept, and watch the
    loop retrain, gate, shadow, canary and promote; then roll back a worse candidate."""
    import shutil

    from shipyard.demo.run import DemoOptions, run_demo
    from shipyard.demo.workspace import holds_a_demo

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
