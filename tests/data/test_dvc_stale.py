"""A stale DVC pointer (the data changed after ``dvc add``) is detected, never recorded as is.

``data.dvc: warn`` logs it and records the file's own md5 beside what the pointer says;
``data.dvc: strict`` refuses the data before anything is stored or trained.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from shipyard.data import DvcRef, load_snapshot, snapshot
from shipyard.data.dvc import file_md5, read_dvc_ref, stale_md5
from shipyard.errors import DataError
from shipyard.training.inputs import prepare_inputs
from tests.support import TrainedExamples, load, project_of


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def pointer(data_path: Path, md5: str, *, dvc3: bool = True) -> None:
    """Write the .dvc file `dvc add` leaves next to ``data_path``."""
    hash_line = "  hash: md5\n" if dvc3 else ""
    data_path.with_name(data_path.name + ".dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {data_path.stat().st_size}\n{hash_line}"
        f"  path: {data_path.name}\n"
    )


def test_file_md5_hashes_the_bytes_and_the_lf_form(tmp_path: Path) -> None:
    data = b"a,b\r\n1,2\r\n" + b"x" * (1 << 20) + b"\r\n3,4\r"
    path = tmp_path / "train.csv"
    path.write_bytes(data)
    assert file_md5(path) == (md5_of(data), md5_of(data.replace(b"\r\n", b"\n")))


def test_a_crlf_split_across_reads_is_still_one_line_end(tmp_path: Path) -> None:
    data = b"x" * ((1 << 20) - 1) + b"\r\n" + b"y\r\n"  # the CR ends the first 1 MiB read
    path = tmp_path / "train.csv"
    path.write_bytes(data)
    assert file_md5(path)[1] == md5_of(data.replace(b"\r\n", b"\n"))


def test_a_current_pointer_is_not_stale(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"a,b\r\n1,2\r\n")
    pointer(path, md5_of(path.read_bytes()))
    ref = read_dvc_ref(path)
    assert ref is not None and stale_md5(path, ref) is None
    # DVC 2 hashed text with LF line ends: that pointer is current too.
    pointer(path, md5_of(b"a,b\n1,2\n"), dvc3=False)
    ref = read_dvc_ref(path)
    assert ref is not None and stale_md5(path, ref) is None


def test_a_changed_file_is_stale_and_a_folder_is_not_checked(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("a\n1\n")
    pointer(path, md5_of(b"a\n1\n"))
    path.write_text("a\n2\n")
    ref = read_dvc_ref(path)
    assert ref is not None and stale_md5(path, ref) == md5_of(b"a\n2\n")
    folder = DvcRef(md5=f"{md5_of(b'listing')}.dir", path="parts")
    (tmp_path / "parts").mkdir()
    assert stale_md5(tmp_path / "parts", folder) is None


def test_snapshot_warns_and_records_the_files_md5_beside_the_pointers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "train.csv"
    path.write_text("a,b\n1,2\n")
    said = md5_of(path.read_bytes())
    pointer(path, said)
    path.write_text("a,b\n1,3\n")  # edited after `dvc add`

    with caplog.at_level(logging.WARNING, logger="shipyard.data.snapshot"):
        snap = snapshot(path, tmp_path / "artifacts")

    assert snap.dvc == DvcRef(md5=md5_of(b"a,b\n1,3\n"), path="train.csv", pointer_md5=said)
    assert snap.dvc is not None and snap.dvc.stale
    assert "stale" in caplog.text and said in caplog.text and "dvc add" in caplog.text
    assert load_snapshot(snap.digest, tmp_path / "artifacts").dvc == snap.dvc


def test_strict_refuses_a_stale_pointer_before_storing_anything(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("a,b\n1,2\n")
    pointer(path, md5_of(b"a,b\n9,9\n"))

    with pytest.raises(DataError) as caught:
        snapshot(path, tmp_path / "artifacts", dvc="strict")

    assert "train.csv.dvc is stale" in caught.value.message
    assert "data.dvc is strict" in str(caught.value.hint)
    assert not (tmp_path / "artifacts" / "datasets").exists() or not any(
        (tmp_path / "artifacts" / "datasets").iterdir()
    )


def test_training_inputs_follow_data_dvc(trained_examples: TrainedExamples, tmp_path: Path) -> None:
    root = trained_examples.copy(tmp_path / "churn").root
    data = root / "data" / "train.csv"
    pointer(data, md5_of(b"what dvc add saw"))
    warned = load(root)
    project = project_of(warned)

    inputs = prepare_inputs(warned, project.store, subject="model:churn")
    assert inputs.train.dvc is not None and inputs.train.dvc.stale
    (event,) = project.store.events(
        kind="dataset.snapshotted", subject=f"dataset:{inputs.train.digest}"
    )
    assert event.payload["dvc_stale"] == {
        "pointer_md5": md5_of(b"what dvc add saw"),
        "file_md5": md5_of(data.read_bytes()),
    }

    strict = load(root, {"data.dvc": "strict"})
    with pytest.raises(DataError, match="stale"):
        prepare_inputs(strict, project_of(strict).store, subject="model:churn")


def test_continuous_training_checks_the_pointer_of_its_window(
    trained_examples: TrainedExamples, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from shipyard.pipelines.gates import training_window

    root = trained_examples.copy(tmp_path / "churn").root
    pointer(root / "data" / "train.csv", md5_of(b"what dvc add saw"))

    # A window of the newest rows is trained from a copy with no pointer: checked here.
    windowed = load(root, {"ct.window_rows": 500})
    with caplog.at_level(logging.WARNING, logger="shipyard.data.snapshot"):
        training_window(windowed, tmp_path / "window")
    assert "train.csv.dvc is stale" in caplog.text

    strict = load(root, {"data.dvc": "strict"})
    with pytest.raises(DataError, match="stale"):
        training_window(strict, tmp_path / "window")
