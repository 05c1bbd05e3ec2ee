"""The chain client: every transaction goes through `Chain`, which checked `eth_chainId`
against the network preset when it connected, so a mistyped RPC URL cannot send a mainnet
transaction to the wrong chain. Reverts come back as `ChainRevert` carrying the contract's custom
error name and arguments. Keys come from the environment or a keystore file, never from argv, and
are never printed."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.logs import DISCARD

from vbill import jsonio, paths
from vbill.chain import contracts
from vbill.chain.anvil import ANVIL_KEYS, local_rpc_url
from vbill.chain.networks import (
    ChainRevert,
    ChainUnreachable,
    Network,
    deployments_dir,
    network,
)
from vbill.chain.records import (
    AccountState,
    Balance,
    Charge,
    CorrectionReceipt,
    Credit,
    Settlement,
    TxResult,
    UsageReceipt,
    settlement_from_bundle,
    wei_to_eth,
)
from vbill.errors import InputError, ToolError, VerificationFailed


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
        document = jsonio.read_file(Path(keystore), "keystore")  # bounded: a hostile file
        if not isinstance(document, dict):  # a JSON string would be parsed again, unbounded
            raise InputError("keystore", f"{keystore} is not a keystore (a JSON object)")
        try:
            key = Account.decrypt(document, password)
        except (ValueError, TypeError, KeyError) as exc:
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
        return deployments_dir(self.network.name) / f"{self.network.name}.json"

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
        vkeys: Mapping[str, Path] | None = None,
    ) -> dict[str, Any]:
        """Render + compile from the vkeys, deploy one verifier per binding and the settlement,
        register each verifier (setVerifier) and the attesters (default: the deployer), and
        write deployments/<network>.json. `vkeys` maps binding → key; by default v1's is
        `vkey_path` and every later binding whose key exists is deployed too."""
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
        keys = contracts.default_vkeys(vkey_path) if vkeys is None else dict(vkeys)
        built = contracts.build(vkey_path, keys)
        addresses: dict[str, str] = {}
        txs: dict[str, TxResult] = {}
        for binding in keys:
            name = contracts.verifier_spec(binding).contract
            addresses[name], txs[name] = self._deploy_one(built[name])
        owner = self.address
        settlement = contracts.SETTLEMENT
        addresses[settlement], txs[settlement] = self._deploy_one(
            built[settlement], owner, payee or owner
        )
        self.use_settlement(addresses[settlement])
        bindings: dict[str, dict[str, Any]] = {}
        for binding, key in keys.items():
            spec = contracts.verifier_spec(binding)
            fn = self.settlement.functions.setVerifier(spec.binding_id, addresses[spec.contract])
            bindings[binding] = {
                "binding_id": spec.binding_id,
                "verifier": spec.contract,
                "vkey_sha256": sha256_file(key),
                "set_verifier_tx_hash": self.transact(fn).transaction_hash,
            }
        attester_list = list(attesters) or [owner]
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
            "block_number": txs[settlement].block_number,
            "vkey_sha256": bindings[contracts.FIRST]["vkey_sha256"],
            "bindings": bindings,
            "ceremony": ceremony,
            "solc": json.loads((contracts.CONTRACTS_OUT / f"{settlement}.json").read_text())[
                "compiler"
            ]["solc"],
            "contracts": {},
        }
        for name, addr in addresses.items():
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
            self.deployment_path().parent.mkdir(parents=True, exist_ok=True)
            self.deployment_path().write_text(json.dumps(dep, indent=2) + "\n")
        return dep

    def check_deployment(self, vkey_path: Path = paths.VKEY) -> list[dict[str, Any]]:
        """Compare deployments/<network>.json, the build and the chain; one row per check."""
        dep = self.load_deployment()
        rows: list[dict[str, Any]] = []

        def row(what: str, ok: bool, detail: str = "") -> None:
            rows.append({"check": what, "ok": ok, "detail": detail})

        row("chain_id", dep["chain_id"] == self.network.chain_id, str(dep["chain_id"]))
        # a record from before bindings: the settlement's first binding only, its key at the
        # top level
        first = contracts.verifier_spec(contracts.FIRST)
        bindings = dep.get("bindings") or {
            first.binding: {"binding_id": first.binding_id, "verifier": first.contract}
        }
        keys = contracts.default_vkeys(vkey_path)  # the first binding's is `vkey_path`
        for binding, info in bindings.items():
            key = keys.get(binding, contracts.verifier_spec(binding).vkey)
            recorded = info.get("vkey_sha256", dep["vkey_sha256"])
            if key.exists():
                current = sha256_file(key)
                # the first binding's check keeps the name it had before bindings
                suffix = "" if binding == contracts.FIRST else f"[{binding}]"
                row(f"vkey_sha256{suffix}", current == recorded, current)
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
        for binding, info in bindings.items():
            on_chain = self.settlement.functions.verifierOf(info["binding_id"]).call()
            row(
                f"settlement.verifierOf[{binding}]",
                on_chain == dep["contracts"][info["verifier"]]["address"],
                on_chain,
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

    def account_of(self, tenant_key: int, block: int | str = "latest") -> AccountState:
        """The whole on-chain account: balances, limits and the day's spend."""
        a = self.settlement.functions.accountOf(tenant_key).call(block_identifier=block)
        return AccountState(*a)

    def balance(self, tenant_key: int) -> Balance:
        a, r, t = self.settlement.functions.balanceOf(tenant_key).call()
        return Balance(a, r, t)

    # ---- attesters

    def _settle_fn(self, s: Settlement) -> Any:
        """The entry point of the charge's binding: settle(V2) for ETH, anchorCharge(V2) else."""
        spec = contracts.verifier_spec(s.binding)
        name = spec.settle_fn if s.currency == "ETH" else spec.anchor_fn
        return self.settlement.functions[name](s.proof_arg(), list(s.signals))

    def settle(self, s: Settlement, gas: int | None = None) -> TxResult:
        """Settle one ETH charge, or anchor a charge in another currency (no ETH moves), through
        the verifier of its binding."""
        return self.transact(self._settle_fn(s), gas=gas)

    def eth_batch_fn(self, eth: Sequence[Settlement]) -> Any:
        """The one call that settles these ETH charges, all of one binding: its `settle` for
        one, else its `settleBatch` (simulate this exact call with `call_revert` before sending
        it with `transact`). InputError for an empty batch or one that mixes bindings."""
        bindings = {s.binding for s in eth}
        if len(bindings) != 1:
            raise InputError(
                "bundles", f"a settleBatch holds charges of one binding, got {sorted(bindings)}"
            )
        if len(eth) == 1:
            return self._settle_fn(eth[0])
        spec = contracts.verifier_spec(eth[0].binding)
        return self.settlement.functions[spec.batch_fn](
            [s.proof_arg() for s in eth], [list(s.signals) for s in eth]
        )

    def settle_batch(self, items: Sequence[Settlement], gas: int | None = None) -> list[TxResult]:
        """ETH charges in one settleBatch transaction per binding (its proofs checked by one
        pairing; if any charge is refused the whole batch reverts: simulate `eth_batch_fn`
        first), bindings in order of first appearance; other currencies anchored one by one,
        first. So with one binding, the last result is the batch's transaction."""
        results = [self.settle(s) for s in items if s.currency != "ETH"]
        for group in by_binding([s for s in items if s.currency == "ETH"]).values():
            results.append(self.transact(self.eth_batch_fn(group), gas=gas))
        return results

    def anchor_tree_head(self, root: bytes, size: int) -> TxResult:
        return self.transact(self.settlement.functions.anchorTreeHead(root, size))

    def add_attester(self, address: str) -> TxResult:
        return self.transact(self.settlement.functions.addAttester(address))

    def revoke_attester(self, address: str) -> TxResult:
        return self.transact(self.settlement.functions.revokeAttester(address))

    # ---- receipts

    def _mined(self, tx_hash: str) -> Any:
        """The transaction's receipt; VerificationFailed if it is unknown or reverted."""
        try:
            rcpt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except Exception as exc:
            raise VerificationFailed(f"transaction {tx_hash} not found: {exc}") from None
        if rcpt["status"] != 1:
            raise VerificationFailed(f"transaction {tx_hash} reverted")
        return rcpt

    def _logs(self, rcpt: Any, event: str) -> list[Any]:
        """This deployment's `event` logs in the receipt (another contract's are ignored)."""
        logs = getattr(self.settlement.events, event)().process_receipt(rcpt, errors=DISCARD)
        return [ev for ev in logs if ev["address"] == self.settlement.address]

    def _entries(self, rcpt: Any, event: str, fields: Sequence[str], make: Any) -> list[Any]:
        """`make(*fields of each event, prev_state_key, state_key)`, the state keys those of
        the WindowAdvanced event with its nullifier (None, None without one: a v1 charge)."""
        windows = {
            ev["args"]["nullifier"]: (ev["args"]["prevStateKey"], ev["args"]["stateKey"])
            for ev in self._logs(rcpt, "WindowAdvanced")
        }
        return [
            make(
                *(ev["args"][f] for f in fields),
                *windows.get(ev["args"]["nullifier"], (None, None)),
            )
            for ev in self._logs(rcpt, event)
        ]

    def _mined_at(self, rcpt: Any) -> dict[str, Any]:
        """The receipt fields of where and when a transaction was mined."""
        return {
            "transaction_hash": Web3.to_hex(rcpt["transactionHash"]),
            "block_number": rcpt["blockNumber"],
            "gas_used": rcpt["gasUsed"],
            "timestamp": self.w3.eth.get_block(rcpt["blockNumber"])["timestamp"],
        }

    def corrects(self, tx_hash: str) -> bool:
        """True if the transaction settled corrections and no charge (a settleCorrection)."""
        rcpt = self._mined(tx_hash)
        return bool(self._logs(rcpt, "ChargeCorrected")) and not self._logs(rcpt, "ChargeSettled")

    def receipt(self, tx_hash: str, bundle: Mapping[str, Any] | None = None) -> UsageReceipt:
        """Re-derive the usage receipt from the chain; with `bundle`, require a ChargeSettled
        from this deployment whose nullifier, commitment and charge are the bundle's."""
        rcpt = self._mined(tx_hash)
        address = self.settlement.address
        fields = ("tenantKey", "nullifier", "commitment", "charge", "weiAmount")
        charges = self._entries(rcpt, "ChargeSettled", fields, Charge)
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
                or c.tenant_key != s.tenant_key
            ):
                raise VerificationFailed("the ChargeSettled event differs from the bundle")
            if s.state_keys is not None and (c.prev_state_key, c.state_key) != s.state_keys:
                raise VerificationFailed("the WindowAdvanced event differs from the bundle")
            charges = [c]
        return UsageReceipt(
            cost_eth=wei_to_eth(sum(c.wei for c in charges)),
            **self._mined_at(rcpt),
            charges=tuple(charges),
        )

    def correction_receipt(
        self, tx_hash: str, correction: Mapping[str, Any] | None = None
    ) -> CorrectionReceipt:
        """Re-derive a correction's receipt from its settleCorrection transaction (docs/
        protocol-corrections.md §10); with the `correction` document, require a ChargeCorrected
        from this deployment whose nullifier, corrected charge's nullifier, commitment, credit
        and tenant are its public signals 3, 8, 0, 1 and 4, and a WindowAdvanced from its
        signal 5 to 6."""
        rcpt = self._mined(tx_hash)
        fields = (
            "tenantKey",
            "nullifier",
            "correctsNullifier",
            "commitment",
            "credit",
            "weiAmount",
        )
        credits = self._entries(rcpt, "ChargeCorrected", fields, Credit)
        if not credits:
            raise VerificationFailed(
                f"transaction {tx_hash} settled no correction on {self.settlement.address}"
            )
        if correction is not None:
            s = settlement_from_bundle(correction, "correction").signals
            match = [c for c in credits if c.nullifier == s[3]]
            if not match:
                raise VerificationFailed(
                    "no ChargeCorrected event carries the correction's nullifier"
                )
            c = match[0]
            stated = (c.corrects_nullifier, c.commitment, c.credit, c.tenant_key)
            if stated != (s[8], s[0], s[1], s[4]):
                raise VerificationFailed("the ChargeCorrected event differs from the correction")
            if (c.prev_state_key, c.state_key) != (s[5], s[6]):
                raise VerificationFailed("the WindowAdvanced event differs from the correction")
            credits = [c]
        return CorrectionReceipt(
            credit_eth=wei_to_eth(sum(c.wei for c in credits)),
            **self._mined_at(rcpt),
            corrections=tuple(credits),
        )


def by_binding(items: Sequence[Settlement]) -> dict[str, list[Settlement]]:
    """The charges grouped by binding, in order of first appearance (one settleBatch each)."""
    groups: dict[str, list[Settlement]] = {}
    for s in items:
        groups.setdefault(s.binding, []).append(s)
    return groups


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
