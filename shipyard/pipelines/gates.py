"""The gates a retrain passes before any traffic: validate the data, retrain, scorecard.

1. **validate**: the training window (the newest ``ct.window_rows`` rows of
   ``train.data``, or all of it) is checked against ``train.schema``; any failure halts
   the cycle before anything is trained.
2. **retrain**: the project's own ``train(ctx)`` runs on that window as a normal
   ``shipyard train`` run, its trigger recorded (``shipyard.trigger``, lineage).
3. **scorecard**: the candidate is scored against the champion on the golden set (the
   project's scorecard, stored as for ``shipyard evaluate``, so promotion accepts it
   later) and on the newest labelled production rows from the prediction log, where
   its primary metric may be at most ``ct.max_regression`` worse than the champion's.

Shadow, canary and promotion are the roll-out's (:mod:`shipyard.pipelines.loop`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import Config, Scorecard
    from shipyard.project import Project
    from shipyard.registry import Tracking
    from shipyard.training import TrainResult

__all__ = [
    "GateResult",
    "TrainingWindow",
    "primary_metric",
    "production_comparison",
    "retrain_gate",
    "scorecard_gate",
    "training_window",
    "validate_gate",
]

MIN_PRODUCTION_ROWS = 30


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict and the evidence recorded with it."""

    passed: bool
    evidence: dict[str, Any]
    skipped: bool = False


@dataclass(frozen=True)
class TrainingWindow:
    """The data one cycle trains on, written where the run can snapshot it."""

    train: Path
    validation: Path | None
    source_digest: str
    source_rows: int
    rows: int
    frames: tuple[pd.DataFrame, pd.DataFrame | None]


def training_window(config: Config, folder: Path) -> TrainingWindow:
    """Read ``train.data``; with ``ct.window_rows``, write its newest rows to ``folder``."""
    from shipyard.data import dataset_digest, read_frame

    if config.train.data is None:
        raise ConfigError(
            "Continuous training needs train.data.",
            hint="Set train.data to the file or folder new labelled data lands in.",
        )
    source = config.resolve(config.train.data)
    frame = read_frame(source)
    digest = dataset_digest(frame)
    size = config.ct.window_rows
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

    evidence: dict[str, Any] = {
        "source_digest": window.source_digest,
        "source_rows": window.source_rows,
        "window_rows": window.rows,
    }
    if config.train.data_schema is None:
        return GateResult(
            True, {**evidence, "note": "no train.schema configured; data not validated"}, True
        )
    schema = load_schema(config.resolve(config.train.data_schema))
    failures: list[dict[str, Any]] = []
    for name, frame in zip(("train", "validation"), window.frames, strict=True):
        if frame is None:
            continue
        report = validate(frame, schema)
        failures += [{**f, "part": name} for f in report.to_dict()["failures"]]
    evidence["failures"] = failures[:50]
    evidence["failure_count"] = len(failures)
    return GateResult(not failures, evidence)


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
    evidence: dict[str, Any] = {
        "golden": {
            "passed": record.passed,
            "failing": record.failing,
            "digest": record.golden_digest,
            "champion": record.champion_version,
            "report": record.report_path,
        }
    }
    production = production_comparison(config, tracking, model, candidate, champion)
    evidence["production"] = production
    passed = record.passed and bool(production.get("passed", True))
    return GateResult(passed, evidence)


def production_comparison(
    config: Config, tracking: Tracking, model: str, candidate: str, champion: str | None
) -> dict[str, Any]:
    """Candidate vs champion on the newest ``ct.recent_labelled`` labelled live rows."""
    wanted = config.ct.recent_labelled
    if wanted == 0 or champion is None:
        return {"note": "not compared (ct.recent_labelled is 0 or there is no champion)"}
    frame = recent_labelled(config, model, wanted)
    if len(frame) < MIN_PRODUCTION_ROWS:
        return {
            "rows": len(frame),
            "note": f"only {len(frame)} labelled production rows (need {MIN_PRODUCTION_ROWS}); "
            "compared on the golden set only",
        }
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
            task=config.model.task,
        )
        values[role] = float(measured.metrics.get(metric, float("nan")))
    lower = metric in LOWER_IS_BETTER
    worse_by = (
        values["candidate"] - values["champion"]
        if lower
        else values["champion"] - values["candidate"]
    )
    return {
        "rows": len(frame),
        "metric": metric,
        "candidate": values["candidate"],
        "champion": values["champion"],
        "worse_by": worse_by,
        "max_regression": config.ct.max_regression,
        "passed": bool(worse_by <= config.ct.max_regression),
    }


def recent_labelled(config: Config, model: str, rows: int) -> pd.DataFrame:
    """The newest ``rows`` live predictions that have a label, as inputs plus target."""
    import numpy as np

    from shipyard.monitoring.log_window import WindowSpec, load_window

    root = config.resolve(config.serving.logs)
    if not root.exists():
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
