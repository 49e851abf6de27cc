"""snapshot / load_snapshot: content-addressed, written once, atomically, with DVC refs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from shipyard.data import DvcRef, Profile, Snapshot, dataset_digest, load_snapshot, snapshot
from shipyard.errors import DataError, NotFoundError

TABLE = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "age": [31.0, None, 45.0, 27.0],
        "city": ["paris", "lyon", None, "paris"],
        "at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", None], utc=True),
    }
)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    TABLE.to_csv(tmp_path / "data" / "train.csv", index=False)
    return tmp_path / "data" / "train.csv"


def test_snapshot_stores_data_profile_and_record(train_csv: Path, artifacts: Path) -> None:
    snap = snapshot(train_csv, artifacts)
    assert snap.digest == dataset_digest(TABLE)
    assert snap.directory == artifacts / "datasets" / snap.digest
    assert snap.data_path == snap.directory / "data.parquet"
    assert snap.profile_path == snap.directory / "profile.json"
    assert (snap.directory / "snapshot.json").is_file()
    assert (snap.rows, snap.columns, snap.format) == (4, ["id", "age", "city", "at"], "csv")
    assert snap.source == str(train_csv.absolute())
    assert snap.created_at.endswith("+00:00")
    assert snap.dvc is None
    assert sorted(path.name for path in snap.directory.iterdir()) == [
        "data.parquet",
        "profile.json",
        "snapshot.json",
    ]


def test_stored_copy_reads_back_with_the_same_digest(train_csv: Path, artifacts: Path) -> None:
    snap = snapshot(train_csv, artifacts)
    assert dataset_digest(snap.frame()) == snap.digest
    profile = snap.profile()
    assert isinstance(profile, Profile)
    assert profile.rows == 4
    assert profile.column("city").top[0].value == "paris"


def test_same_content_is_stored_once(train_csv: Path, artifacts: Path, tmp_path: Path) -> None:
    first = snapshot(train_csv, artifacts)
    written = first.data_path.stat().st_mtime_ns, first.data_path.stat().st_ino
    TABLE.to_parquet(tmp_path / "copy.parquet", index=False)
    second = snapshot(tmp_path / "copy.parquet", artifacts)
    assert second.digest == first.digest
    assert second.format == "parquet"
    assert (second.data_path.stat().st_mtime_ns, second.data_path.stat().st_ino) == written
    assert len(list((artifacts / "datasets").iterdir())) == 1


def test_snapshotting_again_returns_the_stored_record(train_csv: Path, artifacts: Path) -> None:
    first = snapshot(train_csv, artifacts)
    record = (first.directory / "snapshot.json").read_bytes()
    again = snapshot(train_csv, artifacts)
    assert again == first
    assert (first.directory / "snapshot.json").read_bytes() == record


def test_changed_data_gets_a_new_snapshot(train_csv: Path, artifacts: Path) -> None:
    first = snapshot(train_csv, artifacts)
    TABLE.assign(age=[31.0, None, 46.0, 27.0]).to_csv(train_csv, index=False)
    second = snapshot(train_csv, artifacts)
    assert second.digest != first.digest
    assert load_snapshot(first.digest, artifacts).digest == first.digest


def test_no_temporary_files_are_left_behind(train_csv: Path, artifacts: Path) -> None:
    snap = snapshot(train_csv, artifacts)
    snapshot(train_csv, artifacts)
    assert not [path for path in snap.directory.iterdir() if path.name.startswith(".")]


def test_folder_snapshot_with_dvc_ref(tmp_path: Path, artifacts: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    TABLE.iloc[:2].to_parquet(folder / "0.parquet", index=False)
    TABLE.iloc[2:].to_parquet(folder / "1.parquet", index=False)
    md5 = "a" * 32 + ".dir"
    (tmp_path / "parts.dvc").write_text(f"outs:\n- md5: {md5}\n  path: parts\n")
    snap = snapshot(folder, artifacts)
    assert snap.digest == dataset_digest(TABLE)
    assert snap.dvc == DvcRef(md5=md5, path="parts")
    assert load_snapshot(snap.digest, artifacts).dvc == snap.dvc


def test_load_snapshot_by_digest_and_prefix(train_csv: Path, artifacts: Path) -> None:
    snap = snapshot(train_csv, artifacts)
    assert load_snapshot(snap.digest, artifacts) == snap
    assert load_snapshot(snap.digest[:8], artifacts) == snap
    assert load_snapshot(snap.digest[:12].upper(), artifacts) == snap


def test_load_snapshot_errors(train_csv: Path, artifacts: Path) -> None:
    snap = snapshot(train_csv, artifacts)
    with pytest.raises(NotFoundError, match="at least 8") as caught:
        load_snapshot(snap.digest[:7], artifacts)
    assert "shipyard data snapshot PATH" in str(caught.value.hint)
    with pytest.raises(NotFoundError, match="No snapshot") as caught:
        load_snapshot("f" * 64 if not snap.digest.startswith("f") else "0" * 64, artifacts)
    assert "shipyard data snapshot PATH" in str(caught.value.hint)
    with pytest.raises(NotFoundError):
        load_snapshot("../../etc/passwd", artifacts)
    with pytest.raises(NotFoundError, match="No snapshot"):
        load_snapshot("abcdef12", artifacts.parent / "empty-root")


def test_ambiguous_prefix(artifacts: Path, tmp_path: Path) -> None:
    # Two stored snapshots whose digests share a prefix (records written by hand).
    for digest in ("abcdef12" + "0" * 56, "abcdef12" + "1" * 56):
        (artifacts / "datasets" / digest).mkdir(parents=True)
        record = {
            "digest": digest,
            "source": "x.csv",
            "rows": 0,
            "columns": [],
            "format": "csv",
            "created_at": "2024-01-01T00:00:00+00:00",
            "dvc": None,
        }
        (artifacts / "datasets" / digest / "snapshot.json").write_text(json.dumps(record))
    with pytest.raises(NotFoundError, match="matches 2 snapshots"):
        load_snapshot("abcdef12", artifacts)
    assert load_snapshot("abcdef120", artifacts).digest.endswith("0" * 56)


def test_to_dict_is_json_ready(train_csv: Path, artifacts: Path) -> None:
    snap = snapshot(train_csv, artifacts)
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["digest"] == snap.digest
    assert data["columns"] == snap.columns
    assert data["data_path"] == str(snap.data_path)
    assert data["dvc"] is None


def test_snapshot_is_immutable(train_csv: Path, artifacts: Path) -> None:
    snap: Snapshot = snapshot(train_csv, artifacts)
    with pytest.raises(AttributeError):
        snap.digest = "x"  # type: ignore[misc]


def test_an_interrupted_earlier_write_does_not_count_as_stored(
    train_csv: Path, artifacts: Path
) -> None:
    # A crash mid-write leaves only a temporary file; the next snapshot completes the folder.
    directory = artifacts / "datasets" / dataset_digest(TABLE)
    directory.mkdir(parents=True)
    (directory / ".data.parquet.crashed.tmp").write_bytes(b"PAR1 half")
    snap = snapshot(train_csv, artifacts)
    assert dataset_digest(snap.frame()) == snap.digest
    assert snap.profile().rows == 4


def test_a_damaged_record_is_reported_on_load_and_replaced_by_snapshot(
    train_csv: Path, artifacts: Path
) -> None:
    snap = snapshot(train_csv, artifacts)
    snap.record_path.write_text("{not json")
    with pytest.raises(DataError, match="not a valid snapshot record"):
        load_snapshot(snap.digest, artifacts)
    assert snapshot(train_csv, artifacts).digest == snap.digest
    assert load_snapshot(snap.digest, artifacts).source == snap.source
