"""Output helpers shared by every verb: JSON for scripts, text for people."""

from __future__ import annotations

import json
from typing import Any

import click

from vbill.errors import printable


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """Print `data` as JSON for scripts, or `human` text for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    elif human is not None:
        click.echo(printable(human))


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
