"""Network presets (local anvil, Horizen L3 testnet and mainnet), units and chain errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbill import paths
from vbill.errors import InputError, ToolError, VbillError

WEI_PER_MICRO = 10**12
WEI_PER_ETH = 10**18
MIN_DEPOSIT_WEI = 10**16
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
# Public networks' deployment records live in the checkout (deployments/<network>.json, the
# convention); a local chain's record lives with its state under $VBILL_HOME.
DEPLOYMENTS = paths.ROOT / "deployments"


def deployments_dir(network_name: str) -> Path:
    """Where `deployments/<network>.json` is kept: $VBILL_HOME/deployments for `local`,
    else env VBILL_DEPLOYMENTS or the checkout's deployments/."""
    if network_name == "local":
        return paths.vbill_home() / "deployments"
    return Path(os.environ.get("VBILL_DEPLOYMENTS", DEPLOYMENTS))


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
