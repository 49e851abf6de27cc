"""The reference a version is monitored against: its training data, processed once.

The training snapshot's digest is on the version (``shipyard.data_digest``); the data
under it is read once, the target dropped, and the :class:`Reference` cached as JSON in
``.shipyard/monitoring/<model>/``. Reference predictions (for prediction drift and the
performance estimate) are the version's own scores on its validation snapshot, or on the
training data when there is none, with that snapshot's labels; they are computed afresh
on every call, not cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.errors import NotFoundError
from shipyard.monitoring.reference import Reference

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shipyard.config import Config
    from shipyard.models.served import ServedModel

__all__ = ["ReferenceSet", "reference_set"]


@dataclass(frozen=True, eq=False)
class ReferenceSet:
    """What one version is compared with: feature reference, frame, and its predictions."""

    digest: str
    reference: Reference
    frame: pd.DataFrame  # the reference inputs, in the model's column order
    scores: np.ndarray | None  # positive-class probability (binary) or values, per row
    probabilities: np.ndarray | None
    labels: np.ndarray | None  # true labels of the rows scored, when known
    classes: np.ndarray | None


def reference_set(
    config: Config,
    client: MlflowClient,
    model: ServedModel,
    *,
    digest: str | None = None,
) -> ReferenceSet:
    """The reference of ``model`` (its training snapshot unless ``digest`` names another)."""
    from shipyard.data import load_snapshot
    from shipyard.logs.pii import PiiPolicy
    from shipyard.registry import tags

    version = client.get_model_version(model.name, model.version)
    run_tags = client.get_run(version.run_id).data.tags if version.run_id else {}
    found = {**run_tags, **(version.tags or {})}
    digest = digest or found.get(tags.DATA_DIGEST)
    if not digest:
        raise NotFoundError(
            f"{model.name}/{model.version} has no training snapshot to compare with.",
            hint="Train with `shipyard train`, or set monitoring.reference to a snapshot digest.",
        )
    target = found.get(tags.TARGET) or config.train.target
    columns = list(model.spec.columns)
    cache = config.workspace / "monitoring" / model.name
    # PII-tagged columns as the prediction log keeps them (hashed or dropped), so drift
    # compares like with like and the report never shows a raw value.
    pii = PiiPolicy.from_config(config)
    frame = pii.mask_frame(_inputs(load_snapshot(digest, config.artifact_path).frame(), columns))
    masked = f"-pii{pii.fingerprint}" if pii.tagged else ""
    reference = _cached_reference(cache / f"reference-{digest[:16]}{masked}.json", frame)
    scoring_digest = found.get(tags.VALIDATION_DIGEST) or digest
    scored = load_snapshot(scoring_digest, config.artifact_path).frame()
    labels = scored[target].to_numpy() if target and target in scored.columns else None
    probabilities, scores = _scores(model, _inputs(scored, columns))
    return ReferenceSet(
        digest=digest,
        reference=reference,
        frame=frame,
        scores=scores,
        probabilities=probabilities,
        labels=labels,
        classes=model.classes,
    )


def _inputs(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise NotFoundError(
            f"The reference data has no column {', '.join(map(repr, missing))}.",
            hint="Monitor against a snapshot with the model's inputs (monitoring.reference).",
        )
    return frame[columns].reset_index(drop=True)


def _cached_reference(path: Path, frame: pd.DataFrame) -> Reference:
    if path.is_file():
        return Reference.from_json(path.read_text(encoding="utf-8"))
    reference = Reference.from_frame(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(reference.to_json(), encoding="utf-8")
    temporary.replace(path)
    return reference


def _scores(model: ServedModel, frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """The model's probabilities and one score per row (positive class, or the value)."""
    prediction = model.predict(frame)
    return prediction.probabilities, score_of(prediction.labels, prediction.probabilities)


def score_of(labels: Any, probabilities: np.ndarray | None) -> np.ndarray:
    """One number per prediction: P(positive) for binary, max P for multi-class, else the value."""
    if probabilities is not None:
        if probabilities.shape[1] == 2:
            return probabilities[:, 1].astype(np.float64)
        return probabilities.max(axis=1).astype(np.float64)
    return np.asarray(labels, dtype=np.float64)
