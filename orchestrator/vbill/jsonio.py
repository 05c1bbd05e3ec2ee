"""Reading untrusted JSON (HTTP bodies, bundle and config files) without letting it hurt us.

`json.loads` recurses once per nesting level in C: a body of a few hundred kilobytes of `[`
overflows the C stack and kills the process (signal, not exception) when the interpreter's
recursion limit is high. Every parse of input we do not control goes through `loads` here,
which rejects deep nesting by a linear scan *before* json recurses, bounds integer literals
explicitly (Python's int-str limit would raise a bare ValueError), and refuses NaN/Infinity
(not JSON) and a negative zero (`-0`, `-0.0`: a second spelling of 0). Every failure is an
`InputError` naming what was being read.
"""

from __future__ import annotations

import json
import os
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from vbill.errors import InputError

MAX_DEPTH = 32
"""Deepest accepted nesting of arrays and objects; a bundle needs 7."""
MAX_INT_DIGITS = 80
"""Longest accepted integer literal; every integer vbill reads is < 2^256 (78 digits)."""
MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest JSON file read (a bundle is a few kilobytes)."""

_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside strings (linear, no recursion)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(text: str, what: str, max_depth: int = MAX_DEPTH) -> None:
    # No deeper than its number of opening brackets (those in strings included): most bodies,
    # one event's included, have too few to need the scan.
    if text.count("[") + text.count("{") <= max_depth:
        return
    if nesting_depth(text) > max_depth:
        raise InputError(what, f"JSON nested deeper than {max_depth} levels")


def _decode(data: str | bytes, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(what, "not valid JSON (not UTF-8)") from None


def loads(data: str | bytes, what: str = "body", *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted JSON; raises InputError(what, …) on anything but bounded, valid JSON."""
    text = _decode(data, what)
    check_depth(text, what, max_depth)

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise InputError(what, f"integer literal longer than {MAX_INT_DIGITS} digits")
        if digits == "-0":  # json reads it as 0: a second spelling of zero, never accepted
            raise InputError(what, "-0 is not an accepted integer (write 0)")
        return int(digits)

    def parse_float(text: str) -> float:
        value = float(text)
        if value == 0 and text.startswith("-"):
            raise InputError(what, f"{text} is not an accepted number (write 0)")
        return value

    def parse_constant(name: str) -> Any:
        raise InputError(what, f"not valid JSON ({name} is not a JSON value)")

    try:
        return json.loads(
            text, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant
        )
    except json.JSONDecodeError as exc:
        raise InputError(what, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so nothing escapes raw
        raise InputError(what, "JSON nested too deeply") from None


def read_file(path: Path, what: str | None = None, *, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """Parse a JSON file; a missing, unreadable, empty, oversized or non-JSON file is an
    InputError "cannot read PATH: why" (a typo must never look like a judged document)."""
    what = what or str(path)
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > max_bytes:
                raise InputError(what, f"cannot read {path}: larger than {max_bytes} bytes")
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(what, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError(what, f"cannot read {path}: larger than {max_bytes} bytes")
    if not data.strip():
        raise InputError(what, f"cannot read {path}: empty file")
    try:
        return loads(data, what)
    except InputError as exc:
        raise InputError(what, f"cannot read {path}: {exc.message}") from None
