"""The gates a retrain passes before any traffic: validate, retrain, scorecard, feature skew.

1. **validate**: the training window (the newest ``ct.window_rows`` rows of
   ``train.data``, or all of it) is checked against ``train.schema``; any failure halts
   the cycle before anything is trained.
2. **retrain**: the project's own ``train(ctx)`` runs on that window as a normal
   ``shipyard train`` run, its trigger recorded (``shipyard.trigger``, lineage).
3. **scorecard**: the candidate is scored against the champion on the golden set (the
   project's scorecard, stored as for ``shipyard evaluate``, so promotion accepts it
   later) and on the newest labelled production rows from the prediction log, where
   its primary metric may be at most ``ct.max_regression`` worse than the champion's.
4. **feature_skew**: for a candidate trained on feature views, the champion's newest
   requests recomputed offline as served for the candidate's features; pause-level
   value skew halts the cycle before the candidate's shadow step (skipped otherwise).

Each is a :class:`~shipyard.pipelines.gate_registry.Gate` registered in that order
(another is added there). Shadow, canary and promotion are the roll-out's
(:mod:`shipyard.pipelines.loop`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError, DataError, TrainingFailed
from shipyard.pipelines.cycles import update_cycle
from shipyard.pipelines.evidence import (
    DataUnreadable,
    GoldenSetVerdict,
    ProductionComparison,
    RetrainEvidence,
    ScorecardEvidence,
    TrainingFailure,
    ValidationEvidence,
)
from shipyard.pipelines.gate_registry import (
    CycleRun,
    Gate,
    GateEvidence,
    GateResult,
    Note,
    TrainingWindow,
    gate_named,
    register,
    registered_gates,
)

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import Config, Scorecard
    from shipyard.project import Project
    from shipyard.registry import Tracking
    from shipyard.training import TrainResult

__all__ = [
    "ROLLOUT_GATES",
    "FeatureSkewGate",
    "GateResult",
    "Retrain",
    "ScorecardGate",
    "SkewEvidence",
    "TrainingWindow",
    "Validate",
    "feature_skew_gate",
    "gate_names",
    "gate_summary",
    "primary_metric",
    "production_comparison",
    "retrain_gate",
    "scorecard_gate",
    "training_window",
    "validate_gate",
]

MIN_PRODUCTION_ROWS = 30


@register
class Validate(Gate):
    """Read the training window and check it against ``train.schema``."""

    name = "validate"

    def describe(self, cycle: CycleRun) -> str:
        """What the person who started the cycle sees."""
        return "validating the new data"

    def run(self, cycle: CycleRun) -> GateResult:
        """Unreadable data fails like invalid data; the window is kept for the retrain."""
        config = cycle.project.config
        try:
            window = training_window(config, config.workspace / "ct" / f"cycle-{cycle.cycle.id}")
        except DataError as error:  # unreadable: as much a failed validation as a bad value
            evidence = DataUnreadable(error.message, error.hint)
            return GateResult(False, evidence, reason="the new data cannot be read")
        cycle.window = window
        cycle.cycle = update_cycle(
            cycle.project.store,
            cycle.cycle.id,
            trigger={
                **cycle.cycle.trigger,
                "source_digest": window.source_digest,
                "source_rows": window.source_rows,
            },
        )
        return validate_gate(config, window)

    def summary(self, evidence: Mapping[str, Any]) -> str:
        """``3400 rows, 0 failures``, or the note when the data was not validated."""
        count = evidence.get("failure_count")
        rows = evidence.get("window_rows")
        return str(evidence.get("note") or f"{rows} rows, {count or 0} failures")


@register
class Retrain(Gate):
    """Run the project's train function on the window, recording the cycle's cause."""

    name = "retrain"

    def describe(self, cycle: CycleRun) -> str:
        """What the person who started the cycle sees."""
        return f"retraining on {_window(cycle).rows} rows"

    def run(self, cycle: CycleRun) -> GateResult:
        """A train function that raises fails the gate; nothing is registered then."""
        window = _window(cycle)
        try:
            result = retrain_gate(cycle.project, window, cycle.trigger.cause)
        except TrainingFailed as error:  # the train function raised: nothing registered
            failure = TrainingFailure(error.message, error.hint, window.rows)
            return GateResult(False, failure, reason="the training function failed")
        cycle.candidate = result
        cycle.cycle = update_cycle(cycle.project.store, cycle.cycle.id, candidate=result.version)
        evidence = RetrainEvidence(
            result.version, result.run_id, window.rows, result.data_digest, result.metrics
        )
        return GateResult(True, evidence)

    def summary(self, evidence: Mapping[str, Any]) -> str:
        """``version 2 on 3400 rows (roc_auc 0.8123, …)``."""
        metrics = evidence.get("metrics") or {}
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if k != "training_duration_seconds"
        )
        return f"version {evidence.get('version')} on {evidence.get('rows')} rows ({shown})"


@register
class ScorecardGate(Gate):
    """Score the candidate against the champion: golden set, then production rows."""

    name = "scorecard"

    def describe(self, cycle: CycleRun) -> str:
        """What the person who started the cycle sees."""
        return f"scoring {cycle.model}/{_candidate(cycle).version} against the champion"

    def run(self, cycle: CycleRun) -> GateResult:
        """The golden set's report travels with the roll-out."""
        version = _candidate(cycle).version
        result = scorecard_gate(cycle.project, cycle.model, version, cycle.champion)
        assert isinstance(result.evidence, ScorecardEvidence)
        cycle.rollout_context["evaluation_report"] = result.evidence.golden.report
        return result

    def summary(self, evidence: Mapping[str, Any]) -> str:
        """``golden set passed; production roc_auc: candidate … vs champion …``."""
        golden = evidence.get("golden") or {}
        production = evidence.get("production") or {}
        text = "golden set " + ("passed" if golden.get("passed") else "failed")
        if golden.get("failing"):
            text += f" ({', '.join(golden['failing'])})"
        if "metric" in production:
            text += (
                f"; production {production['metric']}: candidate "
                f"{production['candidate']:.4f} vs champion {production['champion']:.4f} "
                f"on {production['rows']} labelled rows"
            )
        elif production.get("note"):
            text += f"; {production['note']}"
        return text


