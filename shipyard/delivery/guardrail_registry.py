"""Guardrails: the checks of a roll-out step, one registered class each.

At every poll :func:`~shipyard.delivery.guardrails.evaluate_guardrails` runs every
registered guardrail, in order, over the step's logs; a breach rolls the step back, and
a required check still gathering evidence holds it. Adding one::

    @register
    class MaxLatency(Guardrail):
        name = "max_latency"

        def check(self, step: StepLogs) -> GuardrailCheck:
            mean, breach = step.candidate.mean, step.candidate.mean > 50.0
            return GuardrailCheck(mean, None, 50.0, "breach" if breach else "ok",
                                  step.candidate.ok, True, f"mean {mean:.3g} ms", unit="ms")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from shipyard.delivery.guardrail_window import SideStats, StepWindow, Task
from shipyard.delivery.rollout import Rollout
from shipyard.delivery.sequential import Decision
from shipyard.jsonable import ReadsAsJson

if TYPE_CHECKING:
    from shipyard.config import DeliverySettings

__all__ = [
    "CheckVerdict",
    "Guardrail",
    "GuardrailCheck",
    "StepLogs",
    "register",
    "registered_guardrails",
    "unregister",
]

CheckVerdict = Literal["ok", "breach", "gathering", "n/a"]


@dataclass(frozen=True)
class GuardrailCheck(ReadsAsJson):
    """One guardrail's verdict at one poll: the candidate's value against the limit.

    It reads as its JSON form (``check["verdict"]``), which :meth:`to_dict` gives:
    ``value``, ``champion``, ``limit``, ``verdict``, ``samples``, ``required``,
    ``reason``; then ``unit``, ``p_value`` and ``test`` (the always-valid test's
    :class:`~shipyard.delivery.sequential.Decision`) when set, the guardrail's own
    ``details``, and ``excused_by`` / ``held_for`` when labels judged it.
    """

    value: float | None
    champion: float | None
    limit: float | None
    verdict: CheckVerdict
    samples: int
    required: bool
    reason: str
    unit: str | None = None
    test: Decision | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    excused_by: str | None = None
    held_for: str | None = None

    @classmethod
    def from_decision(
        cls,
        decision: Decision,
        *,
        value: float | None,
        champion: float | None,
        limit: float | None,
        samples: int,
        unit: str,
        min_samples: int,
        details: Mapping[str, Any] | None = None,
    ) -> GuardrailCheck:
        """A required check from an always-valid test: breach, or ok once it has
        ``min_samples`` observations, else gathering."""
        verdict: CheckVerdict
        if decision.verdict == "breach":
            verdict = "breach"
        elif samples < min_samples:
            verdict = "gathering"
        else:
            verdict = "ok"
        return cls(
            value,
            champion,
            limit,
            verdict,
            samples,
            True,
            decision.reason,
            unit=unit,
            test=decision,
            details=dict(details or {}),
        )

    @classmethod
    def not_applicable(cls, reason: str) -> GuardrailCheck:
        """A check that does not apply to this step (and never holds it)."""
        return cls(None, None, None, "n/a", 0, False, reason)

    @property
    def p_value(self) -> float | None:
        """The always-valid p-value of the breach, for checks made by a test."""
        return None if self.test is None else self.test.p_value

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the roll-out's history and sent in alerts."""
        data: dict[str, Any] = {
            "value": self.value,
            "champion": self.champion,
            "limit": self.limit,
            "verdict": self.verdict,
            "samples": self.samples,
            "required": self.required,
            "reason": self.reason,
        }
        if self.unit is not None:
            data["unit"] = self.unit
        if self.test is not None:
            data["p_value"] = self.test.p_value
            data["test"] = self.test.to_dict()
        data.update(self.details)
        if self.excused_by is not None:
            data["excused_by"] = self.excused_by
        if self.held_for is not None:
            data["held_for"] = self.held_for
        return data


@dataclass(frozen=True)
class StepLogs:
    """What a guardrail sees of one roll-out step: both sides' statistics, and the SQL
    window over the step's rows for anything more."""

    rollout: Rollout
    since: datetime  # when the step began
    started: datetime  # when the roll-out began: labels count from then
    shadow: bool  # the candidate answers copies of the champion's requests
    task: Task
    limits: DeliverySettings
    window: StepWindow
    champion: SideStats
    candidate: SideStats


class Guardrail(ABC):
    """One check of a step, candidate against champion, safe to repeat at every poll."""

    name: ClassVar[str]
    proxy: ClassVar[bool] = False
    """It sees a difference, not a fault: once labels arrive, the ``quality`` check
    judges its breaches (excused when the candidate is shown not worse)."""

    @abstractmethod
    def check(self, step: StepLogs) -> GuardrailCheck:
        """This guardrail's verdict over ``step``."""


G = TypeVar("G", bound=type[Guardrail])

_GUARDRAILS: dict[str, Guardrail] = {}


def register(guardrail: G) -> G:
    """Register ``guardrail`` (a class decorator); it runs after those registered before.

    Registering a name again replaces that guardrail in its place.
    """
    _GUARDRAILS[guardrail.name] = guardrail()
    return guardrail


def unregister(name: str) -> None:
    """Stop running the guardrail ``name``."""
    _GUARDRAILS.pop(name, None)


def registered_guardrails() -> tuple[Guardrail, ...]:
    """Every registered guardrail, in the order they run and reports list them."""
    return tuple(_GUARDRAILS.values())
