"""circuits/circuits.json: the one list of bindings' circuits, read by the Makefile and setup.

Each entry, keyed by its circuit name, declares the circuit (`file`: its main component is
circuits/main/<file>.circom, its template circuits/<file>.circom; `template`, `pubs`,
`binding_version`, `ptau_power`) and the names of its artefacts that are not derived from the
key: `vkey` (build/vkey.json for v1, build/vkey-v2.json for v2) and `tag`, the short name of
the binding's own Makefile variables and files (`PTAU_V2`, `setup-v2`, `build/.v2-setup-*`,
`build/zkey-verify-v2.log`; empty for v1, whose names came first). A new binding is one entry
here plus its files (template and main): the Makefile generates every rule from this list.

Stdlib only and runnable by path: the Makefile calls `python3 orchestrator/vbill/zk/circuits.py`
before `make install` has made the venv.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

CIRCUITS = Path(__file__).resolve().parents[3] / "circuits"
# Fields that only name artefacts: renaming a file is not a new ceremony, so they are left out
# of what the setup and the manifest are keyed by.
NAMING_FIELDS = ("tag", "vkey")
_INCLUDE = re.compile(r'^\s*include\s+"(\.\.?/[A-Za-z0-9_/]+\.circom)"\s*;', re.MULTILINE)


def declared(circuits_dir: Path = CIRCUITS) -> dict[str, dict[str, object]]:
    """Every binding's entry, in file order (the first is the manifest's top level)."""
    entries: dict[str, dict[str, object]] = json.loads((circuits_dir / "circuits.json").read_text())
    return entries


def keyed_entry(name: str, circuits_dir: Path = CIRCUITS) -> str:
    """The entry's fields the artefacts are a function of, as canonical JSON."""
    entry = declared(circuits_dir)[name]
    return json.dumps({k: v for k, v in entry.items() if k not in NAMING_FIELDS}, sort_keys=True)


def main_file(name: str, circuits_dir: Path = CIRCUITS) -> Path:
    """The file holding the binding's `component main`, the one circom compiles: its own file
    in circuits/main/ (as circomkit and semaphore lay them out), including the shared
    templates of circuits/."""
    return circuits_dir / "main" / f"{declared(circuits_dir)[name]['file']}.circom"


def sources(name: str, circuits_dir: Path = CIRCUITS) -> list[Path]:
    """The binding's own circuit sources: its main file and every local file it includes,
    transitively, sorted by path; circomlib is pinned by the toolchain versions instead."""
    seen: set[Path] = set()
    todo = [main_file(name, circuits_dir).resolve()]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += [(path.parent / inc).resolve() for inc in _INCLUDE.findall(path.read_text())]
    return sorted(seen)


def setup_key(name: str, params: str, circuits_dir: Path = CIRCUITS) -> str:
    """The Makefile's stamp key: sources, the keyed entry, then `params` (tool versions, ptau,
    beacons), one line each; the same bytes `{ cat SRCS; echo ENTRY; echo PARAMS; }` gives."""
    h = hashlib.sha256()
    for path in sources(name, circuits_dir):
        h.update(path.read_bytes())
    h.update(f"{keyed_entry(name, circuits_dir)}\n{params}\n".encode())
    return h.hexdigest()[:16]


def dev_power(circuits_dir: Path = CIRCUITS) -> int:
    """The power of the one dev phase-1 ceremony every binding shares: the largest any binding
    needs. A beacon-only phase 1 draws tau from the beacon alone, so a smaller binding's keys
    from it differ from a ceremony at its own power only in the zkey's H points (read from a
    larger Lagrange basis); its vkey is byte-identical, so bundles keep verifying, and CI runs
    one `prepare phase2` instead of one per power."""
    return max(int(str(e["ptau_power"])) for e in declared(circuits_dir).values())


def _make_info(name: str, circuits_dir: Path) -> str:
    """`file power vkey tag|- PTAU-variable binding-version main-file`, one word each, for the
    Makefile."""
    entry = declared(circuits_dir)[name]
    tag = str(entry.get("tag", ""))
    ptau_var = f"PTAU_{tag.upper()}" if tag else "PTAU"
    fields = (entry["file"], entry["ptau_power"], entry["vkey"], tag or "-", ptau_var)
    main = main_file(name, circuits_dir).relative_to(circuits_dir.parent)
    return " ".join(map(str, (*fields, entry["binding_version"], main)))


def main(argv: list[str]) -> int:
    """The Makefile's queries, about ./circuits (make runs in the repository root)."""
    here = Path("circuits").resolve()
    match argv:
        case ["names"]:
            print(*declared(here))
        case ["info", name]:
            print(_make_info(name, here))
        case ["key", name, params]:
            print(setup_key(name, params, here))
        case ["dev-power"]:
            print(dev_power(here))
        case ["sources", name]:
            print(*(p.relative_to(here.parent) for p in sources(name, here)))
        case _:
            print(
                "usage: circuits.py names | info NAME | key NAME PARAMS | sources NAME | dev-power"
            )
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
