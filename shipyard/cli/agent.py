"""``shipyard agent``: advances roll-outs, runs scheduled monitors, retrains on triggers."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.options import parse_interval
from shipyard.cli.output import console
from shipyard.cli.state import CliState

__all__ = ["agent_cmd"]


def agent_cmd(
    ctx: typer.Context,
    poll: Annotated[
        str | None, typer.Option(help="How often to check, e.g. 1s, 5s [delivery.poll_seconds].")
    ] = None,
    once: Annotated[bool, typer.Option(help="Check every roll-out once, then exit.")] = False,
) -> None:
    """Advance roll-outs, run scheduled monitors and continuous training until interrupted.

    Only one agent acts at a time: the others wait for its lease.
    """
    import threading

    from shipyard.agent import Agent

    state: CliState = ctx.obj
    config = state.config()
    every = parse_interval(poll, flag="--poll") if poll else config.delivery.poll_seconds
    agent = Agent(state.project(), poll=every)
    if once:
        actions = agent.tick().actions
        for action in actions:
            console.print(action)
        if not actions:
            console.print("Nothing to do.")
        return
    stop = threading.Event()
    console.print(f"Agent running (polling every {agent.poll:g} s); Ctrl-C stops it.")
    try:
        agent.run(stop, on_action=lambda action: console.print(action))
    except KeyboardInterrupt:
        stop.set()
    console.print("Agent stopped; lease released.")
