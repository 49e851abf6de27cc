"""read_dvc_ref: the DVC pointer file next to the data, parsed without DVC."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.data import DvcRef
from shipyard.data.dvc import read_dvc_ref
from shipyard.errors import DataError

FILE_MD5 = "22a1a2931c8370d3aeedd7183606fd7f"


def test_no_dvc_file_means_no_ref(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a\n1\n")
    assert read_dvc_ref(tmp_path / "train.csv") is None


def test_file_ref(tmp_path: Path) -> None:
    (tmp_path / "train.csv.dvc").write_text(
        f"outs:\n- md5: {FILE_MD5}\n  size: 14445097\n  hash: md5\n  path: train.csv\n"
    )
    ref = read_dvc_ref(tmp_path / "train.csv")
    assert ref == DvcRef(md5=FILE_MD5, path="train.csv")
    assert ref is not None and not ref.is_directory


def test_folder_ref(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images.dvc").write_text(
        f"outs:\n- md5: {FILE_MD5}.dir\n  nfiles: 3\n  path: images\n"
    )
    ref = read_dvc_ref(tmp_path / "images")
    assert ref == DvcRef(md5=f"{FILE_MD5}.dir", path="images")
    assert ref is not None and ref.is_directory


def test_the_entry_for_the_data_is_chosen_among_several(tmp_path: Path) -> None:
    other = "0" * 32
    (tmp_path / "train.csv.dvc").write_text(
        f"outs:\n- md5: {other}\n  path: other.csv\n- md5: {FILE_MD5}\n  path: train.csv\n"
    )
    assert read_dvc_ref(tmp_path / "train.csv") == DvcRef(md5=FILE_MD5, path="train.csv")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("outs: [unclosed", "not valid YAML"),
        ("- just a list\n", "no 'outs' list"),
        ("outs: []\n", "no 'outs' list"),
        ("outs:\n- path: train.csv\n", "not an md5 hash"),
        ("outs:\n- md5: nothex\n  path: train.csv\n", "not an md5 hash"),
        (f"outs:\n- md5: {FILE_MD5}\n", "has no 'path'"),
        (f"outs:\n- md5: {FILE_MD5}\n  path: a\n- md5: {FILE_MD5}\n  path: b\n", "no single entry"),
    ],
)
def test_malformed_dvc_file_names_the_file(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / "train.csv.dvc").write_text(content)
    with pytest.raises(DataError, match=reason) as caught:
        read_dvc_ref(tmp_path / "train.csv")
    assert str(tmp_path / "train.csv.dvc") in caught.value.message
    assert "dvc add" in str(caught.value.hint)
