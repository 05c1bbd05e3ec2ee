"""Binding versions: each names one circuit, its encoding and its public signals (docs/protocol.md).

A binding version is part of every bundle and of the commitment's domain tag; changing any of
them is a new binding version, and bundles of an earlier one keep verifying under its own key.
"""

BINDING_V1 = "bn128-poseidon8-v1"
# The binding of usage_linear requests, and of every bundle attested by the first release.
BINDING_VERSION = BINDING_V1
