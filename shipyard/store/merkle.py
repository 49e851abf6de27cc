"""RFC 6962 / RFC 9162 Merkle tree hashing for the audit log.

The tree over an ordered list of leaves is the one Certificate Transparency uses, so any
standard verifier can check our proofs:

- a leaf hashes as SHA-256(0x00 ‖ data), an interior node as SHA-256(0x01 ‖ left ‖ right);
- the tree over n > 1 leaves splits at k, the largest power of two smaller than n, into
  the tree over the first k leaves and the tree over the rest;
- the empty tree's root is SHA-256 of the empty string.

Everything here takes leaf *hashes* (``leaf_hash(data)``), never leaf data, so a log can
store the 32-byte hashes and rebuild roots and proofs from them alone.

Generators (``root``, ``inclusion_proof``, ``consistency_proof``, ``roots_at``) raise
``ValueError`` on arguments that name no tree or leaf. Verifiers (``verify_inclusion``,
``verify_consistency``) judge claims that may come from anyone: they never raise on
values, and return ``True`` only when the proof proves the claim (RFC 9162 §2.1.3.2 and
§2.1.4.2 "fail the proof verification" is ``False`` here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import TypeGuard

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "Range",
    "consistency_proof",
    "consistency_ranges",
    "fold_subtrees",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "root",
    "roots_at",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every hash: leaf hashes, node hashes, roots and proof elements."""

EMPTY_ROOT: bytes = sha256(b"").digest()
"""The root of the tree with no leaves: SHA-256 of the empty string."""

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 ‖ data)."""
    return sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return sha256(_NODE + left + right).digest()


def fold_subtrees(subtree_roots: Sequence[bytes]) -> bytes:
    """The root over adjacent perfect subtrees, largest (leftmost) first: the right edge
    of a tree, as a compact range holds it. Needs at least one root."""
    r = subtree_roots[-1]
    for left in reversed(subtree_roots[:-1]):
        r = node_hash(left, r)
    return r


Range = tuple[int, int]
"""Leaves ``[lo, hi)``, counted from 0: every node of a proof is the root of one."""


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` ≥ 2): where MTH splits."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (RFC 6962 MTH) over leaves that are already hashed.

    Built level by level: pair neighbours left to right and carry an odd last node up
    unchanged. That yields exactly the tree that splits at the largest power of two,
    without recursion and with one ``sha256`` call per interior node.
    """
    level: Sequence[bytes] = leaf_hashes
    if len(level) == 0:
        return EMPTY_ROOT
    node, hash_ = _NODE, sha256
    while len(level) > 1:
        pairs = iter(level)  # zip(pairs, pairs) walks it two at a time; an odd last is left
        upper = [
            hash_(node + left + right).digest() for left, right in zip(pairs, pairs, strict=False)
        ]
        if len(level) % 2:
            upper.append(level[-1])
        level = upper
    return level[0]


def _tree_size(leaf_hashes: Sequence[bytes], size: int | None) -> int:
    """``size`` checked against the leaves at hand, or all of them when it is None."""
    if size is None:
        return len(leaf_hashes)
    if size < 0 or size > len(leaf_hashes):
        raise ValueError(
            f"tree size {size} is not between 0 and the {len(leaf_hashes)} leaves given"
        )
    return size


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose roots make the audit path (RFC 6962 §2.1.1 PATH) of leaf
    ``index`` in the tree of ``size`` leaves, from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(
            f"leaf index {index} is outside the tree of size {size}; "
            f"an index runs from 0 to size - 1"
        )
    # Walk down from the whole tree towards the leaf; each step's other half is a sibling.
    ranges: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + split_point(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The leaf ranges whose roots make the consistency proof (RFC 6962 §2.1.2 PROOF) from
    the tree of ``old_size`` leaves to the tree of ``new_size`` leaves, in proof order.

    None when ``old_size`` is 0 or equals ``new_size``: nothing is left to prove.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(
            f"old size {old_size} is not between 0 and the new size {new_size}; "
            f"a log only grows, so the old tree must be the smaller one"
        )
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[lo:hi], b), unrolled: each step takes the half the old tree does not
    # reach (or, once past the old tree's first split, the half it fully covers).
    ranges: list[Range] = []
    lo, hi, m, known_to_verifier = 0, new_size, old_size, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, known_to_verifier = lo + k, m - k, False
    if not known_to_verifier:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, size: int | None = None
) -> list[bytes]:
    """The audit path (RFC 6962 §2.1.1 PATH) of leaf ``index`` in the tree of ``size`` leaves.

    ``size`` defaults to every leaf given; a smaller one proves inclusion in an earlier
    tree. The path lists sibling subtree roots from the leaf up to the root.
    """
    n = _tree_size(leaf_hashes, size)
    return [root(leaf_hashes[lo:hi]) for lo, hi in inclusion_ranges(index, n)]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """The proof (RFC 6962 §2.1.2 PROOF) that the tree of ``old_size`` leaves is a prefix
    of the tree of ``new_size`` leaves.

    The proof is empty when ``old_size`` is 0 or equals ``new_size``: nothing is left to
    prove.
    """
    n = _tree_size(leaf_hashes, new_size)
    return [root(leaf_hashes[lo:hi]) for lo, hi in consistency_ranges(old_size, n)]


