"""Horizen L3 / anvil: networks, the local chain, deployment, deposits, settlement, receipts.

Every transaction goes through `Chain`, which checked `eth_chainId` against the network preset
when it connected, so a mistyped RPC URL cannot send a mainnet transaction to the wrong chain.
Reverts come back as `ChainRevert` carrying the contract's custom error name and arguments.
Keys come from the environment or a keystore file, never from argv, and are never printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.logs import DISCARD

from . import contracts, paths
from .errors import InputError, ToolError, VbillError, VerificationFailed

WEI_PER_MICRO = 10**12
WEI_PER_ETH = 10**18
MIN_DEPOSIT_WEI = 10**16
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
DEPLOYMENTS = paths.ROOT / "deployments"

# anvil's default mnemonic ("test test ... junk"): public, for the local chain only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)


class ChainRevert(VbillError):
    """The contract refused: `name` is its custom error, `args` the decoded arguments."""

    exit_code = 1

    def __init__(self, name: str, args: tuple[Any, ...] = (), raw: str = "") -> None:
        super().__init__(f"reverted: {name}{args if args else ''}")
        self.name = name
        self.error_args = args
        self.raw = raw


class ChainUnreachable(ToolError):
    """The RPC endpoint does not answer (exit 3)."""


@dataclass(frozen=True)
class Network:
    name: str
    chain_id: int
    rpc_url: str | None  # None: the local anvil that `vbill chain up` started
    explorer: str | None = None


NETWORKS: dict[str, Network] = {
    "local": Network("local", 31337, None),
    "horizen-testnet": Network(
        "horizen-testnet",
        2651420,
        "https://horizen-testnet.rpc.caldera.xyz/http",
        "https://explorer-testnet.horizen.io",
    ),
    "horizen-mainnet": Network(
        "horizen-mainnet",
        26514,
        "https://horizen.calderachain.xyz/http",
        "https://explorer.horizen.io",
    ),
}


def network(name: str) -> Network:
    if name not in NETWORKS:
        raise InputError("network", f"unknown network {name!r}; one of {', '.join(NETWORKS)}")
    return NETWORKS[name]


# ---------------------------------------------------------------------------------- anvil


@dataclass
class Anvil:
    """A running anvil; `stop()` ends exactly this process."""

    process: subprocess.Popen[bytes] | None
    pid: int
    port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        stop_anvil(self.pid)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def anvil_bin() -> Path:
    path = paths.NODE_MODULES / ".bin" / "anvil"
    if not path.exists():
        path = paths.NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not path.exists():
        raise ToolError("anvil not found in node_modules; run `make install`")
    return path


def start_anvil(
    port: int | None = None,
    host: str = "127.0.0.1",
    state: Path | None = None,
    detach: bool = False,
    timeout: float = 20.0,
    chain_id: int = 31337,
) -> Anvil:
    """Start anvil (deterministic dev mnemonic) on 127.0.0.1 and wait until it answers."""
    port = port or free_port(host)
    cmd = [
        str(anvil_bin()),
        "--host",
        host,
        "--port",
        str(port),
        "--silent",
        "--chain-id",
        str(chain_id),
        "--mnemonic",
        ANVIL_MNEMONIC,
    ]
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--state", str(state)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=detach,
    )
    anvil = Anvil(None if detach else proc, proc.pid, port, host)
    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 2}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolError(f"anvil exited with code {proc.returncode} (port {port} in use?)")
        try:
            if w3.eth.chain_id == chain_id:
                return anvil
        except Exception:  # not listening yet
            pass
        time.sleep(0.1)
    proc.kill()
    raise ToolError(f"anvil did not answer on {anvil.url} within {timeout:.0f} s")


def stop_anvil(pid: int) -> None:
    """Send SIGTERM to this anvil (anvil writes its --state on exit), then SIGKILL if needed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def anvil_record() -> Path:
    return paths.vbill_home() / "anvil.json"


def chain_up(port: int = 8545) -> Anvil:
    """`vbill chain up`: a detached anvil whose pid and URL are kept in $VBILL_HOME/anvil.json."""
    record = anvil_record()
    if record.exists():
        info = json.loads(record.read_text())
        if _alive(int(info["pid"])):
            raise InputError("chain", f"anvil already running (pid {info['pid']}, {info['url']})")
    anvil = start_anvil(port, state=paths.vbill_home() / "anvil-state.json", detach=True)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"pid": anvil.pid, "port": anvil.port, "url": anvil.url}) + "\n")
    return anvil


