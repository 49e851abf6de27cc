"""Fitting and scoring straight from Parquet, a column at a time, gives the same verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import AutoDriftDetector, KLDetector, PSIDetector, Reference
from shipyard.monitoring.parquet_columns import ParquetColumns


@pytest.fixture
def files(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, Path, Path]:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {
            "amount": rng.lognormal(0, 1, 4000),
            "plan": rng.choice(["basic", "plus", "pro"], 4000),
            "calls": rng.integers(0, 4, 4000),
            "gap": np.where(rng.random(4000) < 0.1, np.nan, rng.normal(size=4000)),
        }
    )
    current = reference.sample(frac=1, random_state=1).reset_index(drop=True)
    current["amount"] = current["amount"] * 1.5
    paths = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    reference.to_parquet(paths[0])
    current.to_parquet(paths[1])
    return reference, current, *paths


@pytest.mark.parametrize("make", [AutoDriftDetector, PSIDetector, KLDetector])
def test_columns_from_parquet_match_the_frame(
    files: tuple[pd.DataFrame, pd.DataFrame, Path, Path], make: type
) -> None:
    reference, current, reference_path, current_path = files
    from_frames = make().fit(reference).score(current)
    from_files = make().fit(ParquetColumns(reference_path)).score(ParquetColumns(current_path))
    assert [r.to_dict() for r in from_files.columns] == [r.to_dict() for r in from_frames.columns]
    assert from_files["amount"].drifted and not from_files["plan"].drifted


def test_a_parquet_reference_is_the_frames_reference(
    files: tuple[pd.DataFrame, pd.DataFrame, Path, Path],
) -> None:
    reference, _, path, _ = files
    columns = ParquetColumns(path)
    assert len(columns) == 4000 and list(columns.columns) == list(reference.columns)
    assert Reference.from_frame(columns).to_json() == Reference.from_frame(reference).to_json()
