"""Dataset snapshots: a content-addressed, immutable copy of the data a run used.

``snapshot(path, artifact_root)`` stores::

    artifact_root/datasets/<digest>/data.parquet    the data, written once
                                    profile.json    its profile, written once
                                    snapshot.json   where it came from and when

``artifact_root`` is a local folder or a bucket (a :class:`~shipyard.storage.Location`).
Every file is written whole: locally to a temporary name moved into place with
:func:`os.replace`, in a bucket with one PUT, so a crash never leaves half a file behind.

A DVC pointer next to the data is recorded with the snapshot. When it is stale (the file
changed after ``dvc add``) the snapshot says so and records the file's own md5; with
``dvc="strict"`` (``data.dvc``) it is refused instead.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from shipyard.data.digest import dataset_digest
from shipyard.data.dvc import DvcRef, dvc_file_for, read_dvc_ref, stale_md5
from shipyard.data.frames import DataFormat, data_files, read_frame
from shipyard.data.profile import Profile
from shipyard.data.profiling import profile_frame
from shipyard.errors import DataError, NotFoundError
from shipyard.storage import Location

__all__ = [
    "MIN_PREFIX",
    "DvcPolicy",
    "Snapshot",
    "checked_dvc_ref",
    "load_snapshot",
    "snapshot",
    "snapshot_frame",
]

MIN_PREFIX = 8
DvcPolicy = Literal["warn", "strict"]
_log = logging.getLogger(__name__)
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Snapshot:
    """One stored dataset version, named by its content digest."""

    digest: str
    source: str
    rows: int
    columns: list[str]
    format: DataFormat
    created_at: str
    dvc: DvcRef | None
    location: Location

    @property
    def directory(self) -> Path:
        """The snapshot's local folder (a ConfigError when it is in a bucket)."""
        return self.location.local_path()

    @property
    def data_url(self) -> str:
        """Where the stored Parquet copy is: an absolute local path or a bucket URL."""
        return self.location.path("data.parquet")

    @property
    def stored_uri(self) -> str:
        """The stored Parquet copy as a URI (``file://`` locally)."""
        return Path(self.data_url).as_uri() if self.location.is_local else self.data_url

    @property
    def data_path(self) -> Path:
        """The stored Parquet copy of the data, on a local artifact root."""
        return self.directory / "data.parquet"

    @property
    def profile_path(self) -> Path:
        """The stored profile of the data, on a local artifact root."""
        return self.directory / "profile.json"

    @property
    def record_path(self) -> Path:
        """The ``snapshot.json`` this snapshot was written to, on a local artifact root."""
        return self.directory / "snapshot.json"

    def frame(self) -> pd.DataFrame:
        """The stored data; :func:`dataset_digest` of it equals :attr:`digest`."""
        if not self.location.exists("data.parquet"):
            raise DataError(
                f"The data of snapshot {self.digest[:12]} is missing: {self.data_url}.",
                hint="Re-create it with `shipyard data snapshot PATH` from the original data.",
            )
        if self.location.is_local:
            return read_frame(self.data_path)
        data = self.location.read_bytes("data.parquet")
        return pd.read_parquet(io.BytesIO(data), engine="pyarrow").reset_index(drop=True)

    def profile(self) -> Profile:
        """The stored profile of the data."""
        if self.location.is_local:
            return Profile.load(self.profile_path)
        try:
            return Profile.from_json(self.location.read_text("profile.json"))
        except FileNotFoundError:
            raise DataError(
                f"No profile at {self.location.path('profile.json')}.",
                hint="Profiles are written by `shipyard data snapshot PATH`.",
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, including the stored files' paths (or URLs)."""
        return {
            **self._record(),
            "data_path": self.data_url,
            "profile_path": self.location.path("profile.json"),
        }

    def _record(self) -> dict[str, Any]:
        # What snapshot.json holds: no absolute paths into the artifact store, which may move.
        return {
            "digest": self.digest,
            "source": self.source,
            "rows": self.rows,
            "columns": list(self.columns),
            "format": self.format,
            "created_at": self.created_at,
            "dvc": None if self.dvc is None else _dvc_record(self.dvc),
        }


def snapshot(path: Path, artifact_root: Path | Location, *, dvc: DvcPolicy = "warn") -> Snapshot:
    """Read the data at ``path``, store it under its digest once, and describe it.

    Snapshotting the same content again does not rewrite the data or the profile; the
    returned record is the stored one when source and DVC version are unchanged. A stale
    DVC pointer is logged as a warning and recorded (``dvc.pointer_md5``), or raises
    :class:`DataError` under ``dvc="strict"``.
    """
    path = Path(path)
    fmt, _ = data_files(path)
    pointer = checked_dvc_ref(path, dvc)
    return _stored(read_frame(path), os.path.abspath(path), fmt, pointer, artifact_root)


def snapshot_frame(frame: pd.DataFrame, artifact_root: Path | Location, *, source: str) -> Snapshot:
    """Store an in-memory frame (e.g. a point-in-time training set) like :func:`snapshot`.

    ``source`` says where the frame came from (it is recorded, not read).
    """
    return _stored(frame, source, "parquet", None, artifact_root)


def _stored(
    frame: pd.DataFrame,
    source: str,
    fmt: DataFormat,
    pointer: DvcRef | None,
    artifact_root: Path | Location,
) -> Snapshot:
    """Write ``frame`` under its digest once, with its profile and record."""
    digest = dataset_digest(frame)
    directory = _root(artifact_root).child("datasets", digest)
    taken = Snapshot(
        digest=digest,
        source=source,
        rows=len(frame),
        columns=[str(name) for name in frame.columns],
        format=fmt,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dvc=pointer,
        location=directory,
    )
    if not directory.exists("data.parquet"):
        directory.write_bytes("data.parquet", _parquet_bytes(frame))
    if not directory.exists("profile.json"):
        directory.write_text("profile.json", profile_frame(frame).to_json())
    if directory.exists("snapshot.json"):
        try:
            stored = _read_record(directory)
        except DataError:
            pass  # a damaged record: replaced below
        else:
            if (stored.source, stored.dvc) == (taken.source, taken.dvc):
                return stored
    directory.write_text("snapshot.json", json.dumps(taken._record(), indent=2))
    return taken


def load_snapshot(digest: str, artifact_root: Path | Location) -> Snapshot:
    """The snapshot stored under ``digest``, or under the one digest starting with it."""
    datasets = _root(artifact_root).child("datasets")
    wanted = digest.strip().lower()
    hint = "Take one first with `shipyard data snapshot PATH`; it prints the digest."
    if len(wanted) < MIN_PREFIX or not _HEX.fullmatch(wanted):
        raise NotFoundError(
            f"{digest!r} is not a snapshot digest or a prefix of at least {MIN_PREFIX} hex digits.",
            hint=hint,
        )
    if datasets.exists(f"{wanted}/snapshot.json"):
        return _read_record(datasets.child(wanted))
    matches = sorted(
        found.rsplit("/", 2)[-2] for found in datasets.glob(f"{wanted}*/snapshot.json")
    )
    if not matches:
        raise NotFoundError(f"No snapshot {digest!r} under {datasets.url}.", hint=hint)
    if len(matches) > 1:
        raise NotFoundError(
            f"The prefix {digest!r} matches {len(matches)} snapshots.",
            hint="Give more digits of the digest.",
        )
    return _read_record(datasets.child(matches[0]))


def _root(artifact_root: Path | Location) -> Location:
    if isinstance(artifact_root, Location):
        return artifact_root
    return Location(Path(artifact_root).resolve().as_posix())


def _read_record(directory: Location) -> Snapshot:
    record_path = directory.path("snapshot.json")
    try:
        data = json.loads(directory.read_text("snapshot.json"))
        dvc = data["dvc"]
        if data["format"] not in ("csv", "parquet"):
            raise ValueError(f"unknown format {data['format']!r}")
        return Snapshot(
            digest=str(data["digest"]),
            source=str(data["source"]),
            rows=int(data["rows"]),
            columns=[str(name) for name in data["columns"]],
            format=data["format"],
            created_at=str(data["created_at"]),
            dvc=None if dvc is None else _dvc_of(dvc),
            location=directory,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{record_path} is not a valid snapshot record: {exc!r}",
            hint="Delete the file and take the snapshot again with `shipyard data snapshot PATH`.",
        ) from exc


def checked_dvc_ref(path: Path, policy: DvcPolicy = "warn") -> DvcRef | None:
    """The DVC pointer next to ``path``, checked against the data.

    When stale it is logged and returned with the file's own md5 (the pointer's in
    ``pointer_md5``), or, under ``policy="strict"``, refused with :class:`DataError`.
    """
    ref = read_dvc_ref(path)
    if ref is None:
        return None
    actual = stale_md5(path, ref)
    if actual is None:
        return ref
    message = (
        f"The DVC pointer {dvc_file_for(path)} is stale: it names md5 {ref.md5}, but {path} "
        f"has md5 {actual} (the data changed after `dvc add`)."
    )
    hint = (
        f"Run `dvc add {path}` and commit the .dvc file to record this data, or "
        "`dvc checkout` to restore the version the pointer names."
    )
    if policy == "strict":
        raise DataError(message, hint=hint + " (data.dvc is strict.)")
    _log.warning("%s %s The snapshot records the file's own md5.", message, hint)
    return DvcRef(md5=actual, path=ref.path, pointer_md5=ref.md5)


def _dvc_record(ref: DvcRef) -> dict[str, Any]:
    found: dict[str, Any] = {"md5": ref.md5, "path": ref.path}
    if ref.pointer_md5 is not None:
        found["pointer_md5"] = ref.pointer_md5
    return found


def _dvc_of(data: dict[str, Any]) -> DvcRef:
    pointer = data.get("pointer_md5")
    return DvcRef(
        md5=str(data["md5"]),
        path=str(data["path"]),
        pointer_md5=None if pointer is None else str(pointer),
    )


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, engine="pyarrow", index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise DataError(
            f"Cannot store the data as Parquet: {exc}",
            hint="A column probably mixes types (numbers and text); make each column one type.",
        ) from exc
    return buffer.getvalue()