def chain_down() -> int | None:
    """`vbill chain down`: stop the anvil `chain up` started; returns its pid, or None."""
    record = anvil_record()
    if not record.exists():
        return None
    pid = int(json.loads(record.read_text())["pid"])
    stop_anvil(pid)
    record.unlink()
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def local_rpc_url() -> str:
    record = anvil_record()
    if record.exists():
        return str(json.loads(record.read_text())["url"])
    return "http://127.0.0.1:8545"


# ---------------------------------------------------------------------------------- keys


def load_account(
    net: Network, keystore: Path | None = None, password: str | None = None
) -> LocalAccount:
    """The signing key: --keystore FILE, else env VBILL_PRIVATE_KEY, else (local only) anvil's
    first dev account. The key is never logged; errors never include it."""
    if keystore is not None:
        if password is None:
            password = os.environ.get("VBILL_KEYSTORE_PASSWORD")
        if password is None:
            raise InputError(
                "keystore", "no password (prompted for, or env VBILL_KEYSTORE_PASSWORD)"
            )
        try:
            key = Account.decrypt(json.loads(Path(keystore).read_text()), password)
        except (OSError, ValueError) as exc:
            raise InputError(
                "keystore", f"cannot decrypt {keystore}: {type(exc).__name__}"
            ) from None
        return Account.from_key(key)
    env = os.environ.get("VBILL_PRIVATE_KEY")
    if env:
        try:
            return Account.from_key(env.strip())
        except (ValueError, TypeError):
            raise InputError("VBILL_PRIVATE_KEY", "not a valid private key") from None
    if net.name == "local":
        return Account.from_key(ANVIL_KEYS[0])
    raise InputError("key", f"set VBILL_PRIVATE_KEY or pass --keystore to use {net.name}")


# ---------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Balance:
    available: int
    reserved: int
    total: int

    def as_json(self) -> dict[str, Any]:
        return {
            "available_wei": str(self.available),
            "reserved_wei": str(self.reserved),
            "total_wei": str(self.total),
            "total_eth": wei_to_eth(self.total),
        }


@dataclass(frozen=True)
class TxResult:
    transaction_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class Charge:
    tenant_key: int
    nullifier: int
    commitment: int
    charge: int
    wei: int


