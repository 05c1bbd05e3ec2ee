"""Bundle: assemble the billing bundle, its EIP-712 digest and signature, and the attester key."""
