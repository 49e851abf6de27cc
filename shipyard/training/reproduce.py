"""``shipyard reproduce``: retrain a version from its record and compare the results."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.access import Scope
from shipyard.config import Config
from shipyard.errors import NotFoundError, NotReproducible
from shipyard.project import Project
from shipyard.registry import tags
from shipyard.registry.environment import capture_environment
from shipyard.registry.git import git_state
from shipyard.registry.refs import ModelRef
from shipyard.registry.tracking import Tracking, mlflow_errors, run_files_problem
from shipyard.registry.views import get_version
from shipyard.store.event_kinds import EventKind
from shipyard.training.context import TrainContext
from shipyard.training.cost import COST_METRIC, CPU_METRIC
from shipyard.training.entrypoint import load_entrypoint
from shipyard.training.runner import DURATION_METRIC, RUN_RECORD, call_train_function

if TYPE_CHECKING:
    from shipyard.features.training_set import TrainingSet
    from shipyard.storage import Location

__all__ = ["MetricComparison", "ReproduceReport", "reproduce"]

# What a run measured about itself (time, CPU, cost), not what it learned: never compared.
_MEASURED = frozenset({DURATION_METRIC, CPU_METRIC, COST_METRIC})


@dataclass(frozen=True)
class MetricComparison:
    """A recorded metric next to its value in the retrain."""

    name: str
    recorded: float
    reproduced: float | None
    within_tolerance: bool


@dataclass(frozen=True)
class ReproduceReport:
    """The verdict of one reproduction and what differed."""

    name: str
    version: str
    reproduced: bool
    metrics: list[MetricComparison]
    predictions_compared: int
    predictions_differing: int
    max_abs_difference: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[str]:
        """One line per thing that did not match."""
        found = [
            f"metric {m.name}: recorded {m.recorded:.6g}, reproduced "
            + ("missing" if m.reproduced is None else f"{m.reproduced:.6g}")
            for m in self.metrics
            if not m.within_tolerance
        ]
        if self.predictions_differing:
            found.append(
                f"predictions: {self.predictions_differing} of {self.predictions_compared} "
                "rows differ"
                + (
                    f" (max |Δ| {self.max_abs_difference:.3g})"
                    if self.max_abs_difference is not None
                    else ""
                )
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {**asdict(self), "differences": self.differences}


def reproduce(
    project: Project,
    ref: ModelRef,
    *,
    tolerance: float = 1e-6,
) -> ReproduceReport:
    """Retrain ``ref`` from its recorded params, seed and data snapshot, then compare.

    Needs the ``models:train`` scope on the model.
    """
    project.authorize(Scope.MODELS_TRAIN, ref.name)
    from shipyard.data import load_snapshot
    from shipyard.models.flavours import load_native

    config, store, tracking = project.config, project.store, project.tracking
    artifacts = project.artifact_location
    version = get_version(tracking.client, ref)
    label = f"{version.name}/{version.version}"
    run_id, record = _run_record(tracking, version.run_id, label)
    try:
        snap = load_snapshot(record["data_digest"], artifacts)
    except NotFoundError:
        raise NotReproducible(
            f"{label} was trained on snapshot {record['data_digest'][:12]}…, which is not in "
            f"{artifacts.url}.",
            hint="Point artifact_root at the store the version was trained with.",
        ) from None
    version_tags = dict(version.tags or {})
    notes = _environment_notes(config, version_tags)
    frame = snap.frame()
    validation = None
    if record.get("validation_digest"):
        validation = load_snapshot(record["validation_digest"], artifacts).frame()
    recorded_set = _recorded_training_set(version_tags, artifacts, label)
    if recorded_set is not None and recorded_set.snapshot.digest == snap.digest:
        frame = frame.iloc[0:0]  # as in the run: no train.data, the training set was its data
    ctx = TrainContext(
        train=frame,
        validation=validation,
        params=dict(record["params"]),
        seed=int(record["seed"]),
        target=record.get("target"),
        # ctx.training_set gives back the recorded rows: the sources may have moved on.
        _training_set=None if recorded_set is None else (lambda *_a, **_k: recorded_set),
    )
    func = load_entrypoint(record["entrypoint"], config.root)
    try:
        model, _ = call_train_function(func, ctx)
    except Exception as exc:
        raise NotReproducible(
            f"Retraining {label} failed: {type(exc).__name__}: {exc}",
            hint="The training code no longer runs on the recorded data and params.",
        ) from exc

    with mlflow_errors(f"Run {run_id}"):
        recorded_metrics = tracking.client.get_run(run_id).data.metrics
    metrics = [
        _compare(name, value, ctx.metrics.get(name), tolerance)
        for name, value in sorted(recorded_metrics.items())
        if name not in _MEASURED
    ]
    if recorded_set is not None:
        features, _ = recorded_set.inputs(ctx.target)
    else:
        features, _ = ctx.features()
    with mlflow_errors(f"Model {label}"):
        original = load_native(
            version.source or f"models:/{label}", record.get("flavour", "python_function")
        )
    compared, differing, max_diff = _compare_predictions(
        original.predict(features), model.predict(features)
    )
    report = ReproduceReport(
        name=version.name,
        version=str(version.version),
        reproduced=all(m.within_tolerance for m in metrics) and differing == 0,
        metrics=metrics,
        predictions_compared=compared,
        predictions_differing=differing,
        max_abs_difference=max_diff,
        notes=notes,
    )
    store.record(EventKind.MODEL_VERSION_REPRODUCED, f"model:{label}", report.to_dict())
    return report


def _recorded_training_set(
    version_tags: dict[str, str], artifacts: Location, label: str
) -> TrainingSet | None:
    """The point-in-time training set the version was trained on, from its tag, if any."""
    from shipyard.data import load_snapshot
    from shipyard.features.training_set import TrainingSet

    text = version_tags.get(tags.FEATURES)
    if not text:
        return None
    lineage = json.loads(text)
    try:
        snapshot = load_snapshot(lineage["snapshot"], artifacts)
    except NotFoundError:
        raise NotReproducible(
            f"{label} was trained on training set {lineage['snapshot'][:12]}…, which is not "
            f"in {artifacts.url}.",
            hint="Point artifact_root at the store the version was trained with.",
        ) from None
    return TrainingSet.recorded(lineage, snapshot)


def _run_record(tracking: Tracking, run_id: str | None, label: str) -> tuple[str, dict[str, Any]]:
    if not run_id:
        raise NotReproducible(
            f"{label} has no run.", hint="Only versions trained by `shipyard train` reproduce."
        )
    from mlflow.exceptions import MlflowException

    elsewhere = run_files_problem(tracking, run_id, label)
    if elsewhere is not None:
        raise elsewhere
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = tracking.client.download_artifacts(run_id, RUN_RECORD, folder)
        except (MlflowException, OSError):
            raise NotReproducible(
                f"{label} was not trained by `shipyard train`: its run records no entrypoint, "
                "seed or data snapshot.",
                hint="Retrain it with `shipyard train` to make future versions reproducible.",
            ) from None
        return run_id, dict(json.loads(Path(path).read_text()))


def _environment_notes(config: Config, version_tags: dict[str, str]) -> list[str]:
    notes = []
    recorded_commit = version_tags.get(tags.GIT_COMMIT)
    current = git_state(config.root)
    if recorded_commit == tags.NOT_A_GIT_REPOSITORY:
        if current is not None:
            notes.append("code: trained outside a git repository; no commit to compare with")
    elif recorded_commit and current and current.commit != recorded_commit:
        notes.append(
            f"code: trained at commit {recorded_commit[:12]}, now at {current.commit[:12]}"
        )
    if current is not None and current.dirty:
        notes.append("code: the work tree has uncommitted changes")
    recorded_env = version_tags.get(tags.ENV_DIGEST)
    if recorded_env and recorded_env != capture_environment().digest:
        notes.append(
            "environment: installed packages differ from the training environment "
            "(see the run's environment/requirements.txt)"
        )
    return notes


def _compare(
    name: str, recorded: float, reproduced: float | None, tolerance: float
) -> MetricComparison:
    ok = reproduced is not None and abs(reproduced - recorded) <= tolerance * max(
        1.0, abs(recorded)
    )
    return MetricComparison(name, recorded, reproduced, ok)


def _compare_predictions(original: Any, retrained: Any) -> tuple[int, int, float | None]:
    import numpy as np

    left, right = np.asarray(original), np.asarray(retrained)
    rows = int(left.shape[0]) if left.ndim else 1
    if left.shape != right.shape:
        return rows, rows, None
    equal = left == right
    if equal.ndim > 1:
        equal = equal.reshape(rows, -1).all(axis=1)
    differing = int((~equal).sum())
    max_diff = None
    if np.issubdtype(left.dtype, np.number) and np.issubdtype(right.dtype, np.number):
        max_diff = float(np.max(np.abs(left.astype(float) - right.astype(float)))) if rows else 0.0
    return rows, differing, max_diff
