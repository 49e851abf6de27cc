"""The agent: the control loop on top of everything else.

It runs the project's monitor on schedule, advances roll-outs on their guardrails, and
ticks continuous training, all under one lease so only one agent acts at a time.
"""

from shipyard.agent.control_loop import Agent, TickReport

__all__ = ["Agent", "TickReport"]
