"""Settle: networks, the local anvil chain, contract rendering and deployment, the chain client.

`from vbill import chain` gives the whole surface: `chain.connect(...)` returns a `Chain` that
deploys, funds, settles and re-derives receipts; `chain.start_anvil()` runs a local chain.
"""

from vbill.chain.anvil import ANVIL_KEYS as ANVIL_KEYS
from vbill.chain.anvil import ANVIL_MNEMONIC as ANVIL_MNEMONIC
from vbill.chain.anvil import Anvil as Anvil
from vbill.chain.anvil import chain_down as chain_down
from vbill.chain.anvil import chain_up as chain_up
from vbill.chain.anvil import free_port as free_port
from vbill.chain.anvil import local_rpc_url as local_rpc_url
from vbill.chain.anvil import start_anvil as start_anvil
from vbill.chain.anvil import stop_anvil as stop_anvil
from vbill.chain.client import Chain as Chain
from vbill.chain.client import by_binding as by_binding
from vbill.chain.client import connect as connect
from vbill.chain.client import load_account as load_account
from vbill.chain.client import sha256_file as sha256_file
from vbill.chain.networks import DEPLOYMENTS as DEPLOYMENTS
from vbill.chain.networks import MIN_DEPOSIT_WEI as MIN_DEPOSIT_WEI
from vbill.chain.networks import NETWORKS as NETWORKS
from vbill.chain.networks import WEI_PER_ETH as WEI_PER_ETH
from vbill.chain.networks import WEI_PER_MICRO as WEI_PER_MICRO
from vbill.chain.networks import ChainRevert as ChainRevert
from vbill.chain.networks import ChainUnreachable as ChainUnreachable
from vbill.chain.networks import Network as Network
from vbill.chain.networks import R as R
from vbill.chain.networks import deployments_dir as deployments_dir
from vbill.chain.networks import network as network
from vbill.chain.records import AccountState as AccountState
from vbill.chain.records import Balance as Balance
from vbill.chain.records import Charge as Charge
from vbill.chain.records import Settlement as Settlement
from vbill.chain.records import TxResult as TxResult
from vbill.chain.records import UsageReceipt as UsageReceipt
from vbill.chain.records import batch_scalars as batch_scalars
from vbill.chain.records import parse_uint as parse_uint
from vbill.chain.records import read_bundle as read_bundle
from vbill.chain.records import settlement_from_bundle as settlement_from_bundle
from vbill.chain.records import settlement_from_snarkjs as settlement_from_snarkjs
from vbill.chain.records import wei_to_eth as wei_to_eth
