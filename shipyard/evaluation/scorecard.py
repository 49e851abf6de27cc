"""Comparing a candidate's measurements with its scorecard and the champion's.

:func:`compare` gives one :class:`CriterionResult` row per bound in the scorecard, so a
failure always names the exact bound that failed. A margin over the champion is its own
row; it passes, saying so, when there is no champion to beat. Each kind of bound is a
criterion registered in :mod:`shipyard.evaluation.criteria` (where another is added);
the built-in ones follow :func:`compare`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.config import MetricCriterion, Scorecard
from shipyard.errors import EvaluationError
from shipyard.evaluation.criteria import (
    UNITS,
    Criterion,
    CriterionResult,
    bounded,
    difference,
    register,
    registered_criteria,
)
from shipyard.evaluation.metrics import LOWER_IS_BETTER

if TYPE_CHECKING:
    from rich.table import Table

    from shipyard.evaluation.latency import LatencyMeasurement
    from shipyard.evaluation.measure import Measurements
    from shipyard.evaluation.slices import FairnessMeasurement

__all__ = ["UNITS", "CriterionResult", "ScorecardResult", "compare"]

# Float noise must not fail "at least as good as the champion" (margin 0).
TOLERANCE = 1e-12


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
    """Check ``candidate`` against every bound of ``scorecard`` and against ``champion``.

    Every registered criterion adds its rows, in order.
    """
    rows = [
        row
        for criterion in registered_criteria()
        for row in criterion.rows(scorecard, candidate, champion)
    ]
    return ScorecardResult(
        passed=all(row.passed for row in rows),
        rows=tuple(rows),
        task=candidate.task,
        created_at=datetime.now(UTC),
    )


# --- the built-in criteria, in the order their rows appear ------------------------------


@register
class Primary(Criterion):
    """The primary metric's floor or ceiling, and its margin over the champion."""

    name = "primary"

    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        """None without a primary metric."""
        if scorecard.primary is None:
            return []
        return _metric_rows(scorecard.primary, "primary", candidate, champion)


@register
class Metrics(Criterion):
    """Each further metric, overall or on a slice, with its bounds and margin."""

    name = "metric"

    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        """Rows of every ``metrics`` entry, in the scorecard's order."""
        return [
            row
            for criterion in scorecard.metrics
            for row in _metric_rows(criterion, "metric", candidate, champion)
        ]


@register
class Calibration(Criterion):
    """The expected calibration error's ceiling."""

    name = "calibration"

    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        """One row when the scorecard bounds calibration."""
        if scorecard.calibration is None:
            return []
        return [
            bounded(
                "ece",
                "calibration",
                candidate.value("ece"),
                champion.value("ece") if champion else None,
                ceiling=scorecard.calibration.max_ece,
                detail=f"{candidate.ece_bins} equal-width bins, top-label",
            )
        ]


@register
class Fairness(Criterion):
    """Each metric's largest gap between the groups of a column."""

    name = "fairness"

    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        """One row per ``fairness`` entry; the candidate must have been measured for it."""
        rows = []
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
                bounded(
                    name,
                    "fairness",
                    mine.gap,
                    theirs.gap if theirs else None,
                    ceiling=fairness.max_gap,
                    detail=_fairness_detail(mine, fairness.min_rows),
                )
            )
        return rows


@register
class Latency(Criterion):
    """Prediction latency quantiles and the load time."""

    name = "latency"

    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        """One row per latency bound set, then the load time's."""
        if scorecard.latency is None:
            return []
        return _latency_rows(scorecard, candidate, champion)


@register
class Size(Criterion):
    """The logged model's size on disk."""

    name = "size"

    def rows(
        self, scorecard: Scorecard, candidate: Measurements, champion: Measurements | None
    ) -> list[CriterionResult]:
        """One row when the scorecard sets ``max_size_mb``."""
        if scorecard.max_size_mb is None:
            return []
        return [
            bounded(
                "size",
                "size",
                candidate.size_mb,
                champion.size_mb if champion else None,
                ceiling=scorecard.max_size_mb,
            )
        ]


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
        rows.append(bounded(name, kind, mine, theirs, floor=criterion.min, ceiling=criterion.max))
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
    delta = difference(candidate, champion)
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
            bounded(
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
            bounded(
                "load time",
                "load",
                candidate.load_seconds,
                champion.load_seconds if champion else None,
                ceiling=spec.max_load_seconds,
            )
        )
    return rows
