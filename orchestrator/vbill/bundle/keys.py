"""The attester key: an Ethereum key kept in a 0600 file under $VBILL_HOME, never printed."""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import coincurve
from eth_account import Account
from eth_account.signers.local import LocalAccount

from vbill import paths
from vbill.errors import InputError, ToolError


def attester_key_path() -> Path:
    return paths.vbill_home() / "attester.key"


@functools.lru_cache(maxsize=8)
def _secp256k1_key(secret: bytes) -> coincurve.PrivateKey:
    return coincurve.PrivateKey(bytes(secret))


@dataclass(frozen=True)
class Attester:
    """Signs bundle digests. `repr` never shows the key."""

    account: LocalAccount = field(repr=False)

    @property
    def address(self) -> str:
        return self.account.address

    @classmethod
    def generate(cls) -> Attester:
        return cls(Account.from_key(secrets.token_bytes(32)))

    @classmethod
    def new(cls, path: Path | None = None, *, overwrite: bool = False) -> Attester:
        """Create a key file with mode 0600 in a 0700 directory.

        Written to a fresh temp file in the same directory (O_EXCL | O_NOFOLLOW: a planted file
        or link can decide neither its mode nor where the key goes), then renamed into place;
        without `overwrite`, linked into place so an existing key is never replaced."""
        path = path or attester_key_path()
        if path.exists() and not overwrite:
            raise InputError("path", f"{path} exists; refusing to overwrite an attester key")
        paths.private_dir(path.parent)
        attester = cls.generate()
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(tmp, flags, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), 0o600)  # whatever the umask
                fh.write(attester.account.key.hex() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            if overwrite:
                os.replace(tmp, path)  # replaces a planted link itself, never its target
            else:
                try:
                    os.link(tmp, path, follow_symlinks=False)
                except FileExistsError:
                    raise InputError(
                        "path", f"{path} exists; refusing to overwrite an attester key"
                    ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return attester

    @classmethod
    def load(cls, path: Path | None = None) -> Attester:
        path = path or attester_key_path()
        if not path.exists():
            raise ToolError(f"no attester key at {path}; run `vbill keys new`")
        if path.stat().st_mode & 0o077:
            raise ToolError(f"{path} is readable by others; chmod 600 it")
        try:
            return cls(Account.from_key(path.read_text().strip()))
        except ValueError as exc:
            raise ToolError(f"{path} does not hold a valid private key") from exc

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> Attester:
        path = path or attester_key_path()
        return cls.load(path) if path.exists() else cls.new(path)

    def sign_hash(self, digest: bytes) -> str:
        """Sign a 32-byte digest (already EIP-712 encoded); 0x-prefixed 65-byte signature."""
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        # libsecp256k1 directly (RFC 6979, low s: the same signature eth_account makes, in a
        # tenth of the time; ingestion signs every event)
        sig = _secp256k1_key(self.account.key).sign_recoverable(digest, hasher=None)
        return "0x" + sig[:64].hex() + format(sig[64] + 27, "02x")
