"""Datasets: reading, content digests, snapshots, profiles, schema inference and validation.

    frame = read_frame(Path("data/train.csv"))
    snap = snapshot(Path("data/train.csv"), artifact_root)   # stored under its digest
    schema = infer_schema(frame)                             # pandera, strict
    write_schema(schema, Path("schema.yaml"))                # commit it
    report = validate(read_frame(Path("data/new.csv")), load_schema(Path("schema.yaml")))
    report.raise_for_failures()                              # or print(report.render())

See ``docs/data.md``.
"""

from shipyard.data.digest import dataset_digest
from shipyard.data.dvc import DvcRef
from shipyard.data.failures import CheckFailure
from shipyard.data.frames import DataFormat, read_frame
from shipyard.data.profile import (
    CategoryCount,
    ColumnKind,
    ColumnProfile,
    Histogram,
    Profile,
    Quantiles,
)
from shipyard.data.profiling import profile_frame
from shipyard.data.recorded import record_snapshot
from shipyard.data.schema import infer_schema, load_schema, write_schema
from shipyard.data.snapshot import Snapshot, load_snapshot, snapshot, snapshot_frame
from shipyard.data.validation import ValidationReport, validate

__all__ = [
    "CategoryCount",
    "CheckFailure",
    "ColumnKind",
    "ColumnProfile",
    "DataFormat",
    "DvcRef",
    "Histogram",
    "Profile",
    "Quantiles",
    "Snapshot",
    "ValidationReport",
    "dataset_digest",
    "infer_schema",
    "load_schema",
    "load_snapshot",
    "profile_frame",
    "read_frame",
    "record_snapshot",
    "snapshot",
    "snapshot_frame",
    "validate",
    "write_schema",
]
