"""The transparency log's storage: its leaves and signed tree heads, and the Merkle tree kept in
memory beside them (vbill.ledger.translog holds the RFC 9162 hashing and proofs).

Every append happens inside a store write transaction, under `lock`, after `sync` has brought
the tree to the committed leaves (another process may have appended); a caller that fails after
appending truncates the tree back to its size before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vbill.errors import ToolError
from vbill.ledger import translog
from vbill.ledger.db import Database, mapper, now_ms


class Log:
    """The log's leaves and heads, signed with `key` (None: read only)."""

    def __init__(self, db: Database, key: Any = None) -> None:
        self.db = db
        self.key = key
        self.lock = threading.RLock()
        self.tree = translog.MerkleTree()
        with self.lock:
            self.sync(db.conn())

    def sync(self, c: sqlite3.Connection) -> None:
        """Bring the in-memory tree to the committed leaves (another process may have added)."""
        count = c.execute("SELECT COUNT(*) FROM log_leaves").fetchone()[0]
        if count < len(self.tree):
            self.tree.truncate(count)
        if count > len(self.tree):
            for row in c.execute(
                "SELECT leaf_hash FROM log_leaves WHERE leaf_index >= ? ORDER BY leaf_index",
                (len(self.tree),),
            ):
                self.tree.append(bytes(row[0]))

    def require_key(self) -> None:
        """ToolError unless this store can sign tree heads (before any work that appends)."""
        if self.key is None:
            raise ToolError("the store has no log signing key; cannot append to the log")

    @contextmanager
    def appending(self, c: sqlite3.Connection) -> Iterator[int]:
        """Inside transaction `c`: hold the tree's lock with the tree brought to the committed
        leaves; yields its size (the next leaf's index). If the block fails, the leaves it
        appended leave the tree too (the transaction rolls them back from the database)."""
        with self.lock:
            self.sync(c)
            size = len(self.tree)
            try:
                yield size
            except BaseException:
                self.tree.truncate(size)
                raise

    def add(self, c: sqlite3.Connection, leaf: bytes, at: int) -> int:
        """Append one leaf, unsigned yet (inside `appending`); returns its index."""
        index = len(self.tree)
        c.execute(
            "INSERT INTO log_leaves (leaf_index, leaf_hash, created_at) VALUES (?, ?, ?)",
            (index, leaf, at),
        )
        self.tree.append(leaf)
        return index

    def receipt(self, index: int, leaf: bytes, sth: translog.SignedTreeHead) -> translog.LogReceipt:
        """Leaf `index`'s inclusion in the tree that `sth` signs."""
        return translog.LogReceipt(
            leaf_index=index,
            tree_size=sth.tree_size,
            leaf_hash="0x" + leaf.hex(),
            inclusion_proof=[
                "0x" + p.hex() for p in self.tree.inclusion_proof(index, sth.tree_size)
            ],
            tree_head=sth,
        )

    def append(self, c: sqlite3.Connection, leaf: bytes, at: int) -> translog.LogReceipt:
        """Append one leaf and sign the new head (inside `appending`): its receipt."""
        index = self.add(c, leaf, at)
        return self.receipt(index, leaf, self.sign_head(c, index + 1, at))

    def sign_head(self, c: sqlite3.Connection, size: int, at: int) -> translog.SignedTreeHead:
        head = translog.TreeHead(size, self.tree.root(size), at)
        sth = translog.sign_tree_head(head, self.key)
        c.execute(
            "INSERT INTO tree_heads (tree_size, root_hash, timestamp, signer, signature) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tree_size) DO UPDATE SET root_hash = "
            "excluded.root_hash, timestamp = excluded.timestamp, signer = excluded.signer, "
            "signature = excluded.signature",
            (sth.tree_size, sth.root_hash, sth.timestamp, sth.signer, sth.signature),
        )
        return sth

    def head(self) -> translog.SignedTreeHead:
        """The latest signed tree head (signs one for the empty log on first use)."""
        row = (
            self.db.conn()
            .execute("SELECT * FROM tree_heads ORDER BY tree_size DESC LIMIT 1")
            .fetchone()
        )
        if row is not None:
            return _sth_row(row)
        if self.key is None:
            raise ToolError("the log is empty and the store has no signing key")
        with self.db.tx() as c, self.lock:
            self.sync(c)
            return self.sign_head(c, len(self.tree), now_ms())

    def head_at(self, tree_size: int) -> translog.SignedTreeHead | None:
        row = (
            self.db.conn()
            .execute("SELECT * FROM tree_heads WHERE tree_size = ?", (tree_size,))
            .fetchone()
        )
        return _sth_row(row) if row else None

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        with self.lock:
            self.sync(self.db.conn())
            return self.tree.inclusion_proof(leaf_index, tree_size)

    def consistency_proof(self, old_size: int, tree_size: int) -> list[bytes]:
        with self.lock:
            self.sync(self.db.conn())
            return self.tree.consistency_proof(old_size, tree_size)

    def leaf_hash(self, leaf_index: int) -> bytes | None:
        row = (
            self.db.conn()
            .execute("SELECT leaf_hash FROM log_leaves WHERE leaf_index = ?", (leaf_index,))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    def mark_anchored(self, tree_size: int, tx_hash: str) -> None:
        with self.db.tx() as c:
            c.execute(
                "UPDATE tree_heads SET anchored_tx = ? WHERE tree_size = ?", (tx_hash, tree_size)
            )


_sth_row = mapper(translog.SignedTreeHead)
