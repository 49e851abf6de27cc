"""RFC 6962 Merkle hashing: the published test vectors, every proof up to 64 leaves, and
a recursive reference written straight from the RFC's definitions."""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.store.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    consistency_ranges,
    fold_subtrees,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    root,
    roots_at,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# --- Published vectors -----------------------------------------------------------------
# Data copied from github.com/transparency-dev/merkle: testonly/constants.go (LeafInputs,
# NodeHashes, RootHashes, CompactTrees), proof/verify_test.go (inclusionProofs,
# consistencyProofs; there `leaf` counts from 1) and rfc6962/rfc6962_test.go (hasher).

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# NodeHashes()[level][index] of the tree over LEAF_INPUTS.
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# RootHashes(): the root at each size 0..8.
ROOT_HASHES = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# CompactTrees(): the compact range at each size 0..8, as (level, index) into NODE_HASHES.
COMPACT_TREES: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# inclusionProofs: (leaf counted from 1, tree size, audit path).
INCLUSION_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# consistencyProofs: (old size, new size, proof).
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

LEAF_HASHES = [leaf_hash(data) for data in LEAF_INPUTS]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def unhex(hashes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


# --- A reference written from RFC 6962 §2.1, recursion and all --------------------------


def mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return d[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def hashes_of(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def flipped(proof: Sequence[bytes], position: int) -> list[bytes]:
    changed = bytearray(proof[position])
    changed[0] ^= 0x10
    return [*proof[:position], bytes(changed), *proof[position + 1 :]]


# --- Hashing -----------------------------------------------------------------------------


def test_hashes_match_the_rfc6962_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    left, right = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert left != right
    assert node_hash(left, right) != leaf_hash(left + right)
    assert node_hash(left, right) != node_hash(right, left)


def test_leaf_hashes_match_the_published_level_zero() -> None:
    assert [h.hex() for h in LEAF_HASHES] == NODE_HASHES[0]


def test_roots_match_the_published_roots_at_every_size() -> None:
    for size, expected in enumerate(ROOT_HASHES):
        assert root(LEAF_HASHES[:size]).hex() == expected, f"size {size}"
    assert root([]) == EMPTY_ROOT


def test_root_matches_the_recursive_definition() -> None:
    leaves = hashes_of(300)
    for size in range(len(leaves) + 1):
        assert root(leaves[:size]) == mth(leaves[:size]), f"size {size}"


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=301, max_value=5000))
def test_root_matches_the_recursive_definition_on_larger_trees(size: int) -> None:
    leaves = hashes_of(size)
    assert root(leaves) == mth(leaves)


def test_the_split_point_is_the_largest_power_of_two_below_n() -> None:
    assert [split_point(n) for n in range(2, 11)] == [1, 2, 2, 4, 4, 4, 4, 8, 8]
    assert split_point(2**40 + 1) == 2**40 and split_point(2**40) == 2**39


def test_folding_subtrees_gives_the_root_of_the_leaves_they_cover() -> None:
    # A tree of 7 leaves is the perfect subtrees [0, 4), [4, 6), [6, 7).
    parts = [root(LEAF_HASHES[0:4]), root(LEAF_HASHES[4:6]), LEAF_HASHES[6]]
    assert fold_subtrees(parts) == root(LEAF_HASHES[:7]) == bytes.fromhex(ROOT_HASHES[7])
    assert fold_subtrees(parts[1:]) == root(LEAF_HASHES[4:7])
    assert fold_subtrees([LEAF_HASHES[3]]) == LEAF_HASHES[3]


# --- Compact ranges ----------------------------------------------------------------------


def test_compact_range_holds_the_published_compact_trees() -> None:
    tree = CompactRange()
    for size, nodes in enumerate(COMPACT_TREES):
        assert tree.size == size
        assert tree.to_hashes() == [NODE_HASHES[level][index] for level, index in nodes]
        assert tree.root().hex() == ROOT_HASHES[size]
        if size < len(LEAF_HASHES):
            tree.append(LEAF_HASHES[size])


def test_compact_range_root_equals_root_at_every_size_up_to_300() -> None:
    leaves = hashes_of(300)
    tree = CompactRange()
    assert tree.root() == EMPTY_ROOT == root([])
    for size, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert tree.size == size
        assert len(tree.to_hashes()) == size.bit_count()
        assert tree.root() == root(leaves[:size]), f"size {size}"


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=40))
def test_a_stored_compact_range_restores_and_keeps_growing(size: int, more: int) -> None:
    leaves = hashes_of(size + more)
    tree = CompactRange()
    for leaf in leaves[:size]:
        tree.append(leaf)
    stored = tree.to_hashes()
    assert all(isinstance(h, str) and len(h) == 64 for h in stored)
    restored = CompactRange.from_hashes(size, stored)
    assert restored == tree
    assert restored.root() == root(leaves[:size])
    for leaf in leaves[size:]:
        restored.append(leaf)
    assert restored.size == size + more
    assert restored.root() == root(leaves)
    raw = CompactRange.from_hashes(restored.size, unhex(restored.to_hashes()))
    assert raw == restored


