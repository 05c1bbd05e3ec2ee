"""Transparency log: an RFC 9162 (CT v2) Merkle tree over bundle digests, and signed tree heads.

Every attested bundle's 32-byte digest becomes a leaf, so an operator cannot quietly show two
parties different bundles for one event: the receipt's inclusion proof ties the bundle to a
signed tree head, and consistency proofs tie every head to every later one (append-only).

Hashing follows RFC 9162 §2.1.1: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || l || r),
the tree over n leaves splits at the largest power of two < n. Verifiers follow §2.1.3.2 and
§2.1.4.2 literally and fail closed: any bad length, index or size is `False`, never an error.
Tree heads are signed with an Ethereum key (EIP-191 personal message over a fixed byte layout)
so the same key that signs attestations, or the chain, can check them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

HASH_SIZE = 32
STH_DOMAIN = b"vbill-sth-v1"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only list of leaf hashes with cached hashes of complete power-of-two subtrees.

    A complete aligned subtree never changes once full, so caching it makes roots and proofs
    O(log² n) hashes instead of O(n) after the first computation.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._leaves: list[bytes] = []
        self._cache: dict[tuple[int, int], bytes] = {}
        for h in leaf_hashes:
            self.append(h)

    def __len__(self) -> int:
        return len(self._leaves)

    def append(self, leaf: bytes) -> int:
        """Add a leaf hash; returns its index."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        self._leaves.append(bytes(leaf))
        return len(self._leaves) - 1

    def truncate(self, size: int) -> None:
        """Drop leaves from `size` on (undoing appends whose transaction rolled back)."""
        del self._leaves[size:]
        self._cache = {k: v for k, v in self._cache.items() if k[0] + k[1] <= size}

    def leaf(self, index: int) -> bytes:
        return self._leaves[index]

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return self._leaves[start]
        complete = n & (n - 1) == 0
        if complete and (start, n) in self._cache:
            return self._cache[(start, n)]
        k = _split(n)
        h = node_hash(self._mth(start, start + k), self._mth(start + k, end))
        if complete:
            self._cache[(start, n)] = h
        return h

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all)."""
        size = len(self._leaves) if size is None else size
        if not 0 <= size <= len(self._leaves):
            raise ValueError(f"tree size {size} out of range 0..{len(self._leaves)}")
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
        size = len(self._leaves) if size is None else size
        if not 0 <= size <= len(self._leaves) or not 0 <= index < size:
            raise ValueError(f"leaf index {index} not in a tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self._mth(start + k, end)]
        return [*self._path(m - k, start + k, end), self._mth(start, start + k)]

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:size]) of RFC 9162 §2.1.4.1; empty when old_size is 0 or size."""
        size = len(self._leaves) if size is None else size
        if not 0 <= old_size <= size <= len(self._leaves):
            raise ValueError(f"cannot prove {old_size} -> {size} in a log of {len(self._leaves)}")
        if old_size in (0, size):
            return []
        return self._subproof(old_size, 0, size, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self._mth(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self._mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._mth(start, start + k)]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a list of leaf hashes (the empty tree hashes to SHA-256 of nothing)."""
    return MerkleTree(leaf_hashes).root()


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    return MerkleTree(leaf_hashes).inclusion_proof(index)


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    return MerkleTree(leaf_hashes).consistency_proof(old_size)


def _hashes_ok(*items: object) -> bool:
    return all(isinstance(h, bytes | bytearray) and len(h) == HASH_SIZE for h in items)


def _is_int(*items: object) -> bool:
    return all(isinstance(i, int) and not isinstance(i, bool) for i in items)


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` place leaf hash `leaf` at `index` under `root_hash`?"""
    if not _is_int(index, tree_size) or not 0 <= index < tree_size:
        return False
    if not _hashes_ok(leaf, root_hash, *proof):
        return False
    fn, sn, r = index, tree_size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(
    old_size: int, size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of `size` leaves an append-only extension of `old_size`?"""
    if not _is_int(old_size, size) or not 0 <= old_size <= size:
        return False
    if not _hashes_ok(old_root, new_root, *proof):
        return False
    if old_size == size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:  # the empty tree is a prefix of every tree
        return len(proof) == 0
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path = [bytes(old_root), *path]
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


# --- signed tree heads ---


@dataclass(frozen=True)
class TreeHead:
    """The state of the log at one moment: how many leaves, their root, when (ms since epoch)."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int

    def message(self) -> bytes:
        """The exact bytes signed: domain || size (u64 BE) || timestamp (u64 BE) || root."""
        if not _is_int(self.tree_size, self.timestamp_ms) or len(self.root_hash) != HASH_SIZE:
            raise ValueError("malformed tree head")
        return (
            STH_DOMAIN
            + self.tree_size.to_bytes(8, "big")
            + self.timestamp_ms.to_bytes(8, "big")
            + self.root_hash
        )


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree head and the Ethereum signature over `TreeHead.message()`; hex on the wire."""

    tree_size: int
    root_hash: str
    timestamp: int
    signer: str
    signature: str

    def head(self) -> TreeHead:
        return TreeHead(self.tree_size, _unhex(self.root_hash), self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "signer": self.signer,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedTreeHead:
        return cls(
            tree_size=data["tree_size"],
            root_hash=data["root_hash"],
            timestamp=data["timestamp"],
            signer=data["signer"],
            signature=data["signature"],
        )


def _unhex(s: str) -> bytes:
    if not isinstance(s, str):
        raise ValueError("expected a hex string")
    return bytes.fromhex(s.removeprefix("0x"))


def sign_tree_head(head: TreeHead, private_key: Any) -> SignedTreeHead:
    """Sign a tree head with an Ethereum key (hex, bytes or an eth_account LocalAccount)."""
    account = private_key if hasattr(private_key, "sign_message") else Account.from_key(private_key)
    signed = account.sign_message(encode_defunct(primitive=head.message()))
    return SignedTreeHead(
        tree_size=head.tree_size,
        root_hash="0x" + head.root_hash.hex(),
        timestamp=head.timestamp_ms,
        signer=account.address,
        signature="0x" + bytes(signed.signature).hex(),
    )


def verify_tree_head(
    sth: SignedTreeHead | Mapping[str, Any], trusted_signers: Iterable[str]
) -> bool:
    """True when the signature recovers to `sth.signer` and that signer is trusted."""
    try:
        if not isinstance(sth, SignedTreeHead):
            sth = SignedTreeHead.from_dict(sth)
        trusted = {s.lower() for s in trusted_signers}
        if sth.signer.lower() not in trusted:
            return False
        msg = encode_defunct(primitive=sth.head().message())
        recovered = Account.recover_message(msg, signature=_unhex(sth.signature))
        return recovered.lower() == sth.signer.lower()
    except Exception:  # any malformed field: fail closed
        return False


# --- receipts ---


@dataclass(frozen=True)
class LogReceipt:
    """Where a bundle sits in the log: its index, leaf hash, inclusion proof and the signed head.

    The dict form is `models.Receipt` (docs/protocol.md §8.4)."""

    leaf_index: int
    tree_size: int
    leaf_hash: str
    inclusion_proof: list[str]
    tree_head: SignedTreeHead

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash,
            "inclusion_proof": list(self.inclusion_proof),
            "tree_head": self.tree_head.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogReceipt:
        return cls(
            leaf_index=data["leaf_index"],
            tree_size=data["tree_size"],
            leaf_hash=data["leaf_hash"],
            inclusion_proof=list(data["inclusion_proof"]),
            tree_head=SignedTreeHead.from_dict(data["tree_head"]),
        )


def verify_receipt(
    receipt: LogReceipt | Mapping[str, Any] | Any,
    bundle_digest: bytes,
    trusted_signers: Iterable[str],
) -> tuple[bool, str]:
    """Check a receipt for `bundle_digest`: its leaf is the digest's leaf hash, the inclusion
    proof leads to the signed root, and the head is signed by a trusted log key.

    Accepts a LogReceipt, its dict form or a pydantic model of it; returns (ok, reason).
    """
    try:
        if hasattr(receipt, "model_dump"):
            receipt = receipt.model_dump()
        if not isinstance(receipt, LogReceipt):
            receipt = LogReceipt.from_dict(receipt)
        proof = [_unhex(p) for p in receipt.inclusion_proof]
        stated_leaf = _unhex(receipt.leaf_hash)
        sth = receipt.tree_head
        root_hash = _unhex(sth.root_hash)
    except Exception as exc:
        return False, f"receipt is malformed: {exc}"
    if not isinstance(bundle_digest, bytes | bytearray) or len(bundle_digest) != HASH_SIZE:
        return False, "bundle digest must be 32 bytes"
    leaf = leaf_hash(bytes(bundle_digest))
    if stated_leaf != leaf:
        return False, "receipt leaf_hash is not the leaf hash of this bundle's digest"
    if receipt.tree_size != sth.tree_size:
        return False, "receipt tree_size differs from the signed tree head"
    if not verify_tree_head(sth, trusted_signers):
        return False, "signed tree head is not signed by a trusted log key"
    if not verify_inclusion(leaf, receipt.leaf_index, sth.tree_size, proof, root_hash):
        return False, "inclusion proof does not lead to the signed root"
    return True, "ok"


def append_with_receipt(
    tree: MerkleTree, digest: bytes, signer: Any, timestamp_ms: int
) -> LogReceipt:
    """Append a bundle digest to an in-memory log, sign the new head, return the receipt."""
    leaf = leaf_hash(digest)
    index = tree.append(leaf)
    sth = sign_tree_head(TreeHead(len(tree), tree.root(), timestamp_ms), signer)
    return LogReceipt(
        leaf_index=index,
        tree_size=len(tree),
        leaf_hash="0x" + leaf.hex(),
        inclusion_proof=["0x" + p.hex() for p in tree.inclusion_proof(index)],
        tree_head=sth,
    )
