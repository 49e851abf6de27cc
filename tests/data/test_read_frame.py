"""read_frame: CSV or Parquet, a file or a folder; clear DataErrors for everything else."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard.data import read_frame
from shipyard.errors import DataError

TABLE = pd.DataFrame({"id": [1, 2, 3], "city": ["paris", "lyon", "nice"], "score": [0.5, 1.5, 2.5]})


def test_reads_csv_and_parquet_files(tmp_path: Path) -> None:
    TABLE.to_csv(tmp_path / "t.csv", index=False)
    TABLE.to_parquet(tmp_path / "t.parquet", index=False)
    pd.testing.assert_frame_equal(read_frame(tmp_path / "t.csv"), TABLE)
    pd.testing.assert_frame_equal(read_frame(tmp_path / "t.parquet"), TABLE)


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    TABLE.to_csv(tmp_path / "T.CSV", index=False)
    assert read_frame(tmp_path / "T.CSV")["id"].tolist() == [1, 2, 3]


def test_folder_files_are_concatenated_in_name_order(tmp_path: Path) -> None:
    TABLE.iloc[2:].to_csv(tmp_path / "b.csv", index=False)
    TABLE.iloc[:2].to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "notes.txt").write_text("ignored")
    frame = read_frame(tmp_path)
    assert frame["id"].tolist() == [1, 2, 3]
    assert list(frame.index) == [0, 1, 2]


def test_parquet_index_is_dropped(tmp_path: Path) -> None:
    TABLE.set_index("id").to_parquet(tmp_path / "t.parquet")
    frame = read_frame(tmp_path / "t.parquet")
    assert list(frame.columns) == ["city", "score"]
    assert list(frame.index) == [0, 1, 2]


def test_iso_timestamps_in_csv_become_utc_datetimes(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "at,day,code\n2024-01-01 10:00:00+01:00,2024-01-01,2024-x\n,2024-01-02,2024-y\n"
    )
    frame = read_frame(tmp_path / "t.csv")
    assert str(frame["at"].dtype) == "datetime64[ns, UTC]"
    assert frame["at"][0] == pd.Timestamp("2024-01-01 09:00", tz="UTC")
    assert frame["at"].isna()[1]
    assert str(frame["day"].dtype) == "datetime64[ns, UTC]"
    assert frame["code"].tolist() == ["2024-x", "2024-y"]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No data at") as caught:
        read_frame(tmp_path / "nope.csv")
    assert caught.value.hint


def test_unsupported_suffix(tmp_path: Path) -> None:
    (tmp_path / "t.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'") as caught:
        read_frame(tmp_path / "t.xlsx")
    assert ".csv or .parquet" in str(caught.value.hint)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("no data here")
    with pytest.raises(DataError, match=r"holds no \.csv or \.parquet files"):
        read_frame(tmp_path)


def test_mixed_folder(tmp_path: Path) -> None:
    TABLE.to_csv(tmp_path / "a.csv", index=False)
    TABLE.to_parquet(tmp_path / "b.parquet", index=False)
    with pytest.raises(DataError, match=r"mixes \.csv and \.parquet"):
        read_frame(tmp_path)


def test_folder_files_with_different_columns(tmp_path: Path) -> None:
    TABLE.to_csv(tmp_path / "a.csv", index=False)
    TABLE[["id"]].to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match="same columns") as caught:
        read_frame(tmp_path)
    assert "b.csv" in caught.value.message


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("ragged.csv", b'a,b\n1,2\n3,"4\n', "Cannot parse"),
        ("binary.csv", b"\xff\xfe\x00a,b\n\x81\x82,\x83\n", "Cannot parse"),
        ("broken.parquet", b"PAR1 this is not parquet", "Cannot read .* as Parquet"),
    ],
)
def test_unparsable_files_raise_data_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        read_frame(tmp_path / name)
    assert caught.value.hint
    assert "Traceback" not in str(caught.value)