def _is_hash(value: object) -> TypeGuard[bytes]:
    """Whether ``value`` is a hash this module can use: exactly 32 bytes."""
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree of ``size``
    leaves whose root is ``root`` (RFC 9162 §2.1.3.2).

    ``leaf`` is the leaf's hash, ``leaf_hash(data)``, as everywhere in this module.
    """
    if not (_is_hash(leaf) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` leaves with root ``old_root`` is a
    prefix of the tree of ``new_size`` leaves with root ``new_root`` (RFC 9162 §2.1.4.2).

    An empty old tree is a prefix of every tree, but only with its true root,
    ``EMPTY_ROOT``, and an empty proof. Equal sizes need equal roots and an empty proof.
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(p) for p in proof)):
        return False
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return old_root == EMPTY_ROOT and not proof
    if old_size == new_size:
        return old_root == new_root and not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so its root starts the path.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class CompactRange:
    """The frontier of an append-only tree: one root per perfect subtree, left to right.

    A tree of ``size`` leaves is the perfect subtrees given by the set bits of ``size``,
    largest first, so ``popcount(size)`` hashes summarise it: enough to append more
    leaves and to compute the root, without the leaves themselves. Store it with
    ``to_hashes()`` (hex strings, e.g. in a JSON column) and restore it with
    ``CompactRange.from_hashes(size, hashes)``.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """How many leaves the range covers."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf (its hash), merging the perfect subtrees it completes."""
        if not _is_hash(leaf_hash):
            raise ValueError(
                f"a leaf hash is {HASH_SIZE} bytes (leaf_hash(data)), got {leaf_hash!r:.80}"
            )
        hashes, h, size = self._hashes, leaf_hash, self._size
        # Each trailing 1 bit of the old size is a subtree of the new leaf's height: merge.
        while size & 1:
            h = node_hash(hashes.pop(), h)
            size >>= 1
        hashes.append(h)
        self._size += 1

    def root(self) -> bytes:
        """The root of the tree over every leaf appended so far (``root()`` of them)."""
        return fold_subtrees(self._hashes) if self._hashes else EMPTY_ROOT

    def to_hashes(self) -> list[str]:
        """The subtree roots as lowercase hex strings, largest subtree first."""
        return [h.hex() for h in self._hashes]

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[str | bytes]) -> CompactRange:
        """The range of ``size`` leaves whose subtree roots are ``hashes`` (from
        ``to_hashes()``; raw 32-byte values work too)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"a compact range's size is a whole number ≥ 0, got {size!r}")
        want = size.bit_count()
        if len(hashes) != want:
            raise ValueError(
                f"a compact range of size {size} holds {want} hashes (one per set bit of "
                f"the size), got {len(hashes)}; were size and hashes saved together?"
            )
        decoded: list[bytes] = []
        for position, value in enumerate(hashes):
            raw = value
            if isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise ValueError(
                        f"compact range hash #{position} is not hex: {value!r:.80}"
                    ) from None
            if not _is_hash(raw):
                raise ValueError(
                    f"compact range hash #{position} is not {HASH_SIZE} bytes: {value!r:.80}"
                )
            decoded.append(raw)
        restored = cls()
        restored._size, restored._hashes = size, decoded
        return restored

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable: appending changes it

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"


def roots_at(leaf_hashes: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The tree root at each of ``sizes``, in one pass over the leaves.

    Useful to check many signed tree heads against a log without rebuilding the tree
    once per head. Raises ``ValueError`` when a size is negative or larger than the
    number of leaves.
    """
    wanted = sorted(set(sizes))
    if wanted and wanted[0] < 0:
        raise ValueError(f"a tree size is a whole number ≥ 0, got {wanted[0]}")
    roots: dict[int, bytes] = {}
    pending = iter(wanted)
    target = next(pending, None)
    tree = CompactRange()
    if target == 0:
        roots[0] = EMPTY_ROOT
        target = next(pending, None)
    if target is not None:
        for leaf in leaf_hashes:
            tree.append(leaf)
            if tree.size == target:
                roots[target] = tree.root()
                target = next(pending, None)
                if target is None:
                    break
    if target is not None:
        raise ValueError(
            f"asked for the root at size {target}, but there are only {tree.size} leaves"
        )
    return roots
