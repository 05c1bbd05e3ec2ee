"""A pytest plugin for `make mutants`: mutate only a target's scope (docs/testing.md).

pytest-gremlins mutates whole files, and of the store's modules only the attest path is the
security-critical part: its other mutants would cost half the run and judge nothing. With
`VBILL_MUTANT_LINES` set (`/abs/path.py:first-last,first-last`, as `mutants.run` writes it),
the gremlins generated outside those lines are dropped before any of them runs; without it,
this plugin changes nothing. It wraps the plugin's generation step, so it names the version it
was written against and refuses to run against one without that step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ENV = "VBILL_MUTANT_LINES"


def parse(value: str) -> tuple[Path, set[int]]:
    """`/abs/store.py:10-20,30-31` → (the path, {10, …, 20, 30, 31})."""
    path, _, spans = value.rpartition(":")
    lines: set[int] = set()
    for span in filter(None, spans.split(",")):
        first, _, last = span.partition("-")
        lines.update(range(int(first), int(last or first) + 1))
    if not path or not lines:
        raise pytest.UsageError(f"{ENV}={value!r}: expected /path/file.py:first-last,…")
    return Path(path).resolve(), lines


def spans(lines: set[int]) -> str:
    """The inverse of parse's line set: {1, 2, 3, 7} → "1-3,7-7"."""
    runs: list[list[int]] = []
    for n in sorted(lines):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(f"{first}-{last}" for first, last in runs)


def pytest_configure(config: pytest.Config) -> None:
    value = os.environ.get(ENV)
    if not value or not config.getoption("gremlins", default=False):
        return
    from pytest_gremlins import plugin as gremlins

    generate = getattr(gremlins, "_generate_gremlins", None)
    if generate is None:
        raise pytest.UsageError(
            "this pytest-gremlins has no _generate_gremlins (written against 1.12.2): "
            f"vbill_tools.gremlin_scope cannot scope {value!r}; pin the dev extras' version"
        )
    target, lines = parse(value)

    def in_scope_only(session: Any, source_files: Any, rootdir: Path) -> None:
        generate(session, source_files, rootdir)
        kept = []
        for g in session.gremlins:
            path = Path(g.file_path)
            path = (path if path.is_absolute() else Path(rootdir) / path).resolve()
            if path != target or g.line_number in lines:
                kept.append(g)
        session.gremlins = kept

    gremlins._generate_gremlins = in_scope_only
