"""Encode: requests to field elements (canonical encoding) and the deterministic charge."""
