"""Comparing a candidate's measurements with its scorecard and the champion's.

:func:`compare` gives one :class:`CriterionResult` row per bound in the scorecard, so a
failure always names the exact bound that failed. A margin over the champion is its own
row; it passes, saying so, when there is no champion to beat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.config import MetricCriterion, Scorecard
from shipyard.errors import EvaluationError
from shipyard.evaluation.metrics import LOWER_IS_BETTER

if TYPE_CHECKING:
    from rich.table import Table

    from shipyard.evaluation.latency import LatencyMeasurement
    from shipyard.evaluation.measure import Measurements
    from shipyard.evaluation.slices import FairnessMeasurement

__all__ = ["CriterionResult", "ScorecardResult", "compare"]

# Float noise must not fail "at least as good as the champion" (margin 0).
TOLERANCE = 1e-12
UNITS = {"latency": " ms", "load": " s", "size": " MB"}


@dataclass(frozen=True)
class CriterionResult:
    """One bound of the scorecard checked: the values, the bound as text, and the verdict.

    ``kind`` is one of ``primary``, ``margin``, ``metric``, ``calibration``,
    ``fairness``, ``latency``, ``load`` or ``size``. ``delta`` is candidate − champion.
    """

    name: str
    kind: str
    candidate: float | None
    champion: float | None
    delta: float | None
    bound: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class ScorecardResult:
    """The verdict of a scorecard: it passes when every row passes."""

    passed: bool
    rows: tuple[CriterionResult, ...]
    task: str
    created_at: datetime

    @property
    def failing(self) -> list[CriterionResult]:
        """The rows that failed."""
        return [row for row in self.rows if not row.passed]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` gives back an equal result."""
        return {
            "passed": self.passed,
            "task": self.task,
            "created_at": self.created_at.isoformat(),
            "rows": [asdict(row) for row in self.rows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScorecardResult:
        """The result :meth:`to_dict` described."""
        return cls(
            passed=bool(data["passed"]),
            rows=tuple(CriterionResult(**row) for row in data["rows"]),
            task=str(data["task"]),
            created_at=datetime.fromisoformat(data["created_at"]),
        )

    def render(self) -> Table:
        """A Rich table: criterion, candidate, champion, delta, bound, result."""
        from rich.table import Table
        from rich.text import Text

        verdict = Text("PASSED", "bold green") if self.passed else Text("FAILED", "bold red")
        table = Table(title=Text.assemble("Scorecard ", verdict), title_justify="left")
        table.add_column("criterion")
        for column in ("candidate", "champion", "delta"):
            table.add_column(column, justify="right")
        table.add_column("bound")
        table.add_column("result")
        for row in self.rows:
            unit = UNITS.get(row.kind, "")
            criterion = Text(row.name)
            if row.detail:
                criterion.append(f"\n{row.detail}", "dim")
            table.add_row(
                criterion,
                format_value(row.candidate, unit),
                format_value(row.champion, unit),
                format_value(row.delta, unit, signed=True),
                Text(row.bound),
                Text("PASS", "green") if row.passed else Text("FAIL", "bold red"),
            )
        return table


def format_value(value: float | None, unit: str = "", *, signed: bool = False) -> str:
    """A criterion value as shown in tables: ``—`` when there is none."""
    if value is None:
        return "—"
    digits = 4 if not unit else 2 if unit != " s" else 3
    return f"{value:+.{digits}f}{unit}" if signed else f"{value:.{digits}f}{unit}"


def compare(
    scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
) -> ScorecardResult:
    """Check ``candidate`` against every bound of ``scorecard`` and against ``champion``."""
    rows: list[CriterionResult] = []
    if scorecard.primary is not None:
        rows.extend(_metric_rows(scorecard.primary, "primary", candidate, champion))
    for criterion in scorecard.metrics:
        rows.extend(_metric_rows(criterion, "metric", candidate, champion))
    if scorecard.calibration is not None:
        ceiling = scorecard.calibration.max_ece
        rows.append(
            _bounded(
                "ece",
                "calibration",
                candidate.value("ece"),
                champion.value("ece") if champion else None,
                ceiling=ceiling,
                detail=f"{candidate.ece_bins} equal-width bins, top-label",
            )
        )
    for fairness in scorecard.fairness:
        name = f"{fairness.metric} gap across {fairness.column}"
        mine = candidate.fairness.get(name)
        if mine is None:
            raise EvaluationError(
                f"The candidate was measured without the criterion {name}.",
                hint="Measure the candidate with the scorecard it is compared against.",
            )
        theirs = champion.fairness.get(name) if champion else None
        rows.append(
            _bounded(
                name,
                "fairness",
                mine.gap,
                theirs.gap if theirs else None,
                ceiling=fairness.max_gap,
                detail=_fairness_detail(mine, fairness.min_rows),
            )
        )
    if scorecard.latency is not None:
        rows.extend(_latency_rows(scorecard, candidate, champion))
    if scorecard.max_size_mb is not None:
        rows.append(
            _bounded(
                "size",
                "size",
                candidate.size_mb,
                champion.size_mb if champion else None,
                ceiling=scorecard.max_size_mb,
            )
        )
    return ScorecardResult(
        passed=all(row.passed for row in rows),
        rows=tuple(rows),
        task=candidate.task,
        created_at=datetime.now(UTC),
    )


def _delta(candidate: float | None, champion: float | None) -> float | None:
    return None if candidate is None or champion is None else candidate - champion


def _bounded(
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
        delta=_delta(candidate, champion),
        bound=" and ".join(parts) or "reported only",
        passed=passed,
        detail=detail,
    )


def _metric_rows(
    criterion: MetricCriterion,
    kind: str,
    candidate: Measurements,
    champion: Measurements | None,
) -> list[CriterionResult]:
    label = criterion.slice.label if criterion.slice is not None else None
    name = criterion.metric if label is None else f"{criterion.metric} on {label}"
    mine = candidate.value(criterion.metric, label)
    theirs = champion.value(criterion.metric, label) if champion else None
    rows = []
    if criterion.min is not None or criterion.max is not None or criterion.min_margin is None:
        rows.append(_bounded(name, kind, mine, theirs, floor=criterion.min, ceiling=criterion.max))
    if criterion.min_margin is not None:
        rows.append(_margin_row(name, criterion, mine, theirs, champion is not None))
    return rows


def _margin_row(
    name: str,
    criterion: MetricCriterion,
    candidate: float | None,
    champion: float | None,
    has_champion: bool,
) -> CriterionResult:
    margin = float(criterion.min_margin or 0.0)
    lower = criterion.metric in LOWER_IS_BETTER
    # For a lower-is-better metric, improving by `margin` means going down by it.
    sign = ("−" if margin >= 0 else "+") if lower else ("+" if margin >= 0 else "−")
    offset = f" {sign} {abs(margin):g}" if margin else ""
    bound = f"{'≤' if lower else '≥'} champion{offset}"
    delta = _delta(candidate, champion)
    if not has_champion:
        passed, detail = True, "no champion"
    elif champion is None:
        passed, detail = True, "the champion has no value for this metric"
    elif delta is None:
        passed, detail = False, "could not be measured on these rows"
    else:
        improvement = -delta if lower else delta
        passed, detail = improvement >= margin - TOLERANCE, ""
    return CriterionResult(
        name=f"{name} vs champion",
        kind="margin",
        candidate=candidate,
        champion=champion,
        delta=delta,
        bound=bound,
        passed=passed,
        detail=detail,
    )


def _fairness_detail(measured: FairnessMeasurement, min_rows: int) -> str:
    groups = measured.groups
    parts = []
    if len(groups) >= 2:
        high = max(groups, key=groups.__getitem__)
        low = min(groups, key=groups.__getitem__)
        parts.append(
            f"highest {high} {groups[high]:.4f}, lowest {low} {groups[low]:.4f} "
            f"({len(groups)} groups)"
        )
    else:
        parts.append(f"fewer than two groups with ≥ {min_rows} rows and a defined metric")
    if measured.ignored:
        parts.append("ignored: " + ", ".join(f"{k} ({v})" for k, v in measured.ignored.items()))
    return "; ".join(parts)


LatencyValue = Callable[["LatencyMeasurement"], float]
LATENCY_BOUNDS: tuple[tuple[str, str, LatencyValue], ...] = (
    ("max_p50_ms", "p50 latency, 1 row", lambda m: m.p50_ms),
    ("max_p95_ms", "p95 latency, 1 row", lambda m: m.p95_ms),
    ("max_p99_ms", "p99 latency, 1 row", lambda m: m.p99_ms),
    ("max_batch_p99_ms", "p99 latency, {batch} rows", lambda m: m.batch_p99_ms),
)


def _latency_rows(
    scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
) -> list[CriterionResult]:
    spec = scorecard.latency
    assert spec is not None
    rows = []
    for attribute, title, value in LATENCY_BOUNDS:
        ceiling = getattr(spec, attribute)
        if ceiling is None:
            continue
        mine = value(candidate.latency) if candidate.latency else None
        theirs = value(champion.latency) if champion and champion.latency else None
        rows.append(
            _bounded(
                title.format(batch=spec.batch_size),
                "latency",
                mine,
                theirs,
                ceiling=ceiling,
                detail=f"{spec.repeats} timed predict calls",
            )
        )
    if spec.max_load_seconds is not None:
        rows.append(
            _bounded(
                "load time",
                "load",
                candidate.load_seconds,
                champion.load_seconds if champion else None,
                ceiling=spec.max_load_seconds,
            )
        )
    return rows