def test_compact_range_rejects_what_cannot_be_a_stored_range() -> None:
    six = CompactRange.from_hashes(6, [NODE_HASHES[2][0], NODE_HASHES[1][2]])
    assert six.root().hex() == ROOT_HASHES[6]
    with pytest.raises(ValueError, match="size 6 holds 2 hashes"):
        CompactRange.from_hashes(6, [NODE_HASHES[2][0]])
    with pytest.raises(ValueError, match="not hex"):
        CompactRange.from_hashes(1, ["zz" * 32])
    with pytest.raises(ValueError, match="not 32 bytes"):
        CompactRange.from_hashes(1, ["abcd"])
    with pytest.raises(ValueError, match="≥ 0"):
        CompactRange.from_hashes(-1, [])
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append(b"raw data, not a leaf hash")


# --- roots_at ----------------------------------------------------------------------------


def test_roots_at_gives_every_asked_size_in_one_pass() -> None:
    got = roots_at(iter(LEAF_HASHES), [8, 0, 3, 3, 1, 5])
    assert {size: r.hex() for size, r in got.items()} == {
        size: ROOT_HASHES[size] for size in (0, 1, 3, 5, 8)
    }
    assert roots_at(LEAF_HASHES, []) == {}
    assert roots_at([], [0]) == {0: EMPTY_ROOT}


@settings(max_examples=50, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=400), max_size=20))
def test_roots_at_agrees_with_root(sizes: set[int]) -> None:
    leaves = hashes_of(400)
    assert roots_at(leaves, sizes) == {size: root(leaves[:size]) for size in sizes}


def test_roots_at_rejects_sizes_past_the_leaves() -> None:
    with pytest.raises(ValueError, match="size 9, but there are only 8 leaves"):
        roots_at(LEAF_HASHES, [2, 9])
    with pytest.raises(ValueError, match="≥ 0"):
        roots_at(LEAF_HASHES, [-1])


# --- Inclusion proofs --------------------------------------------------------------------


