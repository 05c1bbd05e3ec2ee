"""`vbill.build_bundle`, the library's one-call attest: it signs under digest version 2 like the
service and `vbill attest` (docs/protocol.md §7.1), refuses bad input before signing or proving,
and never returns a bundle whose proof does not reproduce the signed public signals."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import vbill
from support import log_and_receipt
from vbill.bundle.attestation import SCHEME_V2
from vbill.bundle.keys import Attester
from vbill.errors import InputError, ToolError
from vbill.ledger.translog import MerkleTree
from vbill.verify.trust import TrustSet
from vbill.verify.verify import default_check, verify_bundle
from vbill.zk.prover import Proof, Prover


class CountingProver:
    """The real prover, counting the proofs asked of it."""

    def __init__(self, inner: Prover) -> None:
        self.inner, self.calls = inner, 0

    def prove(self, circuit_input: dict[str, str]) -> Proof:
        self.calls += 1
        return self.inner.prove(circuit_input)


class OtherSignalsProver(CountingProver):
    """A real proof, reported with one public signal that is not the one signed."""

    def prove(self, circuit_input: dict[str, str]) -> Proof:
        real = super().prove(circuit_input)
        signals = [str(int(real.public_signals[0]) + 1), *real.public_signals[1:]]
        return Proof(proof=real.proof, public_signals=signals)


def test_build_bundle_signs_digest_v2_and_attaches_a_checked_proof(
    prover: Prover,
    attester: Attester,
    vkey_sha256: str,
    pilot_request: dict[str, Any],
    trust: TrustSet,
) -> None:
    counting = CountingProver(prover)
    bundle = vbill.build_bundle(
        pilot_request, attester=attester, account_salt=7, prover=counting, vkey_sha256=vkey_sha256
    )
    assert bundle.attestation.scheme == SCHEME_V2 and counting.calls == 1
    logged = log_and_receipt(bundle, MerkleTree(), attester).model_dump(mode="json")
    assert logged["attestation"]["billing_proof"]["proof"]
    result = verify_bundle(logged, trust=trust, check=default_check())
    assert result.valid, result


def test_bad_input_is_refused_before_any_proving(
    prover: Prover, attester: Attester, vkey_sha256: str, pilot_request: dict[str, Any]
) -> None:
    bad = copy.deepcopy(pilot_request)
    bad["meter_event"]["usage_units"] = -1
    counting = CountingProver(prover)
    with pytest.raises(InputError) as caught:
        vbill.build_bundle(
            bad, attester=attester, account_salt=7, prover=counting, vkey_sha256=vkey_sha256
        )
    assert caught.value.field == "meter_event.usage_units" and counting.calls == 0


def test_a_proof_of_other_signals_is_never_attached(
    prover: Prover, attester: Attester, vkey_sha256: str, pilot_request: dict[str, Any]
) -> None:
    liar = OtherSignalsProver(prover)
    with pytest.raises(ToolError, match="disagree with the signed ones"):
        vbill.build_bundle(
            pilot_request, attester=attester, account_salt=7, prover=liar, vkey_sha256=vkey_sha256
        )
    assert liar.calls == 1
