"""One exception family whose `exit_code` is what the CLI exits with (docs/cli.md)."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with whatever UTF-8 cannot encode (a lone surrogate echoed from hostile input)
    escaped as `\\udXXX`, so a reason, a message or a report always prints and serialises."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
