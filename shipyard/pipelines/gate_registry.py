"""CT gates: what a retrained candidate must pass before any traffic, one registered class each.

A cycle runs every registered gate in order (the built-ins: validate → retrain →
scorecard, in :mod:`shipyard.pipelines.gates`); each outcome is recorded with its typed
evidence, and the first gate that fails halts the cycle and pages the owner. Then the
roll-out's shadow, canary and promote gates follow. Adding one::

    class EnoughRows(Gate):
        name = "enough_rows"

        def run(self, cycle: CycleRun) -> GateResult:
            rows = cycle.window.rows  # the validate gate's training window
            return GateResult(rows >= 1000, Note(f"{rows} rows"), reason="too few new rows")

    register(EnoughRows, before="retrain")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from shipyard.jsonable import ReadsAsJson, Record
from shipyard.pipelines.cycles import GateStatus

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.pipelines.cycles import Cycle
    from shipyard.pipelines.triggers import Trigger
    from shipyard.project import Project
    from shipyard.training import TrainResult

__all__ = [
    "CycleRun",
    "Gate",
    "GateEvidence",
    "GateResult",
    "GateStatus",
    "Note",
    "TrainingWindow",
    "gate_named",
    "register",
    "registered_gates",
    "unregister",
]


class GateEvidence(Record, ReadsAsJson):
    """Base of a gate's evidence record: it reads as its JSON form (``evidence["rows"]``).

    Subclasses are frozen dataclasses; :meth:`to_dict` is :class:`~shipyard.jsonable.Record`'s
    (every field, in order), overridden where a field is left out when unset or where
    evidence nests other evidence.
    """


@dataclass(frozen=True)
class Note(GateEvidence):
    """Evidence that is one sentence."""

    note: str


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict, the evidence recorded with it, and why the cycle halts if it failed."""

    passed: bool
    evidence: GateEvidence
    skipped: bool = False
    reason: str = ""

    @property
    def status(self) -> GateStatus:
        """``skipped`` (and passed), ``passed`` or ``failed``, as recorded."""
        if self.skipped:
            return "skipped"
        return "passed" if self.passed else "failed"


@dataclass(frozen=True)
class TrainingWindow:
    """The data one cycle trains on, written where the run can snapshot it."""

    train: Path
    validation: Path | None
    source_digest: str
    source_rows: int
    rows: int
    frames: tuple[pd.DataFrame, pd.DataFrame | None]


@dataclass
class CycleRun:
    """One cycle as its gates see it, and what earlier gates left for later ones.

    ``window`` is set by the validate gate, ``candidate`` by the retrain gate;
    ``results`` holds every gate's outcome so far, by name; ``rollout_context`` travels
    with the roll-out (and any rollback alert).
    """

    project: Project
    cycle: Cycle
    trigger: Trigger
    champion: str | None
    window: TrainingWindow | None = None
    candidate: TrainResult | None = None
    results: dict[str, GateResult] = field(default_factory=dict)
    rollout_context: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        """The model this cycle retrains."""
        return self.project.config.model.name


class Gate(ABC):
    """One check of a cycle before traffic; a failure halts the cycle."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, cycle: CycleRun) -> GateResult:
        """Check, record what the later gates need on ``cycle``, and say how it went."""

    def describe(self, cycle: CycleRun) -> str:
        """What the gate is doing, for the person who started the cycle."""
        return f"{self.name}"

    def summary(self, evidence: Mapping[str, Any]) -> str:
        """One line of the recorded evidence, for people (``shipyard ct status``)."""
        return str(evidence.get("note") or evidence.get("reason") or "")


G = TypeVar("G", bound=type[Gate])

_GATES: dict[str, Gate] = {}


def register(gate: G, *, before: str | None = None) -> G:
    """Register ``gate`` (a class decorator): last, or just before the gate ``before``.

    Registering a name again replaces that gate in its place.
    """
    instance = gate()
    if before is None or instance.name in _GATES:
        _GATES[instance.name] = instance
        return gate
    if before not in _GATES:
        raise ValueError(f"no gate {before!r} to register {instance.name!r} before")
    ordered = list(_GATES.items())
    at = [name for name, _ in ordered].index(before)
    ordered.insert(at, (instance.name, instance))
    _GATES.clear()
    _GATES.update(ordered)
    return gate


def unregister(name: str) -> None:
    """Stop running the gate ``name``."""
    _GATES.pop(name, None)


def registered_gates() -> tuple[Gate, ...]:
    """Every registered gate, in the order a cycle runs them."""
    return tuple(_GATES.values())


def gate_named(name: str) -> Gate | None:
    """The registered gate ``name``, if there is one."""
    return _GATES.get(name)
