"""Snapshots remembered by the control plane: one dataset row and one event per new one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.store import DatasetRow, EventKind, Store

if TYPE_CHECKING:
    from shipyard.data.snapshot import Snapshot

__all__ = ["record_snapshot"]


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
