"""vbill: verifiable usage billing with Groth16 proofs over Poseidon commitments.

The Python API mirrors the CLI verbs: attest an event, verify a bundle, prove a circuit input.
"""

BINDING_VERSION = "bn128-poseidon8-v1"
__version__ = "0.1.0"

from .attest import attest_event as attest_event  # noqa: E402
from .bundle import build_bundle as build_bundle  # noqa: E402
from .errors import InputError as InputError  # noqa: E402
from .errors import ToolError as ToolError  # noqa: E402
from .errors import VbillError as VbillError  # noqa: E402
from .errors import VerificationFailed as VerificationFailed  # noqa: E402
from .keys import Attester as Attester  # noqa: E402
from .prover import Prover as Prover  # noqa: E402
from .trust import TrustSet as TrustSet  # noqa: E402
from .trust import default_trust as default_trust  # noqa: E402
from .verify import verify_bundle as verify_bundle  # noqa: E402
from .verify import verify_request as verify_request  # noqa: E402
