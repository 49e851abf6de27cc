"""``Reference.save`` / ``Reference.load``: the binary form gives back the same reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import DataError
from shipyard.monitoring import AutoDriftDetector, PSIDetector, Reference


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(shift, 1.0, rows)
    values[::97] = np.nan
    values[5] = np.inf
    return pd.DataFrame(
        {
            "continuous": values,
            "counts": rng.poisson(3 + shift, rows),
            "flag": rng.random(rows) < 0.3 + shift / 10,
            "city": rng.choice(["north", "south", "east"], rows),
            "mixed": pd.Series(rng.choice([1, 2, 3], rows)).astype(object),
        }
    )


def test_save_and_load_give_back_every_column(tmp_path: Path) -> None:
    reference = Reference.from_frame(_frame(5_000, 1))
    loaded = Reference.load(reference.save(tmp_path / "reference.npz"))
    from_json = Reference.from_json(reference.to_json())
    assert loaded.rows == reference.rows
    assert list(loaded.columns) == list(reference.columns)
    for name, column in reference.columns.items():
        other = loaded[name]
        assert other.representation == column.representation
        assert other.dtype == column.dtype
        assert other.values.tolist() == column.values.tolist()
        assert other.counts.tolist() == column.counts.tolist()
        assert other.counts.dtype == from_json[name].counts.dtype  # narrowed, as from JSON
        assert (other.nan_count, other.posinf_count, other.neginf_count) == (
            column.nan_count,
            column.posinf_count,
            column.neginf_count,
        )
        assert other.std == column.std
        assert other.sketched == column.sketched


def test_a_loaded_reference_scores_as_the_fitted_one(tmp_path: Path) -> None:
    train, window = _frame(5_000, 2), _frame(3_000, 3, shift=0.4)
    reference = Reference.from_frame(train, max_points=500)  # a sketched column too
    path = reference.save(tmp_path / "reference.npz")
    for detector in (AutoDriftDetector, PSIDetector):
        fitted = detector().fit(reference).score(window)
        loaded = detector().fit(Reference.load(path)).score(window)
        assert fitted == loaded


def test_a_file_that_is_not_a_saved_reference_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "reference.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"not a reference saved by Reference\.save"):
        Reference.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, something=np.arange(3))
    with pytest.raises(DataError, match=r"other\.npz"):
        Reference.load(other)
