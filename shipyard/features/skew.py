"""Training-serving skew that the prediction log can prove: value skew and freshness.

**Value skew.** For a sample of logged live requests of a model version, the features are
recomputed offline *as served* (what the online store should have returned at the
request time, given the recorded materialisation runs) and compared with the values the
server logged. Per feature: how many values were compared, how many differ, and up to
five examples (entity key, request time, served, expected). Numbers are equal within a
relative ``features.skew.tolerance`` (NaN equals NaN); strings and booleans exactly.

A value served as missing is compared too: offline null against a served null is a
match; offline null against the view's default, when the view's ``missing`` policy is
``default``, is a match (the policy explains it); anything else is a mismatch (the
online store lost a row, or served one the offline source does not have).

**Freshness.** Each served row logs its view's event time (``feature_ts__<view>``); its
age at the request time against the view's ``freshness_sla`` gives the share of stale
values and the p50/p95 age. Rows served as missing have no age and are counted apart.

Both turn into a :data:`~shipyard.levels.Level` through their bands
(``mismatch_bands``, ``stale_bands``). This module holds the comparisons, on frames;
:mod:`~shipyard.features.skew_check` reads the log and recomputes the features.
Distribution skew is the monitor's (it reuses the per-feature drift of the served
columns, :mod:`shipyard.monitoring.feature_skew`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import ConfigError
from shipyard.jsonable import Record
from shipyard.levels import Level, worst
from shipyard.registry.tags import FEATURES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.config.features import SkewSettings
    from shipyard.features.repo import FeatureRepo

__all__ = [
    "FEATURES_TAG",
    "TS_PREFIX",
    "FeatureUse",
    "FeatureValueSkew",
    "Freshness",
    "Mismatch",
    "ServedRows",
    "ValueSkew",
    "ViewFreshness",
    "band_level",
    "freshness_of",
    "mismatches",
    "value_skew_of",
]

FEATURES_TAG = FEATURES
"""The model version tag that lists the features a model was trained on (training writes it)."""

TS_PREFIX = "feature_ts__"
"""Logged input field holding a view's served event time (epoch seconds; NaN if none)."""

EXAMPLES = 5
MIN_VALUES = 10
"""Fewest compared (or aged) values before a rate is judged: fewer give ``unknown``."""


def band_level(score: float | None, bands: Sequence[float]) -> Level:
    """The level ``score`` reaches in ``(inspect, retrain, pause)``; unknown without a score."""
    if score is None or not math.isfinite(score):
        return "unknown"
    inspect, retrain, pause = bands
    if score >= pause:
        return "pause"
    if score >= retrain:
        return "retrain"
    if score >= inspect:
        return "inspect"
    return "ok"


