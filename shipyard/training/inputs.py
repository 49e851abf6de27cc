"""The data a training run sees: snapshotted, recorded and validated before training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from shipyard.config import Config
from shipyard.errors import ConfigError, ShipyardError
from shipyard.project import Project
from shipyard.registry import tags
from shipyard.storage import artifact_location
from shipyard.store import EventKind, Store

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data import Snapshot
    from shipyard.features.training_set import TrainingSet

__all__ = [
    "TrainingInputs",
    "TrainingSets",
    "no_training_data",
    "prepare_inputs",
]


@dataclass(frozen=True)
class TrainingInputs:
    """Snapshots of the training (and validation) data and the frames read from them."""

    train: Snapshot
    train_frame: pd.DataFrame
    validation: Snapshot | None
    validation_frame: pd.DataFrame | None
    validated: bool


def no_training_data() -> ConfigError:
    """The error of a run that has neither ``train.data`` nor a training set."""
    return ConfigError(
        "No training data configured.",
        hint="Set train.data in shipyard.yaml to a CSV or Parquet file or folder, or build "
        "the data in train(ctx) with ctx.training_set(entities, features).",
    )


@overload
def prepare_inputs(
    config: Config, store: Store, *, subject: str, optional: Literal[False] = False
) -> TrainingInputs: ...


@overload
def prepare_inputs(
    config: Config, store: Store, *, subject: str, optional: bool
) -> TrainingInputs | None: ...


def prepare_inputs(
    config: Config, store: Store, *, subject: str, optional: bool = False
) -> TrainingInputs | None:
    """Snapshot the configured data and validate it; halts (with an event) on failure.

    Without ``train.data``: a ConfigError, or with ``optional`` None (the train function
    builds its data with ``ctx.training_set``; see :class:`TrainingSets`).
    """
    from shipyard.data import load_schema, record_snapshot, snapshot, validate

    if config.train.data is None:
        if not optional:
            raise no_training_data()
        if config.train.validation_data is not None:
            raise ConfigError(
                "train.validation_data is set but train.data is not.",
                hint="Set both, or build both in train(ctx) with ctx.training_set.",
            )
        return None
    root = artifact_location(config)
    train_snap = snapshot(config.resolve(config.train.data), root, dvc=config.data.dvc)
    record_snapshot(store, train_snap)
    # Train on the stored copy so a reproduction later sees exactly the same frame.
    train_frame = train_snap.frame()
    valid_snap, valid_frame = None, None
    if config.train.validation_data is not None:
        valid_snap = snapshot(
            config.resolve(config.train.validation_data), root, dvc=config.data.dvc
        )
        record_snapshot(store, valid_snap)
        valid_frame = valid_snap.frame()

    schema_path: Path | None = config.train.data_schema
    if schema_path is None:
        return TrainingInputs(train_snap, train_frame, valid_snap, valid_frame, validated=False)
    schema = load_schema(config.resolve(schema_path))
    for snap, frame in ((train_snap, train_frame), (valid_snap, valid_frame)):
        if snap is None or frame is None:
            continue
        report = validate(frame, schema)
        if not report.ok:
            store.record(
                EventKind.TRAINING_HALTED,
                subject,
                {
                    "reason": "data validation failed",
                    "dataset": snap.digest,
                    "source": snap.source,
                    "failures": report.to_dict()["failures"],
                },
            )
            report.raise_for_failures()
    return TrainingInputs(train_snap, train_frame, valid_snap, valid_frame, validated=True)


@dataclass
class TrainingSets:
    """The point-in-time training sets a run's train function built (``ctx.training_set``).

    Each is snapshotted and recorded like any dataset. The first one is the run's
    training set: its lineage becomes the ``shipyard.features`` tag of the run and the
    model version, and, when ``train.data`` is not set, its snapshot is the run's data.
    """

    project: Project
    built: list[TrainingSet] = field(default_factory=list)
    failed: ShipyardError | None = None  # what the last build raised, if anything

    def build(self, entities: Any, features: Any, **options: Any) -> TrainingSet:
        """``features.training_set`` for the run's project (it records its snapshot),
        remembered."""
        from shipyard.features.training_set import training_set

        try:
            result = training_set(self.project, entities, features, **options)
        except ShipyardError as exc:
            self.failed = exc
            raise
        self.built.append(result)
        return result

    @property
    def first(self) -> TrainingSet | None:
        """The run's training set, if the train function built one."""
        return self.built[0] if self.built else None

    def tags(self, configured: TrainingInputs | None) -> dict[str, str]:
        """The tags the run and version get from the training set (none without one)."""
        first = self.first
        if first is None:
            return {}
        found = {tags.FEATURES: first.tag_value()}
        if configured is None:
            found[tags.DATA_DIGEST] = first.snapshot.digest
            found[tags.DATA_SOURCE] = first.snapshot.source
        return found

    def inputs(self, configured: TrainingInputs | None) -> TrainingInputs:
        """The run's inputs: the configured data, else the training set (an error if neither)."""
        if configured is not None:
            return configured
        first = self.first
        if first is None:
            raise no_training_data()
        return TrainingInputs(first.snapshot, first.frame, None, None, validated=False)
