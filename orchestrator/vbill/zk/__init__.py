"""Prove: the BN254 field, Poseidon, circuit inputs (witness), provers and the trusted setup."""