@dataclass(frozen=True)
class SkewEvidence(GateEvidence):
    """Value skew of the features a candidate reads, on the traffic served now."""

    level: str
    summary: str
    served_by: str | None  # the version whose logged requests were recomputed
    sampled: int


@register
class FeatureSkewGate(Gate):
    """Before any traffic: the features the candidate reads, as the online store serves
    them now (the champion's newest requests, recomputed offline as served). At the
    pause band of value skew the candidate would be served other values than it was
    trained on: the cycle halts. Skipped for a model without features or traffic.

    Promotion itself refuses pause-level value skew on the candidate's own shadow and
    live requests too (:mod:`shipyard.governance.promotion`).
    """

    name = "feature_skew"

    def describe(self, cycle: CycleRun) -> str:
        """What the person who started the cycle sees."""
        return f"checking the served features {cycle.model}/{_candidate(cycle).version} reads"

    def run(self, cycle: CycleRun) -> GateResult:
        """Pass unless value skew of the candidate's features is at the pause band."""
        return feature_skew_gate(
            cycle.project, cycle.model, _candidate(cycle).version, cycle.champion
        )

    def summary(self, evidence: Mapping[str, Any]) -> str:
        """The value-skew line, e.g. ``value skew pause: driver_stats:conv_rate differs …``."""
        return str(evidence.get("summary") or "")


def feature_skew_gate(
    project: Project, model: str, candidate: str, champion: str | None
) -> GateResult:
    """The feature_skew gate's verdict for ``candidate`` (see :class:`FeatureSkewGate`)."""
    from shipyard.features.skew import FeatureUse
    from shipyard.features.skew_check import check_skew

    use = FeatureUse.from_tags(project.client.get_model_version(model, candidate).tags)
    if use is None:
        return GateResult(True, Note("the candidate reads no feature views"), skipped=True)
    if champion is None:
        return GateResult(
            True, Note("no champion traffic to check served features on"), skipped=True
        )
    settings = project.config.features.skew
    check = check_skew(project, model, champion, last=settings.sample, use=use, include_shadow=True)
    assert check is not None  # use is given
    evidence = SkewEvidence(
        check.value.level, check.value.describe(), champion, check.value.sampled
    )
    if check.value.level == "pause":
        return GateResult(False, evidence, reason=evidence.summary)
    return GateResult(True, evidence, skipped=check.value.level == "unknown")


def _window(cycle: CycleRun) -> TrainingWindow:
    if cycle.window is None:
        raise ConfigError(
            f"Cycle {cycle.cycle.id} has no training window to train on.",
            hint="Keep the validate gate registered before the retrain gate.",
        )
    return cycle.window


def _candidate(cycle: CycleRun) -> TrainResult:
    if cycle.candidate is None:
        raise ConfigError(
            f"Cycle {cycle.cycle.id} has no candidate to score.",
            hint="Keep the retrain gate registered before the scorecard gate.",
        )
    return cycle.candidate


