"""Reading tabular data: a CSV or Parquet file, or a folder of them, into one DataFrame."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa

from shipyard.data._dtypes import parse_iso_datetimes
from shipyard.errors import DataError

__all__ = ["DataFormat", "data_files", "read_frame"]

DataFormat = Literal["csv", "parquet"]

_SUFFIXES: dict[str, DataFormat] = {".csv": "csv", ".parquet": "parquet"}

# A CSV column is read as datetimes only if its first value already looks like one.
_ISO_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}|$)")


def data_files(path: Path) -> tuple[DataFormat, list[Path]]:
    """The format and the files behind ``path`` (a file, or a folder's files sorted by name)."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"No data at {path}.",
            hint="Check the path; Shipyard reads .csv and .parquet files or folders of them.",
        )
    if path.is_file():
        fmt = _SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise DataError(
                f"Cannot read {path}: unsupported file type {path.suffix or '(none)'!r}.",
                hint="Convert it to .csv or .parquet (e.g. with pandas) and point Shipyard at it.",
            )
        return fmt, [path]
    files = sorted(
        (
            child
            for child in path.iterdir()
            if child.is_file() and child.suffix.lower() in _SUFFIXES
        ),
        key=lambda child: child.name,
    )
    if not files:
        raise DataError(
            f"The folder {path} holds no .csv or .parquet files.",
            hint="Put the data files directly in the folder (sub-folders are not read).",
        )
    formats = {_SUFFIXES[child.suffix.lower()] for child in files}
    if len(formats) > 1:
        raise DataError(
            f"The folder {path} mixes .csv and .parquet files.",
            hint="Keep one format per dataset folder, or point at a single file.",
        )
    return formats.pop(), files


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a folder of them concatenated in name order.

    CSV columns whose values are all ISO-8601 dates or timestamps are parsed as UTC
    datetimes, so a table reads the same from CSV as from Parquet. The result has a
    fresh ``RangeIndex``.
    """
    fmt, files = data_files(Path(path))
    frames = [_read_csv(file) if fmt == "csv" else _read_parquet(file) for file in files]
    if len(frames) == 1:
        return frames[0]
    first = list(frames[0].columns)
    for file, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != first:
            raise DataError(
                f"{file} has columns {list(frame.columns)}, but {files[0]} has {first}.",
                hint="Every file in a dataset folder must have the same columns in the same order.",
            )
    return pd.concat(frames, ignore_index=True)


def _read_csv(file: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(file, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"{file} is empty.", hint="A CSV file needs at least a header row."
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(
            f"Cannot parse {file} as CSV: {_first_line(exc)}",
            hint="Check that it is comma-separated UTF-8 text with one header row.",
        ) from exc
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
            first = column.first_valid_index()
            if first is not None and _ISO_PREFIX.match(str(column[first])):
                parsed = parse_iso_datetimes(column)
                if parsed is not None:
                    frame[name] = parsed
    return frame


def _read_parquet(file: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(file, engine="pyarrow")
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise DataError(
            f"Cannot read {file} as Parquet: {_first_line(exc)}",
            hint="Check that the file is complete; re-export it with pandas or pyarrow.",
        ) from exc
    return frame.reset_index(drop=True)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
