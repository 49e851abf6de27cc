"""A Parquet file as drift detection reads it: one column at a time.

Detectors touch a frame only through its column names, its length and one column at a
time, so a :class:`ParquetColumns` can stand in for a DataFrame: each column is read
from the file when asked for and let go when the next one is, and the file is never
held whole in memory. A million-row, 25-column reference fits and scores this way in a
few hundred MiB above the interpreter (``benchmarks/drift.py --reader stream``).

    detector = AutoDriftDetector().fit(ParquetColumns("train.parquet"))
    drift = detector.score(ParquetColumns("window.parquet"))
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

__all__ = ["ParquetColumns"]


class ParquetColumns:
    """Columns of a Parquet file, read on demand; the last one read is kept."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = pq.ParquetFile(self.path)
        self.columns = pd.Index(self._file.schema_arrow.names)
        self._last: tuple[str, pd.Series] | None = None

    def __len__(self) -> int:
        return int(self._file.metadata.num_rows)

    def __getitem__(self, name: str) -> pd.Series:
        if self._last is not None and self._last[0] == name:
            return self._last[1]
        self._last = None  # let the previous column go before reading the next
        table = self._file.read(columns=[name], use_threads=False)
        series = table.column(0).to_pandas(self_destruct=True)
        series.name = name
        self._last = (name, series)
        return series

    def __repr__(self) -> str:
        return f"ParquetColumns({str(self.path)!r}, {len(self.columns)} columns, {len(self)} rows)"
