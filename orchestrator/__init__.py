"""vbill: verifiable usage billing with Groth16 proofs over Poseidon commitments."""

BINDING_VERSION = "bn128-poseidon8-v1"
__version__ = "0.1.0"
