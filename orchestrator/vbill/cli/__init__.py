"""The `vbill` console script: one module per verb group, attached to `main` in main.py."""

from vbill.cli.main import main as main

__all__ = ["main"]
