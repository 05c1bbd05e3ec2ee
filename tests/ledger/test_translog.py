"""The transparency log against RFC 9162's algorithms and the Go reference vectors.

Vectors: transparency-dev/merkle proof/verify_test.go (the same set trillian and
certificate-transparency-go use): 8 leaves, their roots for sizes 1..8, and known proofs.
"""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from vbill.ledger import translog as tl
from vbill.models import Receipt

_LEAF_HEX = ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f")  # fmt: skip
LEAVES = [bytes.fromhex(h) for h in _LEAF_HEX]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (leaf index, tree size, proof) — the Go vectors list the leaf 1-based; converted here.
INCLUSION = [
    (0, 8, _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (5, 8, _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
              "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (1, 5, _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
]  # fmt: skip

CONSISTENCY = [
    (1, 8, _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (6, 8, _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
              "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 5, _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (6, 7, _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
              "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
]  # fmt: skip

LEAF_HASHES = [tl.leaf_hash(d) for d in LEAVES]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- inclusion: failures first ---


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (-1, 1)])
def test_inclusion_rejects_index_outside_tree(index: int, size: int) -> None:
    assert not tl.verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


def test_inclusion_rejects_wrong_length_hashes() -> None:
    h = tl.leaf_hash(b"data")
    assert tl.verify_inclusion(h, 0, 1, [], h)
    assert not tl.verify_inclusion(h, 0, 1, [], b"")
    assert not tl.verify_inclusion(b"", 0, 1, [], h)
    assert not tl.verify_inclusion(h[:31], 0, 1, [], h[:31])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors_reject_every_corruption(
    index: int, size: int, proof: list[bytes]
) -> None:
    root, leaf = ROOTS[size - 1], LEAF_HASHES[index]
    probes = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, tl.EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
        (index, size, root, leaf, proof[:-1]),
    ]
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 3)
        probes.append((index, size, root, leaf, bad))
    for idx, sz, rt, lf, pf in probes:
        assert not tl.verify_inclusion(lf, idx, sz, pf, rt), (idx, sz)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors_match_and_verify(index: int, size: int, proof: list[bytes]) -> None:
    assert tl.MerkleTree(LEAF_HASHES[:size]).inclusion_proof(index) == proof
    assert tl.verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size - 1])


def test_roots_of_sizes_1_to_8_match_reference() -> None:
    for size in range(1, 9):
        assert tl.root(LEAF_HASHES[:size]) == ROOTS[size - 1]
    assert tl.root([]) == hashlib.sha256(b"").digest()


