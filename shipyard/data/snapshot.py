"""Dataset snapshots: a content-addressed, immutable copy of the data a run used.

``snapshot(path, artifact_root)`` stores::

    artifact_root/datasets/<digest>/data.parquet    the data, written once
                                    profile.json    its profile, written once
                                    snapshot.json   where it came from and when

Every file is written to a temporary name in the same folder and moved into place with
:func:`os.replace`, so a crash never leaves a half-written file behind.

A DVC pointer next to the data is recorded with the snapshot. When it is stale (the file
changed after ``dvc add``) the snapshot says so and records the file's own md5; with
``dvc="strict"`` (``data.dvc``) it is refused instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
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

__all__ = ["MIN_PREFIX", "DvcPolicy", "Snapshot", "checked_dvc_ref", "load_snapshot", "snapshot"]

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
    directory: Path

    @property
    def data_path(self) -> Path:
        """The stored Parquet copy of the data."""
        return self.directory / "data.parquet"

    @property
    def profile_path(self) -> Path:
        """The stored profile of the data."""
        return self.directory / "profile.json"

    @property
    def record_path(self) -> Path:
        """The ``snapshot.json`` this snapshot was written to."""
        return self.directory / "snapshot.json"

    def frame(self) -> pd.DataFrame:
        """The stored data; :func:`dataset_digest` of it equals :attr:`digest`."""
        if not self.data_path.is_file():
            raise DataError(
                f"The data of snapshot {self.digest[:12]} is missing: {self.data_path}.",
                hint="Re-create it with `shipyard data snapshot PATH` from the original data.",
            )
        return read_frame(self.data_path)

    def profile(self) -> Profile:
        """The stored profile of the data."""
        return Profile.load(self.profile_path)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, including the stored files' paths."""
        return {
            **self._record(),
            "data_path": str(self.data_path),
            "profile_path": str(self.profile_path),
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


def snapshot(path: Path, artifact_root: Path, *, dvc: DvcPolicy = "warn") -> Snapshot:
    """Read the data at ``path``, store it under its digest once, and describe it.

    Snapshotting the same content again does not rewrite the data or the profile; the
    returned record is the stored one when source and DVC version are unchanged. A stale
    DVC pointer is logged as a warning and recorded (``dvc.pointer_md5``), or raises
    :class:`DataError` under ``dvc="strict"``.
    """
    path = Path(path)
    fmt, _ = data_files(path)
    pointer = checked_dvc_ref(path, dvc)
    frame = read_frame(path)
    digest = dataset_digest(frame)
    directory = Path(artifact_root) / "datasets" / digest
    directory.mkdir(parents=True, exist_ok=True)
    taken = Snapshot(
        digest=digest,
        source=os.path.abspath(path),
        rows=len(frame),
        columns=[str(name) for name in frame.columns],
        format=fmt,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dvc=pointer,
        directory=directory,
    )
    if not taken.data_path.exists():
        _write_atomically(taken.data_path, lambda tmp: _write_parquet(frame, tmp))
    if not taken.profile_path.exists():
        profile = profile_frame(frame).to_json()
        _write_atomically(taken.profile_path, lambda tmp: tmp.write_text(profile, "utf-8"))
    if taken.record_path.exists():
        try:
            stored = _read_record(taken.record_path, directory)
        except DataError:
            pass  # a damaged record: replaced below
        else:
            if (stored.source, stored.dvc) == (taken.source, taken.dvc):
                return stored
    record = json.dumps(taken._record(), indent=2)
    _write_atomically(taken.record_path, lambda tmp: tmp.write_text(record, "utf-8"))
    return taken


def load_snapshot(digest: str, artifact_root: Path) -> Snapshot:
    """The snapshot stored under ``digest``, or under the one digest starting with it."""
    datasets = Path(artifact_root) / "datasets"
    wanted = digest.strip().lower()
    hint = "Take one first with `shipyard data snapshot PATH`; it prints the digest."
    if len(wanted) < MIN_PREFIX or not _HEX.fullmatch(wanted):
        raise NotFoundError(
            f"{digest!r} is not a snapshot digest or a prefix of at least {MIN_PREFIX} hex digits.",
            hint=hint,
        )
    if (datasets / wanted / "snapshot.json").is_file():
        return _read_record(datasets / wanted / "snapshot.json", datasets / wanted)
    matches = (
        sorted(
            child
            for child in datasets.iterdir()
            if child.name.startswith(wanted) and (child / "snapshot.json").is_file()
        )
        if datasets.is_dir()
        else []
    )
    if not matches:
        raise NotFoundError(f"No snapshot {digest!r} under {datasets}.", hint=hint)
    if len(matches) > 1:
        raise NotFoundError(
            f"The prefix {digest!r} matches {len(matches)} snapshots.",
            hint="Give more digits of the digest.",
        )
    return _read_record(matches[0] / "snapshot.json", matches[0])


def _read_record(record_path: Path, directory: Path) -> Snapshot:
    try:
        data = json.loads(record_path.read_text(encoding="utf-8"))
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
            directory=directory,
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


def _write_parquet(frame: pd.DataFrame, target: Path) -> None:
    try:
        frame.to_parquet(target, engine="pyarrow", index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise DataError(
            f"Cannot store the data as Parquet: {exc}",
            hint="A column probably mixes types (numbers and text); make each column one type.",
        ) from exc


def _write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Write ``target`` via a temporary file in its folder, flushed, then renamed over it."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
