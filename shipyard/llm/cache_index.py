"""The semantic cache's vector index: one growing float32 matrix per bucket.

A bucket holds the unit vectors of the prompts cached under one (namespace, scope,
literals) key, one row each, in a matrix preallocated and grown in chunks, so adding is
amortised O(d) and removing swaps the last row in. A lookup is one matrix-vector
product (cosine similarity, since rows are unit length) while the bucket is small.

Past :data:`SCAN_ROWS` rows the full product (100,000 × 256 float32 is 100 MB of memory
traffic, several milliseconds) gives way to two stages: a coarse matrix of
:data:`COARSE_DIMS` dimensions per row shortlists the :data:`SHORTLIST` most similar
rows (``argpartition``), whose full vectors are then compared. The coarse vector is the
first dimensions of a Matryoshka embedding (WordLlama's), or a fixed random projection
for other embedders; both renormalised. A row the shortlist misses costs a cache miss,
never a wrong hit: every answer still passes the full-vector threshold and the literal
guard. The benchmark reports the hit rate with and without the shortlist.

The products run on one BLAS thread: a matrix-vector product this size is bound by
memory bandwidth, and OpenBLAS's thread hand-off on a busy machine cost more than it
gave (a p99 of 30 ms instead of 1 ms at 5,000 rows on two shared cores).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["COARSE_DIMS", "SCAN_ROWS", "SHORTLIST", "VectorBlock", "one_blas_thread"]

SCAN_ROWS = 8192
# Measured at 100,091 WordLlama entries in one bucket (benchmarks/llm_cache.py): 32 dims
# and 128 candidates answer the labelled set exactly as the full scan does, at a CPU p50 of
# 1.3 ms per lookup against 1.7 ms with 64 dims and 8 ms for the full scan.
COARSE_DIMS = 32
SHORTLIST = 128
_CHUNK = 1024
_BLAS: ThreadpoolController | None = None


def one_blas_thread() -> AbstractContextManager[Any]:
    """Run the enclosed NumPy products on one BLAS thread (small products: no hand-off)."""
    global _BLAS
    if _BLAS is None:  # built once; a race only builds it twice
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


class VectorBlock:
    """Unit vectors, one row per cached prompt, with an id per row."""

    def __init__(self, dimensions: int, *, nested: bool = False) -> None:
        self.dimensions = dimensions
        self.size = 0
        self.ids: list[int] = []
        self._rows = np.zeros((_CHUNK, dimensions), dtype=np.float32)
        self._coarse_dims = min(COARSE_DIMS, dimensions)
        self._coarse = np.zeros((_CHUNK, self._coarse_dims), dtype=np.float32)
        self._projection: np.ndarray | None = None
        if not nested and dimensions > COARSE_DIMS:
            # A fixed seed: every worker projects the same way.
            gaussian = np.random.default_rng(0).standard_normal((dimensions, COARSE_DIMS))
            self._projection = np.linalg.qr(gaussian)[0].astype(np.float32)

    def __len__(self) -> int:
        return self.size

    def _coarse_of(self, vectors: np.ndarray) -> np.ndarray:
        if self._projection is not None:
            coarse = vectors @ self._projection
        else:
            coarse = vectors[..., : self._coarse_dims]
        norms = np.linalg.norm(coarse, axis=-1, keepdims=True)
        return (coarse / np.where(norms == 0, 1, norms)).astype(np.float32)

    def add(self, vector: np.ndarray, ident: int) -> int:
        """Store ``vector`` (unit length) for ``ident``; its row number."""
        if vector.shape != (self.dimensions,):
            raise ValueError(
                f"the embedder returned {vector.shape} vectors, the cache holds "
                f"{self.dimensions}-dimension ones"
            )
        if self.size == len(self._rows):
            grow = max(_CHUNK, self.size // 2)
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows[:grow])])
            self._coarse = np.concatenate([self._coarse, np.zeros_like(self._coarse[:grow])])
        row = self.size
        self._rows[row] = vector
        self._coarse[row] = self._coarse_of(vector)
        self.ids.append(ident)
        self.size += 1
        return row

    def remove(self, row: int) -> int | None:
        """Drop ``row``; the id of the last row, moved into its place (None if none moved)."""
        last = self.size - 1
        moved: int | None = None
        if row != last:
            self._rows[row] = self._rows[last]
            self._coarse[row] = self._coarse[last]
            self.ids[row] = self.ids[last]
            moved = self.ids[row]
        self.ids.pop()
        self.size -= 1
        return moved

    def nearest(
        self, vector: np.ndarray, floor: float, *, shortlist: bool = True
    ) -> list[tuple[int, float]]:
        """``(row, cosine)`` of rows at least ``floor`` similar, most similar first."""
        if self.size == 0:
            return []
        rows = self._rows[: self.size]
        with one_blas_thread():
            if shortlist and self.size > SCAN_ROWS:
                coarse = self._coarse[: self.size] @ self._coarse_of(vector)
                picked = np.argpartition(coarse, -SHORTLIST)[-SHORTLIST:]
                scores = rows[picked] @ vector
            else:
                scores = rows @ vector
                picked = np.flatnonzero(scores >= floor)
                scores = scores[picked]
        keep = scores >= floor
        order = np.argsort(-scores[keep], kind="stable")
        rows, scores = picked[keep][order], scores[keep][order]
        return [(int(r), float(s)) for r, s in zip(rows, scores, strict=True)]