def training_window(config: Config, folder: Path) -> TrainingWindow:
    """Read ``train.data``; with ``ct.window_rows``, write its newest rows to ``folder``.

    A stale DVC pointer on ``train.data`` is logged, or refused under ``data.dvc: strict``
    (the validate gate then fails with the reason).
    """
    from shipyard.data import dataset_digest, read_frame
    from shipyard.data.snapshot import checked_dvc_ref

    if config.train.data is None:
        raise ConfigError(
            "Continuous training needs train.data.",
            hint="Set train.data to the file or folder new labelled data lands in.",
        )
    source = config.resolve(config.train.data)
    size = config.ct.window_rows
    if size is not None or config.data.dvc == "strict":
        # The run then trains on a window copy with no pointer, or must refuse now: the
        # pointer is checked here (the whole file is snapshotted, and checked, otherwise).
        checked_dvc_ref(source, config.data.dvc)
    frame = read_frame(source)
    digest = dataset_digest(frame)
    validation_path = (
        config.resolve(config.train.validation_data) if config.train.validation_data else None
    )
    if size is None:
        validation = read_frame(validation_path) if validation_path else None
        return TrainingWindow(
            source, validation_path, digest, len(frame), len(frame), (frame, validation)
        )
    window = frame.tail(size).reset_index(drop=True)
    held = max(1, round(len(window) * config.ct.validation_share))
    train, valid = window.iloc[:-held], window.iloc[-held:]
    folder.mkdir(parents=True, exist_ok=True)
    train_path, valid_path = folder / "train.parquet", folder / "valid.parquet"
    train.to_parquet(train_path, index=False)
    valid.to_parquet(valid_path, index=False)
    return TrainingWindow(train_path, valid_path, digest, len(frame), len(window), (train, valid))


def validate_gate(config: Config, window: TrainingWindow) -> GateResult:
    """Check the window against ``train.schema``; every failure is evidence."""
    from shipyard.data import load_schema, validate

    sizes = (window.source_digest, window.source_rows, window.rows)
    if config.train.data_schema is None:
        note = "no train.schema configured; data not validated"
        return GateResult(True, ValidationEvidence(*sizes, note=note), skipped=True)
    schema = load_schema(config.resolve(config.train.data_schema))
    failures: list[dict[str, Any]] = []
    for name, frame in zip(("train", "validation"), window.frames, strict=True):
        if frame is None:
            continue
        report = validate(frame, schema)
        failures += [{**f, "part": name} for f in report.to_dict()["failures"]]
    evidence = ValidationEvidence(
        *sizes, failures=tuple(failures[:50]), failure_count=len(failures)
    )
    return GateResult(not failures, evidence, reason="the new data failed validation")


def retrain_gate(project: Project, window: TrainingWindow, cause: str) -> TrainResult:
    """Run the project's train function on the window, as a tracked run with its cause."""
    from shipyard.training import train

    config = project.config
    settings = config.train.model_copy(
        update={"data": window.train, "validation_data": window.validation}
    )
    windowed = config.model_copy(update={"train": settings})
    return train(project.with_config(windowed), trigger=cause)


def scorecard_gate(
    project: Project,
    model: str,
    candidate: str,
    champion: str | None,
) -> GateResult:
    """Golden-set scorecard against the champion, then recent labelled production data."""
    from shipyard.evaluation.evaluate import evaluate_version
    from shipyard.registry.refs import ModelRef

    config, tracking = project.config, project.tracking
    record = evaluate_version(project, ModelRef(model, version=candidate))
    golden = GoldenSetVerdict(
        passed=record.passed,
        failing=tuple(record.failing),
        digest=record.golden_digest,
        champion=record.champion_version,
        report=record.report_path,
    )
    production = production_comparison(config, tracking, model, candidate, champion)
    passed = record.passed and not production.blocks
    evidence = ScorecardEvidence(golden, production)
    return GateResult(passed, evidence, reason="the candidate did not beat the scorecard")


def production_comparison(
    config: Config, tracking: Tracking, model: str, candidate: str, champion: str | None
) -> ProductionComparison:
    """Candidate vs champion on the newest ``ct.recent_labelled`` labelled live rows."""
    wanted = config.ct.recent_labelled
    if wanted == 0 or champion is None:
        return ProductionComparison(
            note="not compared (ct.recent_labelled is 0 or there is no champion)"
        )
    frame = recent_labelled(config, model, wanted)
    if len(frame) < MIN_PRODUCTION_ROWS:
        return ProductionComparison(
            rows=len(frame),
            note=f"only {len(frame)} labelled production rows (need {MIN_PRODUCTION_ROWS}); "
            "compared on the golden set only",
        )
    from shipyard.evaluation import load_for_evaluation, measure
    from shipyard.evaluation.evaluate import load_scorecard
    from shipyard.evaluation.metrics import LOWER_IS_BETTER

    scorecard = _plain(load_scorecard(config))
    metric = primary_metric(config, scorecard)
    target = config.train.target or "target"
    values = {}
    for role, version in (("candidate", candidate), ("champion", champion)):
        source = tracking.client.get_model_version(model, version).source or ""
        measured = measure(
            load_for_evaluation(source),
            frame,
            target=target,
            scorecard=scorecard,
            task=config.model.require_classical(),
        )
        values[role] = float(measured.metrics.get(metric, float("nan")))
    lower = metric in LOWER_IS_BETTER
    worse_by = (
        values["candidate"] - values["champion"]
        if lower
        else values["champion"] - values["candidate"]
    )
    return ProductionComparison(
        rows=len(frame),
        metric=metric,
        candidate=values["candidate"],
        champion=values["champion"],
        worse_by=worse_by,
        max_regression=config.ct.max_regression,
        passed=bool(worse_by <= config.ct.max_regression),
    )


