"""Binding bn128-poseidon8-v2c (circuit correction_binding): corrections of metered events, a
credit priced backwards from the window's state (docs/protocol-corrections.md). It attests no
events of its own: vbill.correct, vbill.bundle.correction and vbill.verify.correction make and
judge its documents."""

from __future__ import annotations

from vbill.bindings.base import Binding, OnChain

BINDING = Binding(
    key="correction_binding",
    # a correction settles alone (no batch entry point), and only of a settled ETH charge
    # (nothing to anchor)
    on_chain=OnChain(3, "BillingVerifierV2C", "IBillingVerifierV2C", "settleCorrection"),
)