@pytest.mark.parametrize(("leaf", "size", "expected"), INCLUSION_PROOFS)
def test_published_inclusion_proofs(leaf: int, size: int, expected: list[str]) -> None:
    index = leaf - 1
    proof = inclusion_proof(LEAF_HASHES, index, size)
    assert [p.hex() for p in proof] == expected
    tree_root = bytes.fromhex(ROOT_HASHES[size])
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, tree_root)
    assert not verify_inclusion(LEAF_HASHES[index], index, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(LEAF_HASHES[index], index, size, proof, SOME_HASH)
    assert not verify_inclusion(b"WrongLeaf", index, size, proof, tree_root)


def inclusion_forgeries(
    leaf: bytes, index: int, size: int, proof: list[bytes], tree_root: bytes
) -> dict[str, tuple[bytes, int, int, list[bytes], bytes]]:
    """Claims that must all fail: each changes one thing about a valid one."""
    forged = {
        "index - 1": (leaf, index - 1, size, proof, tree_root),
        "index + 1": (leaf, index + 1, size, proof, tree_root),
        "index ^ 2": (leaf, index ^ 2, size, proof, tree_root),
        "size * 2": (leaf, index, size * 2, proof, tree_root),
        "size // 2": (leaf, index, size // 2, proof, tree_root),
        "wrong leaf": (leaf_hash(b"not the leaf"), index, size, proof, tree_root),
        "empty root": (leaf, index, size, proof, EMPTY_ROOT),
        "trailing garbage": (leaf, index, size, [*proof, b""], tree_root),
        "trailing root": (leaf, index, size, [*proof, tree_root], tree_root),
        "preceding garbage": (leaf, index, size, [b"", *proof], tree_root),
        "preceding root": (leaf, index, size, [tree_root, *proof], tree_root),
    }
    for position in range(len(proof)):
        forged[f"flipped bit in proof[{position}]"] = (
            leaf,
            index,
            size,
            flipped(proof, position),
            tree_root,
        )
    if proof:
        forged["removed last"] = (leaf, index, size, proof[:-1], tree_root)
    if len(proof) > 1:
        forged["inserted"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], tree_root)
    return forged


def test_every_inclusion_proof_up_to_64_leaves_verifies_and_no_forgery_does() -> None:
    leaves = hashes_of(64)
    for size in range(1, 65):
        tree_root = root(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(leaves, index, size)
            assert proof == path(index, leaves[:size]), f"index {index}, size {size}"
            assert verify_inclusion(leaves[index], index, size, proof, tree_root)
            for what, claim in inclusion_forgeries(
                leaves[index], index, size, proof, tree_root
            ).items():
                assert not verify_inclusion(*claim), f"{what}: index {index}, size {size}"


def test_inclusion_proof_defaults_to_the_whole_tree() -> None:
    assert inclusion_proof(LEAF_HASHES, 5) == inclusion_proof(LEAF_HASHES, 5, 8)


def test_a_one_leaf_tree_needs_an_empty_proof_and_real_hashes() -> None:
    h = leaf_hash(b"data")
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], h)
    assert not verify_inclusion(b"", 0, 1, [], b"")
    for index, size in [(0, 0), (1, 0), (2, 1), (-1, 1)]:
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_inclusion_ranges_name_the_subtrees_of_the_path_from_the_leaf_up() -> None:
    assert inclusion_ranges(0, 7) == [(1, 2), (2, 4), (4, 7)]
    assert inclusion_ranges(6, 7) == [(4, 6), (0, 4)]
    assert inclusion_ranges(0, 1) == []
    with pytest.raises(ValueError, match="leaf index 7 is outside the tree of size 7"):
        inclusion_ranges(7, 7)


@pytest.mark.parametrize("size", [1, 2, 5, 13, 64])
def test_an_inclusion_proof_is_the_roots_of_its_ranges(size: int) -> None:
    d = hashes_of(size)
    for m in range(size):
        assert inclusion_proof(d, m) == [root(d[lo:hi]) for lo, hi in inclusion_ranges(m, size)]


def test_inclusion_proof_rejects_a_leaf_outside_the_tree() -> None:
    with pytest.raises(ValueError, match="leaf index 8 is outside the tree of size 8"):
        inclusion_proof(LEAF_HASHES, 8)
    with pytest.raises(ValueError, match="leaf index 5 is outside the tree of size 3"):
        inclusion_proof(LEAF_HASHES, 5, 3)
    with pytest.raises(ValueError, match="outside the tree of size 0"):
        inclusion_proof([], 0)
    with pytest.raises(ValueError, match="leaf index -1"):
        inclusion_proof(LEAF_HASHES, -1)
    with pytest.raises(ValueError, match="tree size 9 is not between 0 and the 8 leaves"):
        inclusion_proof(LEAF_HASHES, 0, 9)


# --- Consistency proofs ------------------------------------------------------------------


@pytest.mark.parametrize(("old_size", "new_size", "expected"), CONSISTENCY_PROOFS)
def test_published_consistency_proofs(old_size: int, new_size: int, expected: list[str]) -> None:
    proof = consistency_proof(LEAF_HASHES, old_size, new_size)
    assert [p.hex() for p in proof] == expected
    old_root, new_root = bytes.fromhex(ROOT_HASHES[old_size]), bytes.fromhex(ROOT_HASHES[new_size])
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)


