"""The cache's vector index: rows added and removed in any order stay findable, with the
full scan and with the shortlist past SCAN_ROWS rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.llm.cache_index import SCAN_ROWS, VectorBlock


def unit_rows(count: int, dimensions: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dimensions)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 2_500),
    removals=st.lists(st.integers(0, 10_000), max_size=60),
    seed=st.integers(0, 2**16),
)
def test_rows_removed_in_any_order_leave_the_others_findable(
    count: int, removals: list[int], seed: int
) -> None:
    vectors = unit_rows(count, 32, seed)
    block = VectorBlock(32)
    rows = {ident: block.add(vectors[ident], ident) for ident in range(count)}
    for pick in removals:
        if not rows:
            break
        ident = sorted(rows)[pick % len(rows)]
        moved = block.remove(rows.pop(ident))
        if moved is not None:
            rows[moved] = block.ids.index(moved)
    assert len(block) == len(rows)
    for ident, row in rows.items():
        assert block.ids[row] == ident
        best = block.nearest(vectors[ident], 0.999)
        assert best and block.ids[best[0][0]] == ident and best[0][1] == pytest.approx(1, 1e-5)


@pytest.mark.parametrize("nested", [True, False])
def test_the_shortlist_finds_the_same_best_row_as_the_full_scan(nested: bool) -> None:
    count = SCAN_ROWS + 3_000
    vectors = unit_rows(count, 256, 7)
    block = VectorBlock(256, nested=nested)
    for ident in range(count):
        block.add(vectors[ident], ident)
    rng = np.random.default_rng(8)
    for ident in rng.choice(count, size=50, replace=False):
        # A near-duplicate of a stored row: what a paraphrase is to its cached prompt.
        query = vectors[ident] + 0.02 * rng.standard_normal(256).astype(np.float32)
        query /= np.linalg.norm(query)
        short, full = block.nearest(query, 0.5), block.nearest(query, 0.5, shortlist=False)
        assert short[0][0] == full[0][0] and block.ids[short[0][0]] == ident
        assert short[0][1] == pytest.approx(full[0][1], abs=1e-6)
    assert block.nearest(unit_rows(1, 256, 9)[0], 0.9) == []


def test_a_vector_of_another_size_is_refused_with_both_sizes() -> None:
    block = VectorBlock(16)
    with pytest.raises(ValueError, match="16-dimension"):
        block.add(np.ones(8, dtype=np.float32), 0)
