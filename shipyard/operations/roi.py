"""Return on the platform, from the event log and the control-plane tables, with trends.

    report = roi_metrics(project, since=None, period="7d")
    report.metric("mttd").value        # seconds, or None when nothing was measured
    report.to_dict()                   # what `shipyard maturity --json` and the UI show

Each metric has its value over the whole window, its unit, how many observations it
rests on (``n``), and the same per period (the trend, oldest first). How each one is
measured:

- **iteration_time** (median, s): a version's data snapshot (when the version was the
  first to train on it) or its run's start (a code change on known data) → that version
  serving as champion (its first promotion, or the first server that swapped to it);
- **deployment_frequency** (promotions per period): champion promotions;
- **change_failure_rate** (ratio): changes rolled back ÷ changes rolled out. A change is
  a champion promotion or a roll-out that ended without one; it failed when a roll-out
  was rolled back or aborted, or the champion was rolled back by hand;
- **mttd** and **mttr** (mean, s): see :mod:`shipyard.operations.timings`;
- **retraining_cost** (sum, in the configured currency): the ``cost`` each training run
  recorded (``{cpu_seconds, amount, currency}``), failed runs included; runs without one
  are counted as unknown;
- **retrain_ship_rate** (ratio): continuous-training cycles promoted ÷ cycles finished.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard.access import Scope
from shipyard.jsonable import Record
from shipyard.moments import as_utc, parse_duration
from shipyard.operations.history import History, is_champion_move, load_history
from shipyard.operations.timings import incidents
from shipyard.store.events import Event

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["MAX_PERIODS", "RoiMetric", "RoiReport", "TrendPoint", "compute_roi", "roi_metrics"]

MAX_PERIODS = 52
"""The trend shows at most this many periods (the latest ones)."""

Sample = tuple[datetime, float]
Aggregate = Callable[[list[float], float], float | None]


@dataclass(frozen=True)
class TrendPoint(Record):
    """A metric over one period: the period's start, its value and its observations."""

    start: datetime
    value: float | None
    n: int


@dataclass(frozen=True)
class RoiMetric(Record):
    """One ROI metric: value over the window, unit, observations, trend, and how it is read."""

    key: str
    name: str
    value: float | None  # None: nothing to measure yet (see ``detail``)
    unit: str
    n: int
    trend: tuple[TrendPoint, ...]
    detail: str


@dataclass(frozen=True)
class RoiReport(Record):
    """The ROI metrics of a project over ``[since, until]``, each with a per-period trend."""

    since: datetime | None
    until: datetime
    period: str
    metrics: tuple[RoiMetric, ...]

    def metric(self, key: str) -> RoiMetric:
        """The metric named ``key`` (``KeyError`` names the keys there are)."""
        for metric in self.metrics:
            if metric.key == key:
                return metric
        raise KeyError(f"no ROI metric {key!r}; there are {[m.key for m in self.metrics]}")


_KINDS = (
    "dataset.snapshotted",
    "run.finished",
    "run.failed",
    "model_version.registered",
    "alias.promote",
    "alias.override",
    "alias.rollback",
    "serving.swapped",
    "alert.opened",
    "rollout.rolled_back",
    "rollout.aborted",
    "rollout.alert_delivered",
    "rollout.alert_failed",
)


def roi_metrics(
    project: Project,
    since: datetime | None = None,
    period: str = "7d",
    *,
    until: datetime | None = None,
    model: str | None = None,
) -> RoiReport:
    """The project's ROI metrics (of ``model`` only, when given) since ``since``.

    Needs ``models:read``. ``period`` is a duration (``1d``, ``7d``, ``4w``) that cuts the
    window into the trend's periods.
    """
    project.authorize(Scope.MODELS_READ, model)
    history = load_history(project.store, model=model, kinds=_KINDS)
    currency = project.config.cost.currency
    return compute_roi(history, since=since, until=until, period=period, currency=currency)