def consistency_forgeries(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> dict[str, tuple[int, int, bytes, bytes, list[bytes]]]:
    """Claims that must all fail: each changes one thing about a valid one."""
    forged = {
        "old size - 1": (old_size - 1, new_size, old_root, new_root, proof),
        "old size + 1": (old_size + 1, new_size, old_root, new_root, proof),
        "old size ^ 2": (old_size ^ 2, new_size, old_root, new_root, proof),
        "new size * 2": (old_size, new_size * 2, old_root, new_root, proof),
        "new size // 2": (old_size, new_size // 2, old_root, new_root, proof),
        "wrong old root": (old_size, new_size, SOME_HASH, new_root, proof),
        "wrong new root": (old_size, new_size, old_root, SOME_HASH, proof),
        "swapped roots": (old_size, new_size, new_root, old_root, proof),
        "empty proof": (old_size, new_size, old_root, new_root, []),
        "trailing garbage": (old_size, new_size, old_root, new_root, [*proof, b""]),
        "trailing old root": (old_size, new_size, old_root, new_root, [*proof, old_root]),
        "trailing new root": (old_size, new_size, old_root, new_root, [*proof, new_root]),
        "preceding garbage": (old_size, new_size, old_root, new_root, [b"", *proof]),
        "preceding old root": (old_size, new_size, old_root, new_root, [old_root, *proof]),
        "preceding new root": (old_size, new_size, old_root, new_root, [new_root, *proof]),
        "preceding proof[0]": (old_size, new_size, old_root, new_root, [proof[0], *proof]),
        "truncated": (old_size, new_size, old_root, new_root, proof[:-1]),
    }
    for position in range(len(proof)):
        forged[f"flipped bit in proof[{position}]"] = (
            old_size,
            new_size,
            old_root,
            new_root,
            flipped(proof, position),
        )
    return forged


def test_every_consistency_proof_up_to_64_leaves_verifies_and_no_forgery_does() -> None:
    leaves = hashes_of(64)
    roots = [root(leaves[:size]) for size in range(65)]
    for new_size in range(65):
        for old_size in range(new_size + 1):
            proof = consistency_proof(leaves, old_size, new_size)
            if 0 < old_size < new_size:
                assert proof == subproof(old_size, leaves[:new_size], True), (
                    f"{old_size} → {new_size}"
                )
            else:
                assert proof == []
            old_root, new_root = roots[old_size], roots[new_size]
            assert verify_consistency(old_size, new_size, old_root, new_root, proof), (
                f"{old_size} → {new_size}"
            )
            if not proof:
                continue
            for what, claim in consistency_forgeries(
                old_size, new_size, old_root, new_root, proof
            ).items():
                assert not verify_consistency(*claim), f"{what}: {old_size} → {new_size}"


def test_consistency_between_trivial_sizes() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    # Equal sizes: equal roots and nothing to prove.
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(1, 1, a, a, [])
    assert not verify_consistency(1, 1, a, b, [])
    assert not verify_consistency(1, 1, a, a, [EMPTY_ROOT])
    # The empty tree is a prefix of every tree, with its true root and no proof.
    assert verify_consistency(0, 1, EMPTY_ROOT, a, [])
    assert not verify_consistency(0, 1, a, a, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, a, [EMPTY_ROOT])
    # Growing needs a proof; shrinking never verifies.
    assert not verify_consistency(1, 2, a, node_hash(a, b), [])
    assert not verify_consistency(2, 1, node_hash(a, b), a, [b])
    assert not verify_consistency(1, 0, a, EMPTY_ROOT, [])
    assert not verify_consistency(-1, 1, a, a, [])
    # Hashes of the wrong size never verify.
    assert not verify_consistency(1, 1, b"", b"", [])


def test_consistency_ranges_follow_subproof() -> None:
    # RFC 6962 §2.1.2: PROOF(3, D[7]) = MTH(D[2:3]), MTH(D[3:4]), MTH(D[0:2]), MTH(D[4:7]).
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    # An old tree that is a perfect left subtree is known to the verifier: not repeated.
    assert consistency_ranges(4, 7) == [(4, 7)]
    assert consistency_ranges(0, 7) == consistency_ranges(7, 7) == []
    with pytest.raises(ValueError, match="old size 8 is not between 0 and the new size 7"):
        consistency_ranges(8, 7)


@pytest.mark.parametrize("size", [1, 2, 5, 13, 64])
def test_a_consistency_proof_is_the_roots_of_its_ranges(size: int) -> None:
    d = hashes_of(size)
    for m in range(size + 1):
        expected = [root(d[lo:hi]) for lo, hi in consistency_ranges(m, size)]
        assert consistency_proof(d, m, size) == expected


def test_consistency_proof_rejects_sizes_that_name_no_pair_of_trees() -> None:
    with pytest.raises(ValueError, match="old size 5 is not between 0 and the new size 3"):
        consistency_proof(LEAF_HASHES, 5, 3)
    with pytest.raises(ValueError, match="old size -1"):
        consistency_proof(LEAF_HASHES, -1, 3)
    with pytest.raises(ValueError, match="tree size 9 is not between 0 and the 8 leaves"):
        consistency_proof(LEAF_HASHES, 2, 9)