def recent_labelled(config: Config, model: str, rows: int) -> pd.DataFrame:
    """The newest ``rows`` live predictions that have a label, as inputs plus target."""
    import numpy as np

    from shipyard.logs.root import project_log_root
    from shipyard.monitoring.log_window import WindowSpec, load_window

    root = project_log_root(config)
    if isinstance(root, Path) and not root.exists():
        import pandas as pd

        return pd.DataFrame()
    window = load_window(root, model, WindowSpec.parse(f"last:{rows * 4}"))
    mask = window.labelled
    frame = window.inputs.loc[mask].reset_index(drop=True)
    labels = [label for label, keep in zip(window.labels, mask, strict=True) if keep]
    frame[config.train.target or "target"] = np.asarray(labels)
    return frame.tail(rows).reset_index(drop=True)


def primary_metric(config: Config, scorecard: Scorecard | None = None) -> str:
    """The scorecard's primary metric (or its first), else accuracy / rmse by task."""
    if scorecard is None:
        from shipyard.errors import ShipyardError
        from shipyard.evaluation.evaluate import load_scorecard

        try:
            scorecard = load_scorecard(config)
        except ShipyardError:
            scorecard = None
    if scorecard is not None and scorecard.primary is not None:
        return scorecard.primary.metric
    if scorecard is not None and scorecard.metrics:
        return scorecard.metrics[0].metric
    return "accuracy" if config.model.task == "classification" else "rmse"


def _plain(scorecard: Scorecard) -> Scorecard:
    # Production rows are scored for the metric only: no latency loops, no calibration.
    return scorecard.model_copy(update={"latency": None, "calibration": None, "fairness": []})


ROLLOUT_GATES = ("shadow", "canary", "promote")
"""The gates a cycle records as it follows its roll-out, after the registered ones."""


def gate_names() -> tuple[str, ...]:
    """Every gate a cycle may record, in order: the registered ones, then the roll-out's."""
    return (*(gate.name for gate in registered_gates()), *ROLLOUT_GATES)


def gate_summary(gate: dict[str, Any]) -> str:
    """One line of a gate's evidence, for people: the registered gate's own summary."""
    evidence = gate.get("evidence") or {}
    name = gate["gate"]
    registered = gate_named(name)
    if registered is not None:
        return registered.summary(evidence)
    if name in _SUMMARIES:
        return _SUMMARIES[name](evidence)
    return str(evidence.get("reason") or evidence.get("champion") or "")


def _guards_summary(evidence: dict[str, Any]) -> str:
    return "; ".join(str(v.get("reason")) for v in evidence.values() if isinstance(v, dict))


def _promote_summary(evidence: dict[str, Any]) -> str:
    if evidence.get("champion"):
        return f"version {evidence['champion']} is champion"
    return str(evidence.get("reason") or evidence.get("champion") or "")


def _step_summary(evidence: dict[str, Any]) -> str:
    """``step 1 passed, 412 requests: quality 6.1 % (champion 52.9 %), …``."""
    from shipyard.delivery.guardrails import format_value

    found = evidence.get("evidence") or {}
    checks = found.get("checks") or {}
    shown = []
    for check_name in ("quality", "errors", "latency_p99", "disagreement"):
        check = checks.get(check_name) or {}
        if check.get("value") is None:
            continue
        unit = check.get("unit", "")
        text = f"{check_name} {format_value(check['value'], unit)}"
        if check.get("champion") is not None:
            text += f" (champion {format_value(check['champion'], unit)})"
        if check.get("excused_by"):
            text += f", excused by {check['excused_by']}"
        shown.append(text)
    head = str(evidence.get("reason") or found.get("reason") or "")
    if found.get("requests") is not None:
        head += f", {found['requests']} requests"
    return head + (": " + "; ".join(shown) if shown else "")


# What a cycle records besides its registered gates: the guards' refusal, the roll-out's steps.
_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "guards": _guards_summary,
    "shadow": _step_summary,
    "canary": _step_summary,
    "promote": _promote_summary,
}
