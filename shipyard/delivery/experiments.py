"""A/B experiments: split a model's live traffic between versions and declare a winner.

An experiment's arms are versions of one model, and the champion must be one of them:
it keeps the champion alias and the share the other arms leave, and the other arms are
challengers of the model's traffic settings (sticky by request key, like any
challenger: :mod:`shipyard.serving.router`). So starting or stopping an experiment is
one traffic write through the audited path, and stopping gives all traffic back to
the champion. An experiment is refused while a roll-out or another experiment holds
the model's traffic.

Each arm's evidence is a per-prediction metric over its live predictions since the
experiment began, joined by request id with the label log (the latest label of each):

- ``accuracy`` (1 when right, higher is better) and ``error_rate`` (1 when wrong) for
  classifiers;
- ``mse`` (also accepted as ``rmse``: the test compares mean squared errors, and the
  root is monotone) and ``mae`` for regressors;
- ``outcome:NAME``: a business outcome posted to ``POST /v1/feedback`` as
  ``{"request_id": …, "outcome": {"name": NAME, "value": …}}`` (higher is better,
  unless ``--lower-is-better``); the mean over the arm's predictions that have one.

Metrics that are not a mean of per-prediction values (precision, recall, F1, AUC, R²,
MAPE's share of the whole, calibration error) are refused: the sequential test needs
independent per-prediction observations. A KPI of ``kpis:`` is not a metric here for
the same reason: it is an aggregate over a period's outcomes (see
:mod:`shipyard.monitoring.kpis`), with no value per prediction.

:mod:`shipyard.delivery.experiment_stats` holds the test (always valid, pairwise with a
Bonferroni split for more than two arms); the agent looks at every tick
(:mod:`shipyard.agent.experiments`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from shipyard.access import Scope
from shipyard.delivery.experiment_stats import ExperimentTest, ExperimentVerdict
from shipyard.delivery.guardrail_window import same_label
from shipyard.delivery.rollout import active_rollout
from shipyard.delivery.sequential import Direction, MeanStats
from shipyard.errors import ConfigError, NotFoundError
from shipyard.logs.reader import sql_literal
from shipyard.moments import as_utc
from shipyard.store import EventKind, ExperimentRow
from shipyard.store.experiments import (
    Experiment,
    active_experiment,
    change_experiment,
    insert_experiment,
    list_experiments,
)
from shipyard.store.traffic import TrafficSettings

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = [
    "ArmMetric",
    "arm_metric",
    "arm_stats",
    "decide_experiment",
    "experiment_test",
    "start_experiment",
    "stop_experiment",
]

Source = Literal["labels", "outcomes"]
OUTCOME_PREFIX = "outcome:"


@dataclass(frozen=True)
class ArmMetric:
    """How one prediction becomes one observation: its SQL over ``output`` and
    ``label`` (or an outcome's ``value``), where it comes from, which way is better."""

    name: str
    source: Source
    direction: Direction
    sql: str
    outcome: str | None = None

    @property
    def binary(self) -> bool:
        """Whether each observation is 0 or 1 (right or wrong)."""
        return self.name in ("accuracy", "error_rate")


_LABEL_METRICS: dict[str, tuple[Direction, str]] = {
    "accuracy": (
        "higher_is_better",
        f"CASE WHEN {same_label('output', 'label')} THEN 1.0 ELSE 0.0 END",
    ),
    "error_rate": (
        "lower_is_better",
        f"CASE WHEN {same_label('output', 'label')} THEN 0.0 ELSE 1.0 END",
    ),
    "mse": ("lower_is_better", "pow(__y - __p, 2)"),
    "rmse": ("lower_is_better", "pow(__y - __p, 2)"),
    "mae": ("lower_is_better", "abs(__y - __p)"),
}
_NUMBER = "TRY_CAST(({0} ->> '$') AS DOUBLE)"


def arm_metric(name: str, *, lower_is_better: bool = False) -> ArmMetric:
    """The per-prediction metric ``name`` (see the module docstring), or a ConfigError."""
    if name.startswith(OUTCOME_PREFIX):
        outcome = name[len(OUTCOME_PREFIX) :].strip()
        if not outcome:
            raise ConfigError(
                f"Metric {name!r} names no outcome.", hint="Write e.g. --metric outcome:revenue."
            )
        direction: Direction = "lower_is_better" if lower_is_better else "higher_is_better"
        return ArmMetric(name, "outcomes", direction, "value", outcome)
    found = _LABEL_METRICS.get(name)
    if found is None:
        raise ConfigError(
            f"{name!r} is not a per-prediction metric an experiment can test.",
            hint=f"Use one of {', '.join(sorted(_LABEL_METRICS))}, or outcome:NAME for a "
            "business outcome posted to POST /v1/feedback. Aggregates (F1, AUC, R², KPIs) "
            "have no value per prediction.",
        )
    direction, sql = found
    sql = sql.replace("__y", _NUMBER.format("label")).replace("__p", _NUMBER.format("output"))
    return ArmMetric(name, "labels", direction, sql)


def start_experiment(
    project: Project,
    model: str,
    arms: list[str],
    *,
    metric: str,
    split: list[float] | None = None,
    name: str | None = None,
    min_effect: float | None = None,
    alpha: float | None = None,
    power: float | None = None,
    lower_is_better: bool = False,
    now: datetime | None = None,
) -> Experiment:
    """Start an experiment on ``model`` between ``arms`` (versions, the champion among
    them): check it, store it, split the traffic. Needs ``models:deploy``."""
    project.authorize(Scope.MODELS_DEPLOY, model)
    from shipyard.registry import get_version
    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version
    from shipyard.registry.refs import ModelRef

    settings = project.config.experiments
    chosen = arm_metric(metric, lower_is_better=lower_is_better)
    test = ExperimentTest(
        alpha=settings.alpha if alpha is None else alpha,
        power=settings.power if power is None else power,
        min_effect=settings.min_effect if min_effect is None else min_effect,
        direction=chosen.direction,
        min_samples=settings.min_samples,
    )
    arms = [str(arm).strip() for arm in arms]
    if len(arms) < 2 or len(set(arms)) != len(arms) or not all(arms):
        raise ConfigError(
            f"Arms {arms} are not two or more different versions.", hint="E.g. --arms 3,4."
        )
    shares = _shares(split, len(arms))
    for arm in arms:
        get_version(project.client, ModelRef(model, version=arm))  # NotFoundError names it
    store = project.store
    champion = trusted_version(store, model, CHAMPION)
    if champion not in arms:
        raise ConfigError(
            f"The champion of {model} ({champion or 'none'}) is not one of the arms {arms}.",
            hint="An experiment splits the champion's traffic: include the champion as an arm, "
            "or promote one of the arms to champion first.",
        )
    rollout = active_rollout(store, model)
    if rollout is not None:
        raise ConfigError(
            f"{model} has a roll-out in progress ({rollout.candidate}, {rollout.state}).",
            hint=f"Finish it first: `shipyard rollout abort {model}` or wait for it.",
        )
    running = active_experiment(store, model)
    if running is not None:
        raise ConfigError(
            f"{model} already has an experiment: {running.name} ({running.state}).",
            hint=f"Stop it first: `shipyard experiment stop {model}`.",
        )
    moment = as_utc(now or datetime.now(UTC))
    label = name or f"{'-vs-'.join(arms)}-{moment:%Y%m%dT%H%M%S}"
    if any(e.name == label for e in list_experiments(store, model=model)):
        raise ConfigError(
            f"{model} already had an experiment called {label!r}.",
            hint="Give this one another --name.",
        )
    row = ExperimentRow(
        model=model,
        name=label,
        arms=arms,
        split=shares,
        metric=chosen.name,
        source=chosen.source,
        min_effect=test.min_effect,
        alpha=test.alpha,
        power=test.power,
        state="running",
        winner=None,
        decision={"direction": chosen.direction, "min_samples": test.min_samples},
        history=[{"at": moment.isoformat(), "from": None, "to": "running", "reason": "started"}],
        started_by=store.actor or "",
        created_at=moment,
        updated_at=moment,
    )
    traffic = TrafficSettings(
        challengers={arm: share for arm, share in zip(arms, shares, strict=True) if arm != champion}
    )
    return insert_experiment(store, row, traffic, reason=f"experiment {label} started")


def stop_experiment(project: Project, model: str, reason: str = "") -> Experiment:
    """Stop ``model``'s experiment; all traffic goes back to the champion."""
    project.authorize(Scope.MODELS_DEPLOY, model)
    experiment = active_experiment(project.store, model)
    if experiment is None:
        raise NotFoundError(
            f"{model} has no experiment in progress.", hint="See `shipyard experiment list`."
        )
    return change_experiment(
        project.store,
        experiment.id,
        EventKind.EXPERIMENT_STOPPED,
        state="stopped",
        reason=reason or "stopped by hand",
        traffic=TrafficSettings(),
    )


def experiment_test(experiment: Experiment) -> ExperimentTest:
    """The sequential test an experiment was started with."""
    direction = experiment.decision.get("direction", "higher_is_better")
    return ExperimentTest(
        alpha=experiment.alpha,
        power=experiment.power,
        min_effect=experiment.min_effect,
        direction=direction,
        min_samples=int(experiment.decision.get("min_samples", 100)),
    )


def arm_stats(project: Project, experiment: Experiment) -> dict[str, MeanStats]:
    """Each arm's observations of the metric since the experiment began (zeros when none)."""
    import duckdb

    from shipyard.logs.reader import log_source, query_log
    from shipyard.logs.root import project_log_root

    root = project_log_root(project.config)
    direction = experiment.decision.get("direction", "higher_is_better")
    metric = arm_metric(experiment.metric, lower_is_better=direction == "lower_is_better")
    kind = metric.source
    empty = {arm: MeanStats(0, 0.0, 0.0) for arm in experiment.arms}
    with duckdb.connect() as con:
        if log_source(con, root, kind, experiment.model) is None:
            return empty
    since = as_utc(experiment.created_at)
    arms = ", ".join(sql_literal(arm) for arm in experiment.arms)
    answered = (
        "SELECT version, request_id, output FROM log "
        f"WHERE role = 'live' AND status = 'ok' AND version IN ({arms})"
    )
    summary = (
        "SELECT version, count(x) AS n, avg(x) AS mean, var_samp(x) AS var FROM judged "
        "WHERE isfinite(x) GROUP BY version"
    )
    if metric.source == "labels":
        sql = (
            f"WITH answered AS ({answered}), latest AS (SELECT request_id, "
            "arg_max(label, time) AS label FROM labels "
            f"WHERE model = {sql_literal(experiment.model)} GROUP BY request_id), "
            f"judged AS (SELECT version, {metric.sql} AS x FROM answered "
            "JOIN latest USING (request_id) WHERE label IS NOT NULL AND label <> 'null') "
            f"{summary}"
        )
        rows = query_log(root, experiment.model, since=since, sql=sql, labels_since=since)
    else:  # outcomes are a log of their own: read each side, then join them in memory
        outcomes = query_log(
            root,
            experiment.model,
            kind="outcomes",
            since=since,
            sql="SELECT request_id, arg_max(value, time) AS value FROM log "
            f"WHERE name = {sql_literal(metric.outcome or '')} GROUP BY request_id",
        )
        predictions = query_log(root, experiment.model, since=since, sql=answered)
        with duckdb.connect() as con:
            con.register("outcomes", outcomes)
            con.register("predictions", predictions)
            rows = con.sql(
                "WITH judged AS (SELECT version, value AS x FROM predictions "
                f"JOIN outcomes USING (request_id) WHERE value IS NOT NULL) {summary}"
            ).to_arrow_table()
    found = dict(empty)
    for row in rows.to_pylist():
        count = int(row["n"] or 0)
        variance = float(row["var"]) if row["var"] is not None and count > 1 else 0.0
        mean = float(row["mean"]) if row["mean"] is not None else 0.0
        if metric.binary:
            # The "plus two" rate's variance, as the roll-out guardrails use: an arm with
            # no errors yet still has one, so two perfect arms can still tie.
            plus_two = (mean * count + 1) / (count + 2)
            variance = plus_two * (1 - plus_two)
        found[str(row["version"])] = MeanStats(count, mean, variance)
    return found


def decide_experiment(project: Project, experiment: Experiment) -> ExperimentVerdict:
    """The sequential test's verdict on the experiment's evidence so far."""
    from shipyard.registry.aliases import CHAMPION
    from shipyard.registry.pointers import trusted_version

    champion = trusted_version(project.store, experiment.model, CHAMPION)
    return experiment_test(experiment).decide(arm_stats(project, experiment), control=champion)


def _shares(split: list[float] | None, arms: int) -> list[float]:
    """The arms' shares of traffic as fractions adding up to 1 (percentages accepted)."""
    if split is None:
        return [1.0 / arms] * arms
    hint = "Give one share per arm adding up to 100, e.g. --split 50,50."
    if len(split) != arms:
        raise ConfigError(f"--split has {len(split)} shares for {arms} arms.", hint=hint)
    if any(not (math.isfinite(s) and s > 0) for s in split):
        raise ConfigError(f"--split {split} has a share that is not positive.", hint=hint)
    total = math.fsum(split)
    if not (math.isclose(total, 100.0, rel_tol=1e-6) or math.isclose(total, 1.0, rel_tol=1e-6)):
        raise ConfigError(f"--split {split} adds up to {total:g}, not 100.", hint=hint)
    return [s / total for s in split]
