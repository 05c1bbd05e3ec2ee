"""One exception family whose `exit_code` is what the CLI exits with (docs/cli.md)."""

from __future__ import annotations


class VbillError(Exception):
    """Base of every error vbill raises on purpose; `exit_code` is the CLI's exit code."""

    exit_code = 2


class InputError(VbillError, ValueError):
    """A request, file or argument is malformed; `field` names the offending field."""

    exit_code = 2

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class VerificationFailed(VbillError):
    """Something was checked and found invalid."""

    exit_code = 1


class ToolError(VbillError):
    """The environment is missing a tool or artefact, or an external program failed."""

    exit_code = 3
