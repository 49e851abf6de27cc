"""The data a training run sees: snapshotted, recorded and validated before training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.config import Config
from shipyard.errors import ConfigError
from shipyard.storage import artifact_location
from shipyard.store import DatasetRow, EventKind, Store

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data import Snapshot

__all__ = ["TrainingInputs", "prepare_inputs", "record_snapshot"]


@dataclass(frozen=True)
class TrainingInputs:
    """Snapshots of the training (and validation) data and the frames read from them."""

    train: Snapshot
    train_frame: pd.DataFrame
    validation: Snapshot | None
    validation_frame: pd.DataFrame | None
    validated: bool


def record_snapshot(store: Store, snap: Snapshot) -> bool:
    """Remember a snapshot in the control plane; an event when it is new."""
    is_new = store.save_dataset(
        DatasetRow(
            digest=snap.digest,
            source=snap.source,
            format=snap.format,
            rows=snap.rows,
            columns=len(snap.columns),
            stored_uri=snap.stored_uri,
            dvc_md5=snap.dvc.md5 if snap.dvc else None,
            dvc_path=snap.dvc.path if snap.dvc else None,
        )
    )
    if is_new:
        payload: dict[str, object] = {
            "source": snap.source,
            "rows": snap.rows,
            "columns": len(snap.columns),
        }
        if snap.dvc is not None and snap.dvc.stale:
            payload["dvc_stale"] = {"pointer_md5": snap.dvc.pointer_md5, "file_md5": snap.dvc.md5}
        store.record(EventKind.DATASET_SNAPSHOTTED, f"dataset:{snap.digest}", payload)
    return is_new


def prepare_inputs(config: Config, store: Store, *, subject: str) -> TrainingInputs:
    """Snapshot the configured data and validate it; halts (with an event) on failure."""
    from shipyard.data import load_schema, snapshot, validate

    if config.train.data is None:
        raise ConfigError(
            "No training data configured.",
            hint="Set train.data in shipyard.yaml to a CSV or Parquet file or folder.",
        )
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