def test_hashes_use_domain_separation_prefixes() -> None:
    assert tl.leaf_hash(b"") == bytes.fromhex(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    a, b = LEAF_HASHES[0], LEAF_HASHES[1]
    assert tl.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest() == ROOTS[1]


# --- consistency: failures first ---


def test_consistency_rejects_time_travel_and_missing_proofs() -> None:
    r1, r2 = ROOTS[0], ROOTS[1]
    assert not tl.verify_consistency(1, 0, [], r1, r2)
    assert not tl.verify_consistency(2, 1, [], r2, r1)
    assert not tl.verify_consistency(1, 2, [], r1, r2)
    assert not tl.verify_consistency(1, 1, [], r1, r2)
    assert not tl.verify_consistency(1, 1, [tl.EMPTY_ROOT], r1, r1)
    assert not tl.verify_consistency(0, 1, [tl.EMPTY_ROOT], r1, r2)
    assert tl.verify_consistency(1, 1, [], r2, r2)
    assert tl.verify_consistency(0, 1, [], r1, r2)


def test_consistency_refuses_a_negative_old_size_whose_proof_would_walk() -> None:
    # Past the bound, old_size = -1 walks as fn = -2: the path [a, b] then ends with
    # fr = a, sr = H(a, b) and sn = 0, a "consistent" answer; only `0 <= old_size` refuses it.
    a, b = LEAF_HASHES[0], LEAF_HASHES[1]
    assert tl.verify_consistency(-1, 2, [a, b], a, tl.node_hash(a, b)) is False


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_consistency_vectors_reject_every_corruption(m: int, n: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[m - 1], ROOTS[n - 1]
    probes = [
        (m - 1, n, r1, r2, proof),
        (m + 1, n, r1, r2, proof),
        (m ^ 2, n, r1, r2, proof),
        (m, n * 2, r1, r2, proof),
        (m, n // 2, r1, r2, proof),
        (m, n, SOME_HASH, r2, proof),
        (m, n, r1, SOME_HASH, proof),
        (m, n, r2, r1, proof),
        (m, n, r1, r2, []),
        (m, n, r1, r2, [*proof, b""]),
        (m, n, r1, r2, [*proof, r1]),
        (m, n, r1, r2, [*proof, r2]),
        (m, n, r1, r2, [b"", *proof]),
        (m, n, r1, r2, [r1, *proof]),
        (m, n, r1, r2, [r2, *proof]),
        (m, n, r1, r2, [proof[0], *proof]),
        (m, n, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 4)
        probes.append((m, n, r1, r2, bad))
    for a, b, x, y, pf in probes:
        assert not tl.verify_consistency(a, b, pf, x, y), (a, b)


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_consistency_vectors_match_and_verify(m: int, n: int, proof: list[bytes]) -> None:
    assert tl.MerkleTree(LEAF_HASHES[:n]).consistency_proof(m) == proof
    assert tl.verify_consistency(m, n, proof, ROOTS[m - 1], ROOTS[n - 1])


# --- properties over random trees ---


def _tree(size: int) -> tl.MerkleTree:
    return tl.MerkleTree(tl.leaf_hash(i.to_bytes(4, "big")) for i in range(size))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_inclusion_proof_verifies_and_any_bit_flip_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    tree = _tree(size)
    root, leaf, proof = tree.root(), tree.leaf(index), tree.inclusion_proof(index)
    assert tl.verify_inclusion(leaf, index, size, proof, root)
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not tl.verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    assert not tl.verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = list(proof)
        bad[i] = _flip(bad[i], bit)
        assert not tl.verify_inclusion(leaf, index, size, bad, root)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_consistency_proof_verifies_and_any_bit_flip_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 300), label="size")
    old = data.draw(st.integers(1, size - 1), label="old")
    tree = _tree(size)
    r1, r2, proof = tree.root(old), tree.root(), tree.consistency_proof(old)
    assert tl.verify_consistency(old, size, proof, r1, r2)
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not tl.verify_consistency(old, size, proof, _flip(r1, bit), r2)
    assert not tl.verify_consistency(old, size, proof, r1, _flip(r2, bit))
    i = data.draw(st.integers(0, len(proof) - 1), label="element")
    bad = list(proof)
    bad[i] = _flip(bad[i], bit)
    assert not tl.verify_consistency(old, size, bad, r1, r2)


def test_tree_head_prefix_roots_agree_with_fresh_trees() -> None:
    tree = _tree(40)
    for size in range(41):
        assert tree.root(size) == tl.root([tree.leaf(i) for i in range(size)])


# --- signed tree heads and receipts ---

KEY = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)


def _signed(size: int = 5) -> tuple[tl.MerkleTree, tl.SignedTreeHead]:
    tree = _tree(size)
    return tree, tl.sign_tree_head(tl.TreeHead(size, tree.root(), 1_780_000_000_000), KEY)


def test_tree_head_rejects_untrusted_or_edited_heads() -> None:
    _, sth = _signed()
    assert not tl.verify_tree_head(sth, [OTHER.address])
    d = sth.to_dict()
    for field, value in [
        ("tree_size", 6),
        ("timestamp", sth.timestamp + 1),
        ("root_hash", "0x" + "00" * 32),
        ("signer", OTHER.address),
        ("signature", "0x" + "00" * 65),
        ("signature", "zz"),
    ]:
        assert not tl.verify_tree_head({**d, field: value}, [KEY.address, OTHER.address]), field
    assert tl.verify_tree_head(sth, [KEY.address.lower()])
    assert tl.verify_tree_head(d, [KEY.address])


def test_receipt_rejects_wrong_digest_index_and_signer() -> None:
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    tree = tl.MerkleTree(tl.leaf_hash(d) for d in digests)
    sth = tl.sign_tree_head(tl.TreeHead(5, tree.root(), 1), KEY)
    proof = ["0x" + p.hex() for p in tree.inclusion_proof(3)]
    leaf = "0x" + tl.leaf_hash(digests[3]).hex()
    receipt = tl.LogReceipt(3, 5, leaf, proof, sth).to_dict()
    assert tl.verify_receipt(receipt, digests[2], [KEY.address])[0] is False
    other_leaf = "0x" + tl.leaf_hash(digests[2]).hex()
    assert (
        tl.verify_receipt({**receipt, "leaf_hash": other_leaf}, digests[3], [KEY.address])[0]
        is False
    )
    assert tl.verify_receipt({**receipt, "leaf_index": 2}, digests[3], [KEY.address])[0] is False
    assert tl.verify_receipt(receipt, digests[3], [OTHER.address])[0] is False
    assert tl.verify_receipt({**receipt, "tree_size": 4}, digests[3], [KEY.address])[0] is False
    assert tl.verify_receipt({"leaf_index": 3}, digests[3], [KEY.address])[0] is False
    ok, reason = tl.verify_receipt(receipt, digests[3], [KEY.address])
    assert ok, reason
    assert Receipt.model_validate(receipt).model_dump() == receipt  # the wire model's shape


def _ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH written out plainly, without caching, to check the cached tree against."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return tl.node_hash(_ref_mth(leaves[:k]), _ref_mth(leaves[k:]))


def test_cached_roots_match_plain_mth_for_sizes_1_to_64_and_after_truncation() -> None:
    hashes = [tl.leaf_hash(bytes([i])) for i in range(64)]
    tree = tl.MerkleTree()
    for i, h in enumerate(hashes):
        assert tree.append(h) == i
        assert len(tree) == i + 1
        for size in range(1, i + 2):
            assert tree.root(size) == _ref_mth(hashes[:size])
    # Truncating must drop cached subtrees that reached past the new end, and keep no stale one.
    other = [tl.leaf_hash(b"x" + bytes([i])) for i in range(64)]
    for cut in (63, 48, 33, 32, 17, 16, 5, 1, 0):
        tree.truncate(cut)
        assert len(tree) == cut
        for h in other[cut:64]:
            tree.append(h)
        expect = hashes[:cut] + other[cut:64]
        for size in range(1, 65):
            assert tree.root(size) == _ref_mth(expect[:size])
        tree.truncate(cut)
        for h in hashes[cut:64]:
            tree.append(h)


def test_proof_size_and_index_bounds_are_exact() -> None:
    tree = _tree(7)
    assert tree.root(7) == tree.root()
    assert tree.root(0) == tl.EMPTY_ROOT
    for bad in (-1, 8):
        with pytest.raises(ValueError):
            tree.root(bad)
    assert tl.verify_inclusion(tree.leaf(6), 6, 7, tree.inclusion_proof(6, 7), tree.root()) is True
    assert tree.inclusion_proof(0, 1) == []
    for index, size in ((7, 7), (0, 0), (-1, 7), (0, 8), (8, 8), (0, -1), (-1, -1)):
        with pytest.raises(ValueError):
            tree.inclusion_proof(index, size)
    assert tree.consistency_proof(7, 7) == []
    assert tree.consistency_proof(0, 7) == []
    assert tree.consistency_proof(0, 0) == []
    assert tl.verify_consistency(6, 7, tree.consistency_proof(6, 7), tree.root(6), tree.root())
    for old, size in ((8, 8), (0, 8), (-1, 7), (7, 6), (-1, -1)):
        with pytest.raises(ValueError):
            tree.consistency_proof(old, size)
    hashes = [tree.leaf(i) for i in range(7)]
    assert tl.inclusion_proof(6, hashes) == tree.inclusion_proof(6)
    assert tl.consistency_proof(3, hashes) == tree.consistency_proof(3)
    assert tl.consistency_proof(7, hashes) == []


def test_verifiers_return_exactly_false_on_malformed_input() -> None:
    tree = _tree(7)
    r, leaf, p = tree.root(), tree.leaf(2), tree.inclusion_proof(2)
    for args in (
        (leaf, True, 7, p, r),  # a bool is not an index
        (leaf, 2, True, p, r),
        (leaf, 7, 7, p, r),
        (leaf, -1, 7, p, r),
        (leaf, 2, 7, [*p[:-1], p[-1][:31]], r),
        (leaf, 2, 7, [*p, p[0]], r),  # a proof longer than the path
        (leaf, 6, 7, [*tree.inclusion_proof(6), r], r),
        (leaf, 0, 1, [r], leaf),
    ):
        assert tl.verify_inclusion(*args) is False
    assert tl.verify_inclusion(tree.leaf(0), 0, 1, [], tree.leaf(0)) is True
    c = tree.consistency_proof(3)
    for cargs in (
        (True, 7, c, tree.root(3), r),
        (3, 7.0, c, tree.root(3), r),
        (8, 7, c, tree.root(3), r),
        (-1, 7, c, tree.root(3), r),
        (3, 7, [*c[:-1], c[-1][:31]], tree.root(3), r),
        (3, 7, [], tree.root(3), r),
        (3, 7, [*c, c[0]], tree.root(3), r),
        (1, 1, [r], r, r),
        (0, 7, [r], tl.EMPTY_ROOT, r),
    ):
        assert tl.verify_consistency(*cargs) is False
    assert tl.verify_consistency(7, 7, [], r, r) is True
    assert tl.verify_consistency(0, 7, [], tl.EMPTY_ROOT, r) is True


def test_dataclasses_are_frozen_and_receipt_fields_are_hex() -> None:
    import dataclasses

    tree = tl.MerkleTree()
    receipt = tl.append_with_receipt(tree, b"\x07" * 32, KEY, 1_700_000_000_000)
    receipt = tl.append_with_receipt(tree, b"\x08" * 32, KEY, 1_700_000_000_001)
    assert isinstance(receipt, tl.LogReceipt)
    assert receipt.leaf_index == 1 and receipt.tree_size == 2
    assert receipt.leaf_hash == "0x" + tl.leaf_hash(b"\x08" * 32).hex()
    assert receipt.inclusion_proof == ["0x" + tl.leaf_hash(b"\x07" * 32).hex()]
    head = tl.TreeHead(2, tree.root(), 5)
    for obj, field in (
        (receipt, "leaf_index"),
        (receipt.tree_head, "tree_size"),
        (head, "tree_size"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, 9)
    assert tl.verify_receipt(receipt, b"\x08" * 32, [KEY.address]) == (True, "ok")
    for digest in (b"\x08" * 31, b"\x08" * 33, "08" * 32):
        assert tl.verify_receipt(receipt, digest, [KEY.address]) == (
            False,
            "bundle digest must be 32 bytes",
        )
    for bad_head in (tl.TreeHead(True, tree.root(), 5), tl.TreeHead(2, tree.root(), 5.0),
                     tl.TreeHead(2, tree.root()[:31], 5)):  # fmt: skip
        with pytest.raises(ValueError):
            bad_head.message()
    assert tl.verify_tree_head(receipt.tree_head, [OTHER.address]) is False
    assert tl.verify_tree_head({"tree_size": 2}, [KEY.address]) is False
