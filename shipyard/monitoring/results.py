"""What a drift detector returns: one :class:`DriftResult` per column, a :class:`DatasetDrift`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from shipyard.jsonable import Record
from shipyard.levels import Level

__all__ = [
    "KL_BANDS",
    "PSI_BANDS",
    "Band",
    "Bands",
    "DatasetDrift",
    "DriftResult",
    "Kind",
    "MonitorResult",
]

Band = Level  # the name detectors export; shipyard.levels defines it
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Bands:
    """Score thresholds for the three actions, in increasing severity."""

    inspect: float
    retrain: float
    pause: float

    def __post_init__(self) -> None:
        if not 0 <= self.inspect <= self.retrain <= self.pause:
            raise ValueError(f"bands must satisfy 0 ≤ inspect ≤ retrain ≤ pause, got {self}")

    def classify(self, score: float) -> Level:
        """The most severe band whose threshold ``score`` reaches."""
        if score >= self.pause:
            return "pause"
        if score >= self.retrain:
            return "retrain"
        if score >= self.inspect:
            return "inspect"
        return "ok"


# DESIGN.md, "Defaults that ship".
PSI_BANDS = Bands(inspect=0.10, retrain=0.25, pause=0.40)
KL_BANDS = Bands(inspect=0.05, retrain=0.15, pause=0.30)


@dataclass(frozen=True)
class DriftResult:
    """Drift of one column between the reference and the current window.

    ``score`` is the statistic (PSI, KL, JS distance, normalised Wasserstein, KS D,
    chi-square, z); ``p_value`` is set for the hypothesis tests, whose verdict compares
    it (not the score) with ``threshold``. ``score`` is ``None`` when a side has no
    finite values, and ``note`` says which. ``n_reference``/``n_current`` count the
    values tested, after dropping NaN (``*_nan``) and ±inf (``*_inf``).
    ``unseen_categories`` counts distinct values absent from the reference (in
    ``unseen_rows`` rows), ``out_of_range`` numeric values outside its [min, max].
    """

    feature: str
    method: str
    kind: Kind
    score: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    band: Level | None = None
    reference_nan: int = 0
    reference_inf: int = 0
    current_nan: int = 0
    current_inf: int = 0
    unseen_categories: int = 0
    unseen_rows: int = 0
    out_of_range: int = 0
    approximate: bool = False
    note: str | None = None

    @property
    def drift_score(self) -> float | None:
        """The number compared with ``threshold``: the p-value for tests, else the score."""
        return self.p_value if self.p_value is not None else self.score

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; non-finite numbers become strings (``"inf"``)."""
        return {key: _finite(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class DatasetDrift:
    """Per-column results and the dataset verdict: drift when ``share ≥ drift_share``.

    ``share`` is the fraction of *tested* columns (score not ``None``) that drifted;
    ``skipped`` maps columns that could not be tested to the reason.
    """

    method: str
    columns: tuple[DriftResult, ...]
    drift_share: float
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def tested(self) -> int:
        """Number of columns with a score."""
        return sum(result.score is not None for result in self.columns)

    @property
    def drifted_count(self) -> int:
        """Number of columns that drifted."""
        return sum(result.drifted for result in self.columns)

    @property
    def share(self) -> float:
        """Fraction of tested columns that drifted (0 when none was tested)."""
        return self.drifted_count / self.tested if self.tested else 0.0

    @property
    def drifted(self) -> bool:
        """Whether the dataset drifted: at least ``drift_share`` of its columns did."""
        return self.tested > 0 and self.share >= self.drift_share

    @property
    def features(self) -> tuple[str, ...]:
        """Names of the columns with results, in order."""
        return tuple(result.feature for result in self.columns)

    def __getitem__(self, feature: str) -> DriftResult:
        for result in self.columns:
            if result.feature == feature:
                return result
        raise KeyError(f"no drift result for column {feature!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "method": self.method,
            "drift_share": self.drift_share,
            "share": self.share,
            "drifted": self.drifted,
            "drifted_count": self.drifted_count,
            "tested": self.tested,
            "columns": [result.to_dict() for result in self.columns],
            "skipped": dict(self.skipped),
        }


@dataclass
class MonitorResult(Record):
    """Everything one run found, JSON-ready."""

    model: str
    version: str
    window: str
    rows: int
    created_at: datetime
    features: list[dict[str, Any]]
    prediction: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    estimated: dict[str, Any] | None = None
    signals: list[dict[str, Any]] = field(default_factory=list)
    level: Level = "ok"
    report_path: str | None = None
    alerts: dict[str, Any] | None = None
    # logged, lost, ratio, minimum, enough: below the minimum the run does not act
    log_coverage: dict[str, Any] | None = None
    # monitoring.dataset_drift's verdict on the whole window (reported; signals stay per feature)
    dataset: dict[str, Any] | None = None
    # training-serving skew (value, distribution, freshness) of a model served with features
    skew: dict[str, Any] | None = None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
