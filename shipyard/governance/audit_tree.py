"""The audit tree built leaf by leaf, keeping only what roots and proofs need.

``shipyard audit verify`` reads a million leaves once and must check signed checkpoints
and build consistency proofs on the way, without holding every leaf hash. Every node of
an RFC 6962 inclusion or consistency proof is the root of a range of leaves
``[lo, hi)``, and the range is one of two shapes:

- a *perfect* subtree (``hi - lo`` a power of two, ``lo`` a multiple of it), whose root
  exists for a moment while leaf ``hi`` is appended, as two halves merge; or
- a *right edge* ``[lo, n)`` of the tree of size ``n``, which is the fold of the
  compact range's last subtrees when the tree has exactly ``n`` leaves.

:func:`consistency_ranges` and :func:`inclusion_ranges` name the ranges a proof needs
(from :mod:`shipyard.store.merkle`, where ``consistency_proof`` and ``inclusion_proof``
take the roots of the same ranges from the leaves at hand); :class:`TreeWalk` captures
their roots, and the root at any wanted size, in the one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shipyard.store.merkle import (
    EMPTY_ROOT,
    Range,
    fold_subtrees,
    node_hash,
)

__all__ = ["TreeWalk"]


class TreeWalk:
    """Append leaf hashes in order; collect the roots at ``sizes`` and of ``ranges``.

    ``roots[size]`` and ``subtrees[range]`` fill in as the walk passes them. A size or
    range the walk never reaches (the log is shorter) is simply missing.
    """

    __slots__ = ("_next", "_stack", "_stops", "_wanted", "roots", "size", "subtrees")

    def __init__(self, *, sizes: Iterable[int] = (), ranges: Iterable[Range] = ()) -> None:
        self.size = 0
        self._stack: list[bytes] = []  # the compact range: one root per set bit of size
        self.roots: dict[int, bytes] = {}
        self.subtrees: dict[Range, bytes] = {}
        self._wanted: dict[int, set[Range]] = {}  # ranges by the leaf count that ends them
        for lo, hi in ranges:
            if not 0 <= lo < hi:
                raise ValueError(f"[{lo}, {hi}) is not a range of leaves")
            self._wanted.setdefault(hi, set()).add((lo, hi))
        sizes = set(sizes)
        if 0 in sizes:
            self.roots[0] = EMPTY_ROOT
        self._stops = sorted((sizes - {0}) | set(self._wanted), reverse=True)
        self._next = self._stops.pop() if self._stops else -1

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash."""
        if self.size + 1 == self._next:
            self._append_watched(leaf)
            return
        stack, h, n = self._stack, leaf, self.size
        while n & 1:  # each trailing 1 bit is a subtree of the new leaf's height: merge
            h = node_hash(stack.pop(), h)
            n >>= 1
        stack.append(h)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes in order: :meth:`append` for a batch, without a call per leaf."""
        stack, node = self._stack, node_hash
        n, stop = self.size, self._next
        for leaf in leaves:
            if n + 1 == stop:
                self.size = n
                self._append_watched(leaf)
                n, stop = self.size, self._next
                continue
            h, m = leaf, n
            while m & 1:
                h = node(stack.pop(), h)
                m >>= 1
            stack.append(h)
            n += 1
        self.size = n

    def state(self) -> dict[str, Any]:
        """Everything another walk needs to carry on from here (see :meth:`resume`)."""
        return {
            "size": self.size,
            "stack": list(self._stack),
            "roots": dict(self.roots),
            "subtrees": dict(self.subtrees),
        }

    @classmethod
    def resume(
        cls, state: dict[str, Any], *, sizes: Iterable[int] = (), ranges: Iterable[Range] = ()
    ) -> TreeWalk:
        """A walk carrying on from another's :meth:`state` (a walk over the leaves before),
        still looking for what of ``sizes`` and ``ranges`` that one did not reach."""
        size, found = int(state["size"]), dict(state["subtrees"])
        walk = cls(
            sizes=[s for s in sizes if s > size],
            ranges=[r for r in ranges if r[1] > size and r not in found],
        )
        walk.size, walk._stack = size, list(state["stack"])
        walk.roots.update(state["roots"])
        walk.subtrees.update(found)
        return walk

    def root(self) -> bytes:
        """The root of the tree over every leaf so far."""
        return self._fold(0)

    def frontier(self) -> list[str]:
        """The compact range as hex, largest subtree first (as the audit head stores it)."""
        return [h.hex() for h in self._stack]

    def _append_watched(self, leaf: bytes) -> None:
        """Append at a stop: capture the subtrees that end here, and the root if wanted."""
        count = self.size + 1
        wanted = self._wanted.pop(count, set())
        stack, h, n, width = self._stack, leaf, self.size, 1
        if (count - 1, count) in wanted:
            self.subtrees[(count - 1, count)] = h
        while n & 1:
            h = node_hash(stack.pop(), h)
            n >>= 1
            width <<= 1
            if (count - width, count) in wanted:
                self.subtrees[(count - width, count)] = h
        stack.append(h)
        self.size = count
        for lo, hi in wanted - self.subtrees.keys():
            self.subtrees[(lo, hi)] = self._fold(lo)
        self.roots[count] = self.root()
        self._next = self._stops.pop() if self._stops else -1

    def _fold(self, lo: int) -> bytes:
        """The root of leaves ``[lo, size)``: the compact range's subtrees from ``lo`` on."""
        if lo == self.size:
            return EMPTY_ROOT
        bits = [1 << b for b in reversed(range(self.size.bit_length())) if self.size >> b & 1]
        start, first = 0, None
        for position, width in enumerate(bits):  # the subtrees' widths, largest first
            if start == lo:
                first = position
                break
            start += width
        if first is None:
            raise ValueError(f"[{lo}, {self.size}) is not a right edge of the tree")
        return fold_subtrees(self._stack[first:])
