"""Scorecard criteria: each kind of bound a candidate is held to, one registered class each.

:func:`~shipyard.evaluation.scorecard.compare` asks every registered criterion, in
order, for its rows; the scorecard passes when every row does. The built-ins (primary,
metric, calibration, fairness, latency, size) are in :mod:`shipyard.evaluation.scorecard`.
Adding one::

    @register
    class SizeAgainstChampion(Criterion):
        name = "relative_size"

        def rows(self, scorecard, candidate, champion):
            ceiling = None if champion is None else 1.5 * champion.size_mb
            return [bounded("size vs champion", "size", candidate.size_mb, None, ceiling=ceiling)]
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

if TYPE_CHECKING:
    from shipyard.config import Scorecard
    from shipyard.evaluation.measure import Measurements

__all__ = [
    "UNITS",
    "Criterion",
    "CriterionResult",
    "bounded",
    "difference",
    "register",
    "registered_criteria",
    "unregister",
]

UNITS = {"latency": " ms", "load": " s", "size": " MB"}
"""The unit a row's values are shown in, by its ``kind`` (none: a plain number)."""


@dataclass(frozen=True)
class CriterionResult:
    """One bound of the scorecard checked: the values, the bound as text, and the verdict.

    ``kind`` is one of ``primary``, ``margin``, ``metric``, ``calibration``,
    ``fairness``, ``latency``, ``load`` or ``size`` (or a registered criterion's own).
    ``delta`` is candidate − champion.
    """

    name: str
    kind: str
    candidate: float | None
    champion: float | None
    delta: float | None
    bound: str
    passed: bool
    detail: str = ""


class Criterion(ABC):
    """One kind of bound: the rows it adds to a scorecard's verdict (none if not asked for)."""

    name: ClassVar[str]

    @abstractmethod
    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        """``candidate`` checked against this criterion's bounds and ``champion``."""


C = TypeVar("C", bound=type[Criterion])

_CRITERIA: dict[str, Criterion] = {}


def register(criterion: C) -> C:
    """Register ``criterion`` (a class decorator); its rows follow those registered before.

    Registering a name again replaces that criterion in its place.
    """
    _CRITERIA[criterion.name] = criterion()
    return criterion


def unregister(name: str) -> None:
    """Stop checking the criterion ``name``."""
    _CRITERIA.pop(name, None)


def registered_criteria() -> tuple[Criterion, ...]:
    """Every registered criterion, in the order their rows appear."""
    return tuple(_CRITERIA.values())


def bounded(
    name: str,
    kind: str,
    candidate: float | None,
    champion: float | None,
    *,
    floor: float | None = None,
    ceiling: float | None = None,
    detail: str = "",
) -> CriterionResult:
    """A row checking ``floor ≤ candidate ≤ ceiling``; an undefined candidate fails."""
    unit = UNITS.get(kind, "")
    parts = []
    if floor is not None:
        parts.append(f"≥ {floor:g}{unit}")
    if ceiling is not None:
        parts.append(f"≤ {ceiling:g}{unit}")
    if candidate is not None and math.isnan(candidate):
        candidate = None
    if candidate is None:
        passed = not parts
        detail = "; ".join(filter(None, [detail, "could not be measured on these rows"]))
    else:
        passed = (floor is None or candidate >= floor) and (ceiling is None or candidate <= ceiling)
    return CriterionResult(
        name=name,
        kind=kind,
        candidate=candidate,
        champion=champion,
        delta=difference(candidate, champion),
        bound=" and ".join(parts) or "reported only",
        passed=passed,
        detail=detail,
    )


def difference(candidate: float | None, champion: float | None) -> float | None:
    """candidate − champion, or ``None`` when either is missing."""
    return None if candidate is None or champion is None else candidate - champion
