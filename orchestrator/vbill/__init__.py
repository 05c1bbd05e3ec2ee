"""vbill: verifiable usage billing with Groth16 proofs over Poseidon commitments.

The Python API mirrors the CLI verbs. Attest a billable event into a bundle, verify a bundle
(three verdicts, failing closed), verify a month of bundles in one batch:

    >>> import vbill
    >>> result = vbill.verify_bundle(bundle, trust=vbill.default_trust())
    >>> result.valid

The stages live in subpackages named for them: ``vbill.encode`` (encoding and charge),
``vbill.zk`` (Poseidon, witness, provers, setup), ``vbill.bundle`` (bundle, EIP-712 digest,
attester key), ``vbill.verify``, ``vbill.ledger`` (store, transparency log), ``vbill.chain``
(settlement on an EVM chain), ``vbill.service`` (HTTP) and ``vbill.cli``; ``vbill.Client`` and
``vbill.AsyncClient`` call a running service over HTTP.
The protocol is specified in docs/protocol.md.
"""

import sys as _sys

import py_ecc as _py_ecc  # noqa: F401  (imported here so the limit below sticks)

from vbill.attest import Attested as Attested
from vbill.attest import attest_event as attest_event
from vbill.bindings import BINDING_VERSION as BINDING_VERSION
from vbill.bundle.bundle import build_bundle as build_bundle
from vbill.bundle.keys import Attester as Attester
from vbill.client import ApiError as ApiError
from vbill.client import AsyncClient as AsyncClient
from vbill.client import Client as Client
from vbill.errors import InputError as InputError
from vbill.errors import ToolError as ToolError
from vbill.errors import VbillError as VbillError
from vbill.errors import VerificationFailed as VerificationFailed
from vbill.ingest import Proving as Proving
from vbill.ledger.store import Store as Store
from vbill.ledger.store import open_store as open_store
from vbill.models import AttestRequest as AttestRequest
from vbill.models import Bundle as Bundle
from vbill.models import MeteredAttestRequest as MeteredAttestRequest
from vbill.models import MeteredBundle as MeteredBundle
from vbill.models import VerifyResult as VerifyResult
from vbill.verify.batch import verify_many as verify_many
from vbill.verify.statement import verify_statement as verify_statement
from vbill.verify.trust import TrustSet as TrustSet
from vbill.verify.trust import default_trust as default_trust
from vbill.verify.verify import verify_bundle as verify_bundle
from vbill.verify.verify import verify_request as verify_request
from vbill.version import __version__ as __version__
from vbill.zk.native_prover import open_prover as open_prover
from vbill.zk.prover import Prover as Prover

# py_ecc raises the recursion limit to 100,000 on import; at that depth a deeply nested input
# overflows the C stack (a signal that kills the process) before Python can raise
# RecursionError. Every entry point imports this package, so restoring it here covers all.
if _sys.getrecursionlimit() >= 100_000:
    _sys.setrecursionlimit(1_000)

__all__ = [
    "BINDING_VERSION",
    "ApiError",
    "AsyncClient",
    "AttestRequest",
    "Attested",
    "Attester",
    "Bundle",
    "Client",
    "InputError",
    "MeteredAttestRequest",
    "MeteredBundle",
    "Prover",
    "Proving",
    "Store",
    "ToolError",
    "TrustSet",
    "VbillError",
    "VerificationFailed",
    "VerifyResult",
    "__version__",
    "attest_event",
    "build_bundle",
    "default_trust",
    "open_prover",
    "open_store",
    "verify_bundle",
    "verify_many",
    "verify_request",
    "verify_statement",
]