def compute_roi(
    history: History,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    period: str = "7d",
    currency: str = "",
) -> RoiReport:
    """The ROI metrics of ``history`` (a pure function of it; see the module docstring)."""
    step = parse_duration(period, flag="--period")
    end = as_utc(until or datetime.now(UTC))
    start = as_utc(since) if since is not None else _first_moment(history, end, step)
    periods = _periods(start, end, step)
    window = _Window(start, end, periods, step)
    found = incidents(history)
    detected = [i for i in found if i.detected is not None]
    metrics = (
        window.metric(
            "iteration_time",
            "Model iteration time (data or code → serving champion)",
            _iteration_samples(history),
            "s",
            _median,
            "median over versions that became champion",
        ),
        window.metric(
            "deployment_frequency",
            "Deployment frequency",
            [(e.at, 1.0) for e in _promotions(history)],
            f"promotions per {period}",
            _per_period,
            f"champion promotions per {period}",
        ),
        window.metric(
            "change_failure_rate",
            "Change failure rate",
            _change_samples(history),
            "ratio",
            _mean,
            "rolled back ÷ rolled out (roll-outs rolled back or aborted, champions rolled back)",
        ),
        window.metric(
            "mttd",
            "Mean time to detect",
            [(i.onset, i.time_to_detect or 0.0) for i in detected],
            "s",
            _mean,
            "drift onset or guardrail breach → alert opened (or page sent)",
        ),
        window.metric(
            "mttr",
            "Mean time to recover",
            [(i.onset, t) for i in detected if (t := i.time_to_recover) is not None],
            "s",
            _mean,
            "alert → healthy champion (a rollback or promotion, then an ok monitor run)",
        ),
        _cost_metric(window, history, currency),
        window.metric(
            "retrain_ship_rate",
            "Share of retrains that shipped",
            [
                (c.updated, 1.0 if c.state == "promoted" else 0.0)
                for c in history.cycles
                if c.state in ("promoted", "rolled_back", "halted", "failed")
            ],
            "ratio",
            _mean,
            "continuous-training cycles promoted ÷ cycles finished",
        ),
    )
    return RoiReport(since=since, until=end, period=period, metrics=metrics)


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime
    periods: list[datetime]
    step: timedelta

    def metric(
        self,
        key: str,
        name: str,
        samples: Sequence[Sample],
        unit: str,
        aggregate: Aggregate,
        detail: str,
        *,
        unknown: str = "",
    ) -> RoiMetric:
        inside = [value for at, value in samples if self.start <= at <= self.end]
        span = max((self.end - self.start) / self.step, 1.0)
        value = aggregate(inside, span) if inside else None
        if value is None and aggregate is _per_period:
            value = 0.0  # no promotion is a frequency too
        trend = []
        for begin in self.periods:
            stop = begin + self.step
            values = [
                v
                for at, v in samples
                if self.start <= at and (begin <= at < stop or at == stop == self.end)
            ]
            point = (
                aggregate(values, 1.0) if values else (0.0 if aggregate is _per_period else None)
            )
            trend.append(TrendPoint(begin, point, len(values)))
        note = detail if not unknown else f"{detail}; {unknown}"
        return RoiMetric(key, name, value, unit, len(inside), tuple(trend), note)


