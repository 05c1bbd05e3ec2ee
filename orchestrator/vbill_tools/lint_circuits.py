"""`make lint-circuits`: circheck, a static analyser of Circom sources (PyPI), over each binding.

    python -m vbill_tools.lint_circuits [circuits.json key ...]     (default: every binding)

circheck resolves an include beside the file that includes it and has no include path, so each
binding is linted in a scratch copy of circuits/ with circomlib's circuits linked beside the
templates. circheck 0.3.0 cannot analyse circomlib's poseidon.circom: its parser recurses
through the round constants past the recursion limit its modules set (5000), and with a larger
one it parses for minutes and then its type check fails (KeyError 'out'). So the scratch copy
models Poseidon(n) by a small template with the same signals whose output is constrained by
every input (POSEIDON_MODEL): what circheck judges is how our templates use the hash, not the
hash, which is circomlib's (pinned) and held to the Python reference by
tests/encode/test_poseidon.py.
circheck's command line exits 0 whatever it finds; this reads its findings and exits 1 on any
that circuits/circheck-explained.json does not explain (each with its reason; docs/testing.md
summarises them), and on an analysis that did not finish.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from vbill import paths
from vbill.zk import circuits

EXPLAINED = paths.CIRCUITS / "circheck-explained.json"
STACK = 1 << 28
RECURSION = 100_000
POSEIDON_MODEL = """pragma circom 2.0.0;

// Analysis model of circomlib's Poseidon(nInputs) for circheck (vbill_tools/lint_circuits.py).
template Poseidon(nInputs) {
    signal input inputs[nInputs];
    signal output out;
    signal acc[nInputs + 1];
    acc[0] <== 0;
    for (var i = 0; i < nInputs; i++) {
        acc[i + 1] <== (acc[i] + inputs[i]) * (acc[i] + inputs[i]);
    }
    out <== acc[nInputs];
}
"""


def _circheck_modules() -> tuple[Any, Any]:
    """circheck's analysis and report writer, with the recursion limit its modules lower."""
    import circheck
    from circheck import core

    base = Path(circheck.__file__).resolve().parent
    for sub in ("parser", "astgen", "typecheck", "utils", "cdggen", "detect", "target"):
        if str(base / sub) not in sys.path:
            sys.path.append(str(base / sub))
    import ASTGeneration  # noqa: F401  (sets sys.setrecursionlimit(5000) on import)
    import Detect  # noqa: F401  (likewise)

    sys.setrecursionlimit(RECURSION)
    return core.detect, core.report_to_file


def analyse(main: Path, report: Path) -> dict[str, Any] | None:
    """circheck's findings for one main file (graph -> kind -> location -> messages), or None
    when it could not analyse it."""
    detect, report_to_file = _circheck_modules()
    out: dict[str, Any] = {}

    def run() -> None:
        graphs, reports = detect(str(main))
        if graphs and reports:
            report_to_file(graphs, reports, str(report))
            out["findings"] = json.loads(report.read_text())

    threading.stack_size(STACK)
    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    findings: dict[str, Any] | None = out.get("findings")
    return findings


def findings_of(name: str, scratch: Path) -> dict[str, str] | None:
    """Each finding as `kind | file | message` (the key circheck-explained.json uses, stable
    when lines move) -> where it is (`file:line:col`), paths relative to circuits/."""
    main = scratch / circuits.main_file(name, paths.CIRCUITS).relative_to(paths.CIRCUITS)
    found = analyse(main, scratch / f"{name}.circheck.json")
    if found is None:
        return None
    lines: dict[str, str] = {}
    for kinds in found.values():
        for kind, places in kinds.items():
            for place, messages in places.items():
                where = os.path.relpath(place, scratch)
                for message in messages:
                    lines[f"{kind} | {where.split(':')[0]} | {message}"] = where
    return dict(sorted(lines.items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vbill_tools.lint_circuits", description=__doc__)
    p.add_argument("bindings", nargs="*", help="circuits.json keys (default: all)")
    p.add_argument("--explained", type=Path, default=EXPLAINED, help="finding -> reason (JSON)")
    args = p.parse_args(argv)
    names = args.bindings or list(circuits.declared(paths.CIRCUITS))
    explained: dict[str, str] = json.loads(args.explained.read_text())
    failed = False
    with tempfile.TemporaryDirectory(prefix="vbill-circheck-") as tmp:
        scratch = Path(tmp) / "circuits"
        shutil.copytree(paths.CIRCUITS, scratch)
        lib = scratch / "circomlib" / "circuits"
        lib.mkdir(parents=True)
        for source in (paths.NODE_MODULES / "circomlib" / "circuits").glob("*.circom"):
            (lib / source.name).symlink_to(source)
        (lib / "poseidon.circom").unlink()
        (lib / "poseidon.circom").write_text(POSEIDON_MODEL)
        for name in names:
            lines = findings_of(name, scratch)
            if lines is None:
                print(f"lint-circuits: {name}: circheck could not analyse it (see above)")
                failed = True
                continue
            new = [f"{where}: {key}" for key, where in lines.items() if key not in explained]
            print(f"lint-circuits: {name}: {len(lines)} finding(s), {len(new)} not explained")
            for line in new:
                print(f"  {line}")
            failed |= bool(new)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
