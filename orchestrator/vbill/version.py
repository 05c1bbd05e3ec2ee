"""The release of the vbill package (not the binding version of a proof)."""

__version__ = "0.1.0"