def _periods(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Period starts, oldest first: back from ``end`` in steps, the last MAX_PERIODS."""
    count = max(1, math.ceil((end - start) / step))
    count = min(count, MAX_PERIODS)
    return [end - step * (count - index) for index in range(count)]


def _first_moment(history: History, end: datetime, step: timedelta) -> datetime:
    moments = [e.at for e in history.events] + [c.started for c in history.cycles]
    moments += [r.at for r in history.monitor_runs]
    return min(moments, default=end - step)


def _median(values: list[float], _span: float) -> float | None:
    return float(statistics.median(values))


def _mean(values: list[float], _span: float) -> float | None:
    return float(statistics.fmean(values))


def _per_period(values: list[float], span: float) -> float | None:
    return sum(values) / span


def _sum(values: list[float], _span: float) -> float | None:
    return float(sum(values))


def _promotions(history: History) -> list[Event]:
    return [e for e in history.events_of("alias.promote", "alias.override") if is_champion_move(e)]


def _change_samples(history: History) -> list[Sample]:
    """1.0 per change that was rolled back, 0.0 per change that stuck.

    A change is a champion promotion (failed when a later rollback moved the champion
    away from that version) or a roll-out that was rolled back or aborted.
    """
    last_undone: dict[tuple[str, Any], datetime] = {}  # (model, version) → its latest rollback
    for event in history.events_of("alias.rollback"):
        if is_champion_move(event):
            key = (_model(event), event.payload.get("from_version"))
            last_undone[key] = max(event.at, last_undone.get(key, event.at))
    samples: list[Sample] = []
    for promotion in _promotions(history):
        undone = last_undone.get((_model(promotion), promotion.payload["to_version"]))
        samples.append((promotion.at, 1.0 if undone and undone > promotion.at else 0.0))
    samples += [(e.at, 1.0) for e in history.events_of("rollout.rolled_back", "rollout.aborted")]
    return sorted(samples)


def _model(event: Event) -> str:
    return event.subject.removeprefix("model:").split("@", 1)[0].split("/", 1)[0]


def _iteration_samples(history: History) -> list[Sample]:
    """(when the version served as champion, seconds since its data or code changed)."""
    registered = {
        (e.subject.removeprefix("model:")): e for e in history.events_of("model_version.registered")
    }
    durations = {
        e.subject.removeprefix("run:"): _duration(e.payload)
        for e in history.events_of("run.finished")
    }
    swaps: dict[str, list[Event]] = {}
    for swapped in history.events_of("serving.swapped"):
        swaps.setdefault(swapped.subject, []).append(swapped)
    first_use: dict[str, str] = {}
    for label, event in registered.items():
        digest = event.payload.get("data_digest")
        if isinstance(digest, str):
            first_use.setdefault(digest, label)
    samples: list[Sample] = []
    seen: set[str] = set()
    for move in _promotions(history):
        label = f"{_model(move)}/{move.payload['to_version']}"
        if label in seen or label not in registered:
            continue
        seen.add(label)
        reg = registered[label]
        digest = reg.payload.get("data_digest")
        began = reg.at - timedelta(seconds=durations.get(str(reg.payload.get("run_id")), 0.0))
        if (
            isinstance(digest, str)
            and first_use.get(digest) == label
            and digest in history.datasets
        ):
            began = min(began, history.datasets[digest])
        swap = next((s for s in swaps.get(f"model:{label}", []) if s.at >= move.at), None)
        served = move.at if swap is None else swap.at
        samples.append((served, max(0.0, (served - began).total_seconds())))
    return samples


def _duration(payload: dict[str, Any]) -> float:
    metrics = payload.get("metrics") or {}
    value = metrics.get("training_duration_seconds") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, int | float) else 0.0


def _cost_metric(window: _Window, history: History, currency: str) -> RoiMetric:
    """The summed ``cost`` of training runs; those without one are reported as unknown."""
    costs: dict[str, tuple[datetime, dict[str, Any] | None]] = {}
    for event in history.events_of("run.finished", "run.failed", "model_version.registered"):
        run = event.subject.removeprefix("run:") if event.kind.startswith("run.") else None
        run = run or str(event.payload.get("run_id"))
        cost = event.payload.get("cost")
        if isinstance(cost, dict) and isinstance(cost.get("amount"), int | float):
            costs[run] = (event.at, cost)
        else:
            costs.setdefault(run, (event.at, None))
    samples = [(at, float(cost["amount"])) for at, cost in costs.values() if cost is not None]
    unknown = sum(
        1 for at, cost in costs.values() if cost is None and window.start <= at <= window.end
    )
    units = {
        str(cost.get("currency")) for _, cost in costs.values() if cost and cost.get("currency")
    }
    unit = ", ".join(sorted(units)) or currency or "currency"
    missing = f"{unknown} run(s) recorded no cost" if unknown else ""
    return window.metric(
        "retraining_cost",
        "Retraining compute cost",
        samples,
        unit,
        _sum,
        "the cost training runs recorded, failed ones included (CPU and GPU time priced "
        "with the cost section)",
        unknown=missing,
    )
