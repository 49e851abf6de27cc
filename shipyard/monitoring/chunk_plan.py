"""What a chunk summary keeps per column, fixed by the reference and the drift methods.

:class:`SummaryPlan` is built from fitted detectors; summaries
(:mod:`shipyard.monitoring.chunks`) made under one plan merge, and its digest keeps
summaries of another reference or other methods apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from shipyard.errors import ConfigError
from shipyard.monitoring.base import DriftDetector
from shipyard.monitoring.detectors import (
    ChiSquareDetector,
    KSDetector,
    WassersteinDetector,
    ZTestDetector,
)
from shipyard.monitoring.evidently_auto import AutoDriftDetector
from shipyard.monitoring.histogram_detectors import HistogramDetector
from shipyard.monitoring.reference import ColumnReference, Representation

__all__ = ["VALUE_LIMIT", "ColumnPlan", "SummaryPlan", "as_plan", "bins_key", "fingerprint"]

# A continuous column's value map is kept up to this many distinct values (16 bytes
# each) when cell counts and sums can stand in for it.
VALUE_LIMIT = 1 << 18


@dataclass(frozen=True, eq=False)
class ColumnPlan:
    """What one column's chunk summaries keep, fixed by the reference and the methods.

    ``edges`` maps a bin-set key to interior quantile edges (histogram methods);
    ``cells`` are the reference's distinct values when KS or Wasserstein need cell
    counts; ``sums`` adds each open cell's summed distances to its boundary
    (Wasserstein). ``values`` asks for the value map; unless ``exact_values``, a map
    past ``value_limit`` distinct values is dropped and the cells serve instead.
    """

    name: str
    representation: Representation
    reference: str = ""
    low: float | None = None
    high: float | None = None
    edges: Mapping[str, np.ndarray] = field(default_factory=dict)
    cells: np.ndarray | None = None
    sums: bool = False
    values: bool = False
    exact_values: bool = False
    value_limit: int = 0

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (array contents as digests), for the plan's digest."""
        return {
            "name": self.name,
            "representation": self.representation,
            "reference": self.reference,
            "low": self.low,
            "high": self.high,
            "edges": sorted(self.edges),
            "cells": None if self.cells is None else _digest(self.cells),
            "sums": self.sums,
            "values": self.values,
            "exact_values": self.exact_values,
            "value_limit": self.value_limit,
        }


@dataclass(frozen=True, eq=False)
class SummaryPlan:
    """Per column, what a chunk summary keeps; summaries merge only under the same plan."""

    columns: Mapping[str, ColumnPlan]

    @classmethod
    def for_detectors(
        cls, detectors: Iterable[DriftDetector], *, value_limit: int = VALUE_LIMIT
    ) -> SummaryPlan:
        """The plan that lets :func:`score_summary` score every one of ``detectors``.

        All detectors must be fitted on one reference (a column's reference values
        decide its bins and cells). A continuous column tested only by Wasserstein,
        KS or ``auto`` keeps its exact value map up to ``value_limit`` distinct values,
        then cell counts and sums alone (Wasserstein is then bounded, not exact).
        """
        columns: dict[str, ColumnPlan] = {}
        seen: dict[str, str] = {}
        for detector in detectors:
            if not hasattr(detector, "reference_"):
                raise ConfigError(
                    f"{type(detector).__name__} is not fitted.",
                    hint="Call fit(reference) before planning chunk summaries.",
                )
            for name in detector.columns_:
                reference = detector.reference_[name]
                digest = fingerprint(reference)
                if seen.setdefault(name, digest) != digest:
                    raise ConfigError(
                        f"Detectors disagree on the reference of column {name!r}.",
                        hint="Fit every detector of one summary plan on the same reference.",
                    )
                plan = columns.get(name) or _base_plan(reference, value_limit, digest)
                columns[name] = _extend(plan, detector, reference)
        return cls(columns)

    @cached_property
    def digest(self) -> str:
        """SHA-256 over the plan: a summary made under another plan cannot be merged in."""
        text = json.dumps([plan.describe() for plan in self.columns.values()], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _base_plan(reference: ColumnReference, value_limit: int, digest: str) -> ColumnPlan:
    if reference.representation == "categorical":
        return ColumnPlan(
            reference.name,
            "categorical",
            reference=digest,
            values=True,
            exact_values=True,
        )
    return ColumnPlan(
        reference.name,
        "numeric",
        reference=digest,
        low=float(reference.values[0]) if reference.distinct else None,
        high=float(reference.values[-1]) if reference.distinct else None,
        value_limit=value_limit,
    )


def _extend(plan: ColumnPlan, detector: DriftDetector, reference: ColumnReference) -> ColumnPlan:
    """Add what ``detector`` needs for ``reference``'s column to ``plan``."""
    exact = replace(plan, values=True, exact_values=True)
    if isinstance(detector, KSDetector):  # numeric columns only, discrete or not
        return replace(plan, cells=reference.values)
    if reference.representation == "categorical" or reference.discrete:
        return exact  # every value unseen in the reference gets its own bin
    if isinstance(detector, HistogramDetector):
        if detector.binning != "quantile":
            return exact  # Sturges' bins depend on the whole window
        edges = detector.edges_[reference.name]
        return replace(plan, edges={**plan.edges, bins_key(edges): edges})
    if isinstance(detector, ChiSquareDetector | ZTestDetector):
        return exact
    if isinstance(detector, WassersteinDetector | AutoDriftDetector):
        return replace(plan, values=True, cells=reference.values, sums=True)
    raise ConfigError(
        f"The chunked engine cannot summarise for {type(detector).__name__} "
        f"(method {detector.method!r}).",
        hint="Use a built-in method (psi, kl, jensenshannon, wasserstein, ks, chisquare, z, "
        "auto), or monitoring.engine: duckdb.",
    )


def bins_key(edges: np.ndarray) -> str:
    """The key of a set of interior edges: bin count and a digest of the edges."""
    return f"{len(edges) + 1}:{_digest(edges)}"


def as_plan(fitted: SummaryPlan | DriftDetector | Iterable[DriftDetector]) -> SummaryPlan:
    """A plan from a plan, a fitted detector or several fitted detectors."""
    if isinstance(fitted, SummaryPlan):
        return fitted
    if isinstance(fitted, DriftDetector):
        return SummaryPlan.for_detectors([fitted])
    return SummaryPlan.for_detectors(fitted)


def fingerprint(reference: ColumnReference) -> str:
    """A digest of a reference column's values and counts: summaries name the one they fit."""
    return _digest(reference.counts) + _values_digest(reference)


def _values_digest(reference: ColumnReference) -> str:
    if reference.representation == "numeric":
        return _digest(reference.values)
    return hashlib.sha256(json.dumps(list(reference.values)).encode()).hexdigest()[:16]


def _digest(array: np.ndarray) -> str:
    little = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(little.tobytes()).hexdigest()[:16]
