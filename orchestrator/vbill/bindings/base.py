"""What a binding is to the rest of vbill: the interface every plug-in module implements.

A binding (one circuit, its encoding and its public signals) is one module of this package,
named by its circuits/circuits.json key and declaring `BINDING`, a `Binding` (every binding:
its version, artefacts and on-chain verifier) or an `EventBinding` (a binding that attests
billable events: request parsing and encoding, the draft and circuit input, the recomputation
that verification uses, the tariff key, the EIP-712 struct it signs), made of the functions of
its own modules. vbill.bindings.registry finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vbill.bindings import BindingArtefacts, artefacts, version_of
from vbill.errors import ToolError

if TYPE_CHECKING:
    from vbill.bundle.attestation import SignedStruct
    from vbill.bundle.draft import Draft
    from vbill.encode.metered import WindowState
    from vbill.verify.rules import Rules


@dataclass(frozen=True)
class OnChain:
    """A binding's verifier contract (rendered to <contract>.sol) and its id and entry points
    in BillingSettlement; `state_keys`: its charges carry (prev_state_key, state_key) as
    signals 5 and 6, which the settlement chains per window."""

    binding_id: int
    contract: str
    interface: str
    settle_fn: str
    batch_fn: str = ""  # none: its charges settle one at a time
    anchor_fn: str = ""  # none: nothing of it is anchored
    state_keys: bool = False


@dataclass(frozen=True)
class Binding:
    """One binding: what every binding has, whether or not it attests events. `key`: its
    circuits/circuits.json key (its circuit's name)."""

    key: str
    on_chain: OnChain

    @property
    def version(self) -> str:
        return version_of(self.key)

    @property
    def artefacts(self) -> BindingArtefacts:
        """Its circuit's and keys' paths (a binding this release does not list: by its
        circuits.json entry's key and `vkey`)."""
        return artefacts(self.version)

    def not_set_up(self) -> ToolError:
        """The error for a request of this binding where its proving key is not built."""
        tag = self.version.rsplit("-", 1)[-1]
        return ToolError(f"binding {self.version} is not set up here (no {tag} proving key)")

    def __repr__(self) -> str:
        return f"<binding {self.key} {self.version}>"


@dataclass(frozen=True, repr=False)
class EventBinding(Binding):
    """A binding that attests billable events: requests of its `tariff_class` are encoded,
    charged, drafted, proved and verified by it. `windowed`: an event is charged from its
    window's state (the store chains a window's events, one seq each). Its requests, records,
    bundles and encoded requests are instances of its four models."""

    tariff_class: str
    windowed: bool
    request_model: type[Any]
    record_model: type[Any]
    bundle_model: type[Any]
    encoded_model: type[Any]
    # the request validated and reduced to field elements (InputError naming the field)
    encode: Callable[[Any], Any]
    # (encoded, salt, account_salt, state before) -> record, public signals and circuit input
    # (a windowed binding charges the event from the state before; others ignore it)
    draft: Callable[[Any, int, int, WindowState], Draft]
    # (bundle signed before its proof, salt, account_salt) -> the circuit's input
    signed_witness_input: Callable[[Mapping[str, Any], int, int], Mapping[str, str]]
    # the recomputation vbill.verify.verify applies to its bundles
    rules: Rules
    # (tariff_snapshot JSON, account_salt) -> the tariff key a tenant accepts on chain
    tariff_key: Callable[[Mapping[str, Any], int], int]
    # the EIP-712 struct its bundles are signed as (vbill.bundle.attestation)
    signed_as: SignedStruct