@dataclass(frozen=True)
class UsageReceipt:
    """What `vbill receipt` re-derives from the chain (SPEC §7)."""

    cost_eth: str
    transaction_hash: str
    block_number: int
    gas_used: int
    timestamp: int
    charges: tuple[Charge, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["charges"] = [{k: str(v) for k, v in asdict(c).items()} for c in self.charges]
        return out


@dataclass(frozen=True)
class Settlement:
    """A proof and its five public signals, in the contract's calldata shape."""

    a: tuple[int, int]
    b: tuple[tuple[int, int], tuple[int, int]]
    c: tuple[int, int]
    signals: tuple[int, int, int, int, int]
    currency: str = "ETH"

    @property
    def nullifier(self) -> int:
        return self.signals[3]

    @property
    def commitment(self) -> int:
        return self.signals[0]

    def proof_arg(self) -> tuple[Any, ...]:
        return (list(self.a), [list(self.b[0]), list(self.b[1])], list(self.c))


def wei_to_eth(wei: int) -> str:
    return format(Decimal(wei) / Decimal(WEI_PER_ETH), "f")


def _uint(value: Any, where: str, bound: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(where, "expected a decimal integer")
    try:
        x = int(value)
    except ValueError:
        raise InputError(where, "expected a decimal integer") from None
    if x < 0 or (bound is not None and x >= bound):
        raise InputError(where, "out of range")
    return x


def batch_scalars(items: Sequence[Settlement]) -> list[int]:
    """The Fiat–Shamir scalars BillingVerifier.verifyBatch derives, for cross-checking it
    against the py_ecc reference: seed = keccak256(every proof word in calldata order, then
    every signal word), r_0 = 1 and r_i = (keccak256(seed ‖ i) mod 2^128) + 1."""
    words: list[int] = []
    for s in items:
        words += [*s.a, *s.b[0], *s.b[1], *s.c]
    for s in items:
        words += list(s.signals)
    seed = keccak(b"".join(w.to_bytes(32, "big") for w in words))
    return [1] + [
        (int.from_bytes(keccak(seed + i.to_bytes(32, "big")), "big") & (2**128 - 1)) + 1
        for i in range(1, len(items))
    ]


def settlement_from_snarkjs(proof: Mapping[str, Any], signals: Sequence[Any]) -> Settlement:
    """snarkjs JSON → calldata; G2 coordinates swap to the EVM's (im, re) order.

    Coordinates are passed as given (even ≥ p): the on-chain verifier must be the one to reject.
    """
    try:
        pa, pb, pc = proof["pi_a"], proof["pi_b"], proof["pi_c"]
        a = (_uint(pa[0], "proof.pi_a[0]"), _uint(pa[1], "proof.pi_a[1]"))
        b = (
            (_uint(pb[0][1], "proof.pi_b[0][1]"), _uint(pb[0][0], "proof.pi_b[0][0]")),
            (_uint(pb[1][1], "proof.pi_b[1][1]"), _uint(pb[1][0], "proof.pi_b[1][0]")),
        )
        c = (_uint(pc[0], "proof.pi_c[0]"), _uint(pc[1], "proof.pi_c[1]"))
    except (KeyError, IndexError, TypeError) as exc:
        raise InputError("proof", f"not a snarkjs Groth16 proof ({exc})") from None
    if len(signals) != 5:
        raise InputError("public_signals", f"expected 5, got {len(signals)}")
    sig = tuple(_uint(s, f"public_signals[{i}]", 2**256) for i, s in enumerate(signals))
    return Settlement(a, b, c, sig)  # type: ignore[arg-type]


def settlement_from_bundle(bundle: Mapping[str, Any], where: str = "bundle") -> Settlement:
    """The proof, signals and tariff currency of a billing bundle (SPEC §6)."""
    try:
        bp = bundle["attestation"]["billing_proof"]
        proof, signals = bp["proof"], bp["public_signals"]
    except (KeyError, TypeError):
        raise InputError(f"{where}.attestation.billing_proof", "missing proof or signals") from None
    currency = str(bundle.get("tariff_snapshot", {}).get("currency", ""))
    s = settlement_from_snarkjs(proof, signals)
    return Settlement(s.a, s.b, s.c, s.signals, currency)


def read_bundle(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"cannot read bundle: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "bundle is not a JSON object")
    return data


# ---------------------------------------------------------------------------------- chain


class Chain:
    """A connected, chain-id-checked network with one signing account."""

    def __init__(self, w3: Web3, net: Network, account: LocalAccount, rpc_url: str) -> None:
        self.w3 = w3
        self.network = net
        self.account = account
        self.rpc_url = rpc_url
        self._errors: dict[bytes, tuple[str, list[str]]] = {}
        self._settlement: Any = None
        self.deployment: dict[str, Any] | None = None

    # ---- plumbing

    @property
    def address(self) -> str:
        return str(self.account.address)

    def contract(self, name: str, address: str) -> Any:
        compiled = contracts.load_compiled(name)
        self._register_errors(compiled.abi)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=compiled.abi)

    def _register_errors(self, abi: list[dict[str, Any]]) -> None:
        for item in abi:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                sig = f"{item['name']}({','.join(types)})"
                self._errors[keccak(text=sig)[:4]] = (item["name"], types)

    def decode_revert(self, data: Any) -> ChainRevert:
        raw = data.get("data", "") if isinstance(data, dict) else (data or "")
        raw = raw if isinstance(raw, str) else Web3.to_hex(raw)
        blob = bytes.fromhex(raw.removeprefix("0x")) if raw else b""
        if len(blob) >= 4 and blob[:4] in self._errors:
            name, types = self._errors[blob[:4]]
            values = abi_decode(types, blob[4:])
            return ChainRevert(
                name, tuple(_checksum(t, v) for t, v in zip(types, values, strict=True)), raw
            )
        if blob[:4] == keccak(text="Panic(uint256)")[:4]:
            return ChainRevert("Panic", tuple(abi_decode(["uint256"], blob[4:])), raw)
        return ChainRevert("unknown revert" if blob else "revert without data", (), raw)

    @property
    def settlement(self) -> Any:
        if self._settlement is None:
            dep = self.load_deployment()
            self._settlement = self.contract(
                "BillingSettlement", dep["contracts"]["BillingSettlement"]["address"]
            )
        return self._settlement

    def use_settlement(self, address: str) -> None:
        self._settlement = self.contract("BillingSettlement", address)

    def transact(self, fn: Any, value: int = 0, gas: int | None = None) -> TxResult:
        """Sign and send `fn`; a revert (at estimation or mined) raises ChainRevert."""
        params: dict[str, Any] = {
            "from": self.address,
            "value": value,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "chainId": self.network.chain_id,
        }
        if gas is not None:
            params["gas"] = gas
        try:
            tx = fn.build_transaction(params)
        except ContractLogicError as exc:
            raise self.decode_revert(exc.data) from None
        return self._send(tx, fn)

    def _send(self, tx: dict[str, Any], fn: Any = None) -> TxResult:
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        try:
            rcpt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=180)
        except TimeExhausted:
            raise ToolError(f"transaction {tx_hash.hex()} not mined within 180 s") from None
        if rcpt["status"] != 1:
            raise self._replay_revert(tx, rcpt["blockNumber"])
        return TxResult(Web3.to_hex(tx_hash), rcpt["blockNumber"], rcpt["gasUsed"])

    def _replay_revert(self, tx: dict[str, Any], block: int) -> ChainRevert:
        call = {k: tx[k] for k in ("to", "data", "value", "gas") if k in tx}
        call["from"] = self.address
        try:
            self.w3.eth.call(call, block - 1)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            return self.decode_revert(exc.data)
        return ChainRevert("reverted on chain (not reproducible by eth_call)")

    def call_revert(self, fn: Any, gas: int | None = None) -> ChainRevert | None:
        """eth_call `fn` as this account; the revert it would raise, or None if it succeeds."""
        params: dict[str, Any] = {"from": self.address}
        if gas is not None:
            params["gas"] = gas
        try:
            fn.call(params)
        except ContractLogicError as exc:
            return self.decode_revert(exc.data)
        return None

    # ---- deployment

    def deployment_path(self) -> Path:
        return DEPLOYMENTS / f"{self.network.name}.json"

    def load_deployment(self) -> dict[str, Any]:
        if self.deployment is None:
            path = self.deployment_path()
            if not path.exists():
                raise ToolError(f"no deployment for {self.network.name}: run `vbill deploy`")
            self.deployment = json.loads(path.read_text())
        return self.deployment

    def _deploy_one(self, compiled: contracts.Compiled, *args: Any) -> tuple[str, TxResult]:
        self._register_errors(compiled.abi)
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        result = self.transact(factory.constructor(*args))
        rcpt = self.w3.eth.get_transaction_receipt(result.transaction_hash)  # type: ignore[arg-type]
        return str(rcpt["contractAddress"]), result

    def deploy(
        self,
        vkey_path: Path = paths.VKEY,
        attesters: Sequence[str] = (),
        payee: str | None = None,
        allow_dev_setup: bool = False,
        write: bool = True,
    ) -> dict[str, Any]:
        """Render + compile from the vkey, deploy verifier and settlement, register attesters
        (default: the deployer), and write deployments/<network>.json."""
        ceremony = _ceremony()
        if (
            self.network.name != "local"
            and ceremony in ("dev-insecure", "unknown")
            and not allow_dev_setup
        ):
            raise InputError(
                "allow-dev-setup",
                f"the setup's ceremony is {ceremony!r}: its toxic waste is public, so anyone "
                f"could forge proofs on {self.network.name}; --allow-dev-setup overrides",
            )
        built = contracts.build(vkey_path)
        verifier_addr, vtx = self._deploy_one(built["BillingVerifier"])
        owner = self.address
        settle_addr, stx = self._deploy_one(
            built["BillingSettlement"], verifier_addr, owner, payee or owner
        )
        self.use_settlement(settle_addr)
        attester_list = list(attesters) or [owner]
        txs = {"BillingVerifier": vtx, "BillingSettlement": stx}
        added = []
        for a in attester_list:
            added.append(self.transact(self.settlement.functions.addAttester(a)).transaction_hash)
        dep = {
            "network": self.network.name,
            "chain_id": self.network.chain_id,
            "deployer": owner,
            "owner": owner,
            "payee": payee or owner,
            "attesters": attester_list,
            "attester_tx_hashes": added,
            "block_number": stx.block_number,
            "vkey_sha256": sha256_file(vkey_path),
            "ceremony": ceremony,
            "solc": json.loads((contracts.CONTRACTS_OUT / "BillingSettlement.json").read_text())[
                "compiler"
            ]["solc"],
            "contracts": {},
        }
        for name, addr in (("BillingVerifier", verifier_addr), ("BillingSettlement", settle_addr)):
            code = bytes(self.w3.eth.get_code(addr)).hex()  # type: ignore[arg-type]
            dep["contracts"][name] = {
                "address": addr,
                "tx_hash": txs[name].transaction_hash,
                "block_number": txs[name].block_number,
                "gas_used": txs[name].gas_used,
                "runtime_sha256": contracts.sha256_hex(code),
                "compiled_runtime_sha256": built[name].deployed_sha256(),
            }
        self.deployment = dep
        if write:
            DEPLOYMENTS.mkdir(parents=True, exist_ok=True)
            self.deployment_path().write_text(json.dumps(dep, indent=2) + "\n")
        return dep

    def check_deployment(self, vkey_path: Path = paths.VKEY) -> list[dict[str, Any]]:
        """Compare deployments/<network>.json, the build and the chain; one row per check."""
        dep = self.load_deployment()
        rows: list[dict[str, Any]] = []

        def row(what: str, ok: bool, detail: str = "") -> None:
            rows.append({"check": what, "ok": ok, "detail": detail})

        row("chain_id", dep["chain_id"] == self.network.chain_id, str(dep["chain_id"]))
        if vkey_path.exists():
            current = sha256_file(vkey_path)
            row("vkey_sha256", current == dep["vkey_sha256"], current)
        for name, info in dep["contracts"].items():
            code = bytes(self.w3.eth.get_code(info["address"])).hex()
            row(
                f"{name}.runtime_sha256",
                contracts.sha256_hex(code) == info["runtime_sha256"],
                info["address"],
            )
            try:
                compiled = contracts.load_compiled(name)
            except ToolError as exc:
                row(f"{name}.compiled", False, str(exc))
                continue
            masked = _mask(code, compiled.immutable_ranges)
            row(
                f"{name}.matches_build",
                masked == compiled.deployed_bytecode.lower(),
                "on-chain code (immutables masked) vs build/contracts",
            )
        verifier = self.settlement.functions.verifier().call()
        row(
            "settlement.verifier",
            verifier == dep["contracts"]["BillingVerifier"]["address"],
            verifier,
        )
        return rows

    # ---- tenants

    def open_account(self, tenant_key: int, controller: str) -> TxResult:
        """Open the account for `tenant_key` and name its controller (this signer must be an
        active attester). Until then deposits revert AccountNotOpen: a first depositor can no
        longer make itself controller of someone else's tenant key."""
        if not Web3.is_address(controller):
            raise InputError("controller", f"{controller!r} is not an address")
        fn = self.settlement.functions.openAccount(tenant_key, Web3.to_checksum_address(controller))
        return self.transact(fn)

    def controller_of(self, tenant_key: int) -> str | None:
        """The account's controller, or None if no attester has opened it."""
        controller = self.settlement.functions.accountOf(tenant_key).call()[3]
        return None if int(controller, 16) == 0 else Web3.to_checksum_address(controller)

    def deposit(self, tenant_key: int, wei: int) -> TxResult:
        """Fund an open account (anyone may top it up; only its controller withdraws)."""
        return self.transact(self.settlement.functions.deposit(tenant_key), value=wei)

    def accept_tariff(self, tenant_key: int, tariff_key: int) -> TxResult:
        return self.transact(self.settlement.functions.acceptTariff(tenant_key, tariff_key))

    def revoke_tariff(self, tenant_key: int, tariff_key: int) -> TxResult:
        return self.transact(self.settlement.functions.revokeTariff(tenant_key, tariff_key))

    def set_limits(self, tenant_key: int, per_request_wei: int, daily_wei: int) -> TxResult:
        fn = self.settlement.functions.setLimits(tenant_key, per_request_wei, daily_wei)
        return self.transact(fn)

    def request_withdrawal(self, tenant_key: int, wei: int) -> TxResult:
        return self.transact(self.settlement.functions.requestWithdrawal(tenant_key, wei))

    def withdraw(self, tenant_key: int) -> TxResult:
        return self.transact(self.settlement.functions.withdraw(tenant_key))

    def balance(self, tenant_key: int) -> Balance:
        a, r, t = self.settlement.functions.balanceOf(tenant_key).call()
        return Balance(a, r, t)

    # ---- attesters

    def _settle_fn(self, s: Settlement) -> Any:
        fns = self.settlement.functions
        if s.currency == "ETH":
            return fns.settle(s.proof_arg(), list(s.signals))
        return fns.anchorCharge(s.proof_arg(), list(s.signals))

    def settle(self, s: Settlement, gas: int | None = None) -> TxResult:
        """Settle one ETH charge, or anchor a charge in another currency (no ETH moves)."""
        return self.transact(self._settle_fn(s), gas=gas)

    def settle_batch(self, items: Sequence[Settlement], gas: int | None = None) -> list[TxResult]:
        """ETH charges in one settleBatch transaction (its proofs checked by one pairing; if
        any is invalid the whole batch reverts InvalidBatchProof: bisect, or simulate each with
        `call_revert` first); other currencies anchored one by one."""
        eth = [s for s in items if s.currency == "ETH"]
        results = [self.settle(s) for s in items if s.currency != "ETH"]
        if len(eth) == 1:
            results.append(self.settle(eth[0], gas=gas))
        elif eth:
            fn = self.settlement.functions.settleBatch(
                [s.proof_arg() for s in eth], [list(s.signals) for s in eth]
            )
            results.append(self.transact(fn, gas=gas))
        return results

    def anchor_tree_head(self, root: bytes, size: int) -> TxResult:
        return self.transact(self.settlement.functions.anchorTreeHead(root, size))

    def add_attester(self, address: str) -> TxResult:
        return self.transact(self.settlement.functions.addAttester(address))

    def revoke_attester(self, address: str) -> TxResult:
        return self.transact(self.settlement.functions.revokeAttester(address))

    # ---- receipts

    def receipt(self, tx_hash: str, bundle: Mapping[str, Any] | None = None) -> UsageReceipt:
        """Re-derive the usage receipt from the chain; with `bundle`, require a ChargeSettled
        from this deployment whose nullifier, commitment and charge are the bundle's."""
        try:
            rcpt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except Exception as exc:
            raise VerificationFailed(f"transaction {tx_hash} not found: {exc}") from None
        if rcpt["status"] != 1:
            raise VerificationFailed(f"transaction {tx_hash} reverted")
        address = self.settlement.address
        charges = [
            Charge(
                ev["args"]["tenantKey"],
                ev["args"]["nullifier"],
                ev["args"]["commitment"],
                ev["args"]["charge"],
                ev["args"]["weiAmount"],
            )
            for ev in self.settlement.events.ChargeSettled().process_receipt(rcpt, errors=DISCARD)
            if ev["address"] == address
        ]
        if not charges:
            raise VerificationFailed(f"transaction {tx_hash} settled no charge on {address}")
        if bundle is not None:
            s = settlement_from_bundle(bundle)
            match = [c for c in charges if c.nullifier == s.nullifier]
            if not match:
                raise VerificationFailed("no ChargeSettled event carries the bundle's nullifier")
            c = match[0]
            if (
                c.commitment != s.commitment
                or c.charge != s.signals[1]
                or c.tenant_key != s.signals[4]
            ):
                raise VerificationFailed("the ChargeSettled event differs from the bundle")
            charges = [c]
        block = self.w3.eth.get_block(rcpt["blockNumber"])
        return UsageReceipt(
            cost_eth=wei_to_eth(sum(c.wei for c in charges)),
            transaction_hash=Web3.to_hex(rcpt["transactionHash"]),
            block_number=rcpt["blockNumber"],
            gas_used=rcpt["gasUsed"],
            timestamp=block["timestamp"],
            charges=tuple(charges),
        )


def _checksum(abi_type: str, value: Any) -> Any:
    return Web3.to_checksum_address(value) if abi_type == "address" else value


def _mask(code_hex: str, ranges: Sequence[tuple[int, int]]) -> str:
    code = bytearray(bytes.fromhex(code_hex.removeprefix("0x")))
    for start, length in ranges:
        code[start : start + length] = bytes(length)
    return code.hex()


def _ceremony() -> str:
    """The manifest's "ceremony" (e.g. "dev-insecure"); "unknown" when not recorded."""
    if not paths.MANIFEST.exists():
        return "unknown"
    return str(json.loads(paths.MANIFEST.read_text()).get("ceremony", "unknown"))


def connect(
    network_name: str = "local",
    rpc_url: str | None = None,
    account: LocalAccount | None = None,
    keystore: Path | None = None,
    password: str | None = None,
) -> Chain:
    """Connect and check `eth_chainId` against the preset before anything is sent."""
    net = network(network_name)
    url = rpc_url or net.rpc_url or local_rpc_url()
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise ChainUnreachable(
            f"{net.name}: RPC {url} unreachable ({type(exc).__name__})"
        ) from None
    if chain_id != net.chain_id:
        raise InputError(
            "rpc-url",
            f"{url} is chain {chain_id}, but {net.name} is chain {net.chain_id}; refusing",
        )
    return Chain(w3, net, account or load_account(net, keystore, password), url)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
