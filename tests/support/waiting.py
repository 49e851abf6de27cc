"""Waiting on a condition, never on a sleep: the one ``wait_for`` of the suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["PATIENCE", "wait_for"]

T = TypeVar("T")

# Long enough for a 2-core machine running `stress --cpu 4` beside the suite: a deadline
# only says when to give up on something that is not coming, so it costs nothing when
# the condition holds early.
PATIENCE = 120.0


def wait_for(
    condition: Callable[[], T], *, what: str, timeout: float = PATIENCE, every: float = 0.02
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    Fails after ``timeout`` seconds with an assertion naming ``what`` was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; it never happened")
        time.sleep(every)
