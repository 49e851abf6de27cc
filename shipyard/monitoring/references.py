"""The reference a version is monitored against: its training data, processed once.

The training snapshot's digest is on the version (``shipyard.data_digest``); the data
under it is read once, the target dropped, and the :class:`Reference` cached as JSON in
``.shipyard/monitoring/<model>/``. Reference predictions (for prediction drift and the
performance estimate) are the version's own scores on its validation snapshot, or on the
training data when there is none, with that snapshot's labels; they are computed afresh
on every call, not cached.

A version with no training snapshot (a champion registered by plain MLflow code) is
monitored against the file its run logged as its training dataset input
(``mlflow.log_input(..., context="training")``), or against a file named once with
``shipyard monitor reference set NAME/V FILE`` (:func:`set_reference`), which snapshots
it, tags the version ``shipyard.reference_digest`` and records an audited event.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.errors import DataError, NotFoundError
from shipyard.jsonable import Record
from shipyard.monitoring.reference import Reference
from shipyard.storage import artifact_location

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from shipyard.config import Config
    from shipyard.models.served import ServedModel
    from shipyard.project import Project

__all__ = ["ReferenceChange", "ReferenceSet", "reference_set", "set_reference"]

_SET_HINT = "Name one with `shipyard monitor reference set {name}/{version} FILE`."


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
    origin: str = "training snapshot"  # where the reference came from, for people


@dataclass(frozen=True)
class ReferenceChange(Record):
    """A version's monitoring reference, as ``shipyard monitor reference set`` set it."""

    model: str
    version: str
    digest: str
    source: str
    rows: int
    previous: str | None


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
    run = client.get_run(version.run_id) if version.run_id else None
    found = {**(run.data.tags if run else {}), **(version.tags or {})}
    origin = "monitoring.reference"
    if not digest and found.get(tags.REFERENCE_DIGEST):
        digest, origin = found[tags.REFERENCE_DIGEST], "the version's reference"
    if not digest and found.get(tags.DATA_DIGEST):
        digest, origin = found[tags.DATA_DIGEST], "training snapshot"
    if not digest and run is not None:
        digest, origin = _from_dataset_input(config, run, model)
    if not digest:
        raise NotFoundError(
            f"{model.name}/{model.version} has no training snapshot to compare with, and its "
            "run logged no training dataset Shipyard can read.",
            hint=_SET_HINT.format(name=model.name, version=model.version)
            + " Or set monitoring.reference to a snapshot digest.",
        )
    target = found.get(tags.TARGET) or config.train.target
    columns = list(model.spec.columns)
    cache = config.workspace / "monitoring" / model.name
    # PII-tagged columns as the prediction log keeps them (hashed or dropped), so drift
    # compares like with like and the report never shows a raw value.
    pii = PiiPolicy.from_config(config)
    artifacts = artifact_location(config)
    frame = pii.mask_frame(_inputs(load_snapshot(digest, artifacts).frame(), columns))
    masked = f"-pii{pii.fingerprint}" if pii.tagged else ""
    reference = _cached_reference(cache / f"reference-{digest[:16]}{masked}.json", frame)
    # The version's own validation data scores the reference, unless another one was named.
    own = origin == "training snapshot"
    scoring_digest = (found.get(tags.VALIDATION_DIGEST) if own else None) or digest
    scored = load_snapshot(scoring_digest, artifacts).frame()
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
        origin=f"{origin} {digest[:12]}",
    )


def set_reference(project: Project, name: str, version: str, path: Path) -> ReferenceChange:
    """Monitor ``name/version`` against the data at ``path`` from now on.

    The file is snapshotted (content-addressed), checked to hold the model's inputs, and
    the version tagged ``shipyard.reference_digest``, with a ``monitor.reference_set``
    event. Needs the ``monitor:run`` scope on the model.
    """
    from shipyard.access import Scope
    from shipyard.data import snapshot
    from shipyard.models.served import load_served_model
    from shipyard.registry import tags
    from shipyard.registry.refs import ModelRef
    from shipyard.registry.views import get_version
    from shipyard.store.event_kinds import EventKind

    project.authorize(Scope.MONITOR_RUN, name)
    kind = EventKind.MONITOR_REFERENCE_SET
    config, client = project.config, project.client
    registered = get_version(client, ModelRef(name, version=version))
    path = config.resolve(Path(path))
    if not path.exists():
        raise DataError(f"No file or folder {path}.", hint="Give the path of the reference data.")
    taken = snapshot(path, artifact_location(config))
    model = load_served_model(client, name, str(registered.version))
    _inputs(taken.frame(), list(model.spec.columns))  # the reference must hold the inputs
    previous = (registered.tags or {}).get(tags.REFERENCE_DIGEST)
    client.set_model_version_tag(name, str(registered.version), tags.REFERENCE_DIGEST, taken.digest)
    change = ReferenceChange(
        model=name,
        version=str(registered.version),
        digest=taken.digest,
        source=taken.source,
        rows=taken.rows,
        previous=previous,
    )
    project.store.record(
        kind,
        f"model:{name}/{registered.version}",
        {"digest": taken.digest, "source": taken.source, "rows": taken.rows, "previous": previous},
    )
    return change


def _from_dataset_input(config: Config, run: Run, model: ServedModel) -> tuple[str | None, str]:
    """The snapshot of the file the run logged as its training dataset, if it can be read.

    Plain MLflow code records ``mlflow.log_input(from_pandas(df, source=PATH),
    context="training")``; the source path is snapshotted (content-addressed, so once).
    A relative path is read from the project folder.
    """
    import mlflow.data
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from shipyard.data import snapshot

    inputs = run.inputs.dataset_inputs if run.inputs else []
    contexts = {
        id(item): {t.key: t.value for t in item.tags}.get(MLFLOW_DATASET_CONTEXT) for item in inputs
    }
    training = [item for item in inputs if contexts[id(item)] == "training"]
    candidates = training or (inputs if len(inputs) == 1 else [])
    for item in candidates:
        with warnings.catch_warnings():
            # "The specified dataset source can be interpreted in multiple ways": not actionable.
            warnings.simplefilter("ignore", UserWarning)
            source = mlflow.data.get_source(item)
        uri = getattr(source, "uri", None)
        if not isinstance(uri, str) or "://" in uri.removeprefix("file://"):
            continue  # only local files: Shipyard does not fetch remote data here
        path = config.resolve(Path(uri.removeprefix("file://")))
        if not path.exists():
            raise NotFoundError(
                f"{model.name}/{model.version}'s run logged its training data at {uri}, "
                f"and there is no file {path}.",
                hint=_SET_HINT.format(name=model.name, version=model.version),
            )
        taken = snapshot(path, artifact_location(config))
        return taken.digest, f"the run's dataset input {uri}"
    return None, ""


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