@dataclass(frozen=True)
class FeatureUse:
    """What a model version was trained on, from its ``shipyard.features`` tag."""

    features: tuple[str, ...]  # view:feature refs
    columns: Mapping[str, str]  # ref → model input column
    views: Mapping[str, str]  # view → version digest
    entity_keys: tuple[str, ...]
    request_inputs: tuple[str, ...] = ()
    mode: str = "event_time"

    @classmethod
    def from_tags(cls, tags: Mapping[str, str] | None) -> FeatureUse | None:
        """The use the tags record; None for a model that uses no features."""
        raw = (tags or {}).get(FEATURES_TAG)
        if not raw:
            return None
        try:
            data = orjson.loads(raw)
            features = tuple(str(ref) for ref in data["features"])
            columns = {
                ref: str(data.get("columns", {}).get(ref, ref.split(":", 1)[1])) for ref in features
            }
            return cls(
                features=features,
                columns=columns,
                views={str(k): str(v) for k, v in (data.get("views") or {}).items()},
                entity_keys=tuple(data.get("entity_keys") or ()),
                request_inputs=tuple(data.get("request_inputs") or ()),
                mode=str(data.get("mode") or "event_time"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(
                f"The model version's {FEATURES_TAG} tag is not readable: {exc}",
                hint="Retrain the model with ctx.training_set(...) so training writes it again.",
            ) from None

    def view_names(self) -> tuple[str, ...]:
        """The views its features come from, in first-use order."""
        return tuple(dict.fromkeys(ref.split(":", 1)[0] for ref in self.features))


@dataclass(frozen=True)
class ServedRows:
    """Logged live predictions: the inputs as served (model columns, entity keys,
    ``feature_ts__<view>``), the request time and id of each row."""

    inputs: pd.DataFrame
    times: pd.Series  # datetime64[us, UTC]
    request_ids: np.ndarray

    @property
    def rows(self) -> int:
        """Rows held."""
        return len(self.request_ids)

    def sample(self, limit: int, seed: int = 0) -> ServedRows:
        """At most ``limit`` rows, drawn at random (fixed seed), in their logged order."""
        import numpy as np

        if self.rows <= limit:
            return self
        picked = np.sort(np.random.default_rng(seed).choice(self.rows, limit, replace=False))
        return ServedRows(
            self.inputs.iloc[picked].reset_index(drop=True),
            self.times.iloc[picked].reset_index(drop=True),
            self.request_ids[picked],
        )


@dataclass(frozen=True)
class Mismatch(Record):
    """One served value that differs from its offline recomputation."""

    entity: dict[str, Any]
    time: str
    request_id: str
    served: Any
    expected: Any


@dataclass(frozen=True)
class FeatureValueSkew(Record):
    """Value skew of one served feature: share of values that differ from offline."""

    feature: str  # view:feature
    column: str  # the model input column
    compared: int
    mismatched: int
    rate: float | None
    level: Level
    examples: list[Mismatch] = field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True)
class ValueSkew(Record):
    """Value skew of a model version over a sample of its logged requests."""

    sampled: int
    tolerance: float
    bands: tuple[float, float, float]
    features: list[FeatureValueSkew]
    level: Level
    note: str | None = None

    def worst_feature(self) -> FeatureValueSkew | None:
        """The feature with the highest mismatch rate."""
        rated = [f for f in self.features if f.rate is not None]
        return max(rated, key=lambda f: f.rate or 0.0, default=None)

    def describe(self) -> str:
        """One line for people: the level and the worst feature's numbers."""
        top = self.worst_feature()
        if top is None:
            return f"value skew {self.level}: {self.note or 'nothing compared'}"
        return (
            f"value skew {self.level}: {top.feature} differs in {top.mismatched} of "
            f"{top.compared} sampled requests ({top.rate:.1%}; pause band "
            f"{self.bands[2]:.0%})"
        )


@dataclass(frozen=True)
class ViewFreshness(Record):
    """Age of one view's served values at their request times, against its SLA."""

    view: str
    sla_seconds: float | None
    served: int  # rows with a served event time
    missing: int  # rows served as missing/default (no event time)
    stale: int
    stale_share: float | None
    p50_age_seconds: float | None
    p95_age_seconds: float | None
    level: Level
    note: str | None = None


@dataclass(frozen=True)
class Freshness(Record):
    """Freshness of every view a model version reads."""

    rows: int
    bands: tuple[float, float, float]
    views: list[ViewFreshness]
    level: Level


def mismatches(served: pd.Series, expected: pd.Series, tolerance: float) -> np.ndarray:
    """Boolean mask of the rows where ``served`` differs from ``expected``.

    Numbers: equal within relative ``tolerance``; NaN/None on both sides equal; a value
    on one side only differs. Anything else (strings, booleans): exact equality.
    """
    import numpy as np
    import pandas as pd

    served_na = pd.isna(served).to_numpy()
    expected_na = pd.isna(expected).to_numpy()
    s_num = pd.to_numeric(served, errors="coerce")
    e_num = pd.to_numeric(expected, errors="coerce")
    numeric = (pd.isna(s_num).to_numpy() <= served_na) & (pd.isna(e_num).to_numpy() <= expected_na)
    both = ~served_na & ~expected_na
    differ = served_na != expected_na
    if numeric.all() and not _is_text(served) and not _is_text(expected):
        s = s_num.to_numpy(dtype=np.float64)
        e = e_num.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            close = np.abs(s - e) <= tolerance * np.maximum(np.abs(s), np.abs(e))
        return differ | (both & ~close)
    s_text = served.astype(object).to_numpy()
    e_text = expected.astype(object).to_numpy()
    same = np.array([_same(a, b) for a, b in zip(s_text, e_text, strict=True)], dtype=bool)
    return differ | (both & ~same)


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object and any(isinstance(v, str) for v in values.head(50))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return bool(a == b)


def value_skew_of(
    rows: ServedRows,
    expected: pd.DataFrame,
    use: FeatureUse,
    repo: FeatureRepo,
    settings: SkewSettings,
) -> ValueSkew:
    """Compare the served values in ``rows`` with ``expected`` (aligned row by row)."""
    import pandas as pd

    bands = tuple(settings.mismatch_bands)
    results: list[FeatureValueSkew] = []
    for ref in use.features:
        column = use.columns[ref]
        view_name, feature_name = ref.split(":", 1)
        view = repo.view(view_name)
        if column not in rows.inputs.columns or column not in expected.columns:
            where = "the log" if column not in rows.inputs.columns else "the recomputation"
            results.append(_unjudged(ref, column, f"column {column!r} is not in {where}"))
            continue
        if feature_name in view.pii_features:
            results.append(_unjudged(ref, column, "personal data: logged masked, not compared"))
            continue
        want = expected[column].reset_index(drop=True)
        default = getattr(view, "defaults", {}).get(feature_name)
        if getattr(view, "missing", "null") == "default" and default is not None:
            want = want.astype(object).where(pd.notna(want), default)
        got = rows.inputs[column].reset_index(drop=True)
        differ = mismatches(got, want, settings.tolerance)
        count, total = int(differ.sum()), len(differ)
        rate = count / total if total else None
        examples = [
            _example(rows, use, int(i), got.iloc[i], want.iloc[i])
            for i in differ.nonzero()[0][:EXAMPLES]
        ]
        judged_as: Level = band_level(rate, bands)
        why = None
        if total < MIN_VALUES:
            judged_as, why = "unknown", f"only {total} values compared (fewer than {MIN_VALUES})"
        results.append(FeatureValueSkew(ref, column, total, count, rate, judged_as, examples, why))
    judged = [r.level for r in results if r.level != "unknown"]
    level: Level = worst(judged) if judged else "unknown"
    note = None if rows.rows else "no logged requests to compare"
    return ValueSkew(rows.rows, settings.tolerance, bands, results, level, note)  # type: ignore[arg-type]


def _unjudged(ref: str, column: str, note: str) -> FeatureValueSkew:
    return FeatureValueSkew(ref, column, 0, 0, None, "unknown", [], note)


def _example(rows: ServedRows, use: FeatureUse, i: int, served: Any, expected: Any) -> Mismatch:
    entity = {
        key: _plain(rows.inputs[key].iloc[i]) for key in use.entity_keys if key in rows.inputs
    }
    return Mismatch(
        entity,
        rows.times.iloc[i].isoformat(),
        str(rows.request_ids[i]),
        _plain(served),
        _plain(expected),
    )


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: NumPy scalars as Python ones, every kind of missing as None."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def freshness_of(
    rows: ServedRows, use: FeatureUse, repo: FeatureRepo, bands: Sequence[float]
) -> Freshness:
    """Age of each view's served values (request time − ``feature_ts__<view>``) vs its SLA."""
    import numpy as np

    request_ts = _epoch_seconds(rows.times)
    views = []
    for name in use.view_names():
        view = repo.views.get(name)
        if view is None:  # an on-demand view: its inputs' views carry the ages
            continue
        sla = None if view.freshness_sla is None else view.freshness_sla.total_seconds()
        column = f"{TS_PREFIX}{name}"
        if column not in rows.inputs.columns:
            views.append(
                ViewFreshness(
                    name,
                    sla,
                    0,
                    rows.rows,
                    0,
                    None,
                    None,
                    None,
                    "unknown",
                    f"the log has no {column} field",
                )
            )
            continue
        served_ts = rows.inputs[column].to_numpy(dtype=np.float64, na_value=np.nan)
        present = np.isfinite(served_ts)
        ages = (request_ts - served_ts)[present]
        stale = int((ages > sla).sum()) if sla is not None and ages.size else 0
        share = stale / ages.size if sla is not None and ages.size else None
        p50, p95 = (float(v) for v in np.percentile(ages, [50, 95])) if ages.size else (None, None)
        note = None if sla is not None else "no freshness_sla on the view: ages only"
        level: Level = band_level(share, bands) if sla is not None else "ok"
        if sla is not None and ages.size < MIN_VALUES:
            level, note = "unknown", f"only {ages.size} served values with an event time"
        views.append(
            ViewFreshness(
                name,
                sla,
                int(present.sum()),
                int((~present).sum()),
                stale,
                share,
                p50,
                p95,
                level,
                note,
            )
        )
    judged = [v.level for v in views if v.level != "unknown"]
    inspect, retrain, pause = bands
    return Freshness(
        rows.rows, (inspect, retrain, pause), views, worst(judged) if judged else "unknown"
    )


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    """UTC timestamps as float epoch seconds."""
    import numpy as np
    import pandas as pd

    epoch = pd.Timestamp(0, tz="UTC")
    return ((times - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
