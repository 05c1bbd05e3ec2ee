"""`make mutants` decides pass or fail on its reports: these pin how it judges each status.

A survivor or an error without a written reason fails the run; a timeout is a kill (the
plugin confirmed it against the unmutated selection); an explanation matches by the mutated
line's text and the mutation, so it keeps matching when other lines move.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vbill_tools import mutants


def _report(tmp_path: Path, *statuses: str) -> dict:
    results = [
        {
            "file_path": str(tmp_path / "translog.py"),  # the report's line_text is what counts
            "line_number": 1,
            "status": status,
            "description": f"mutation {i}",
            "line_text": "if size < 0:",
            "error_output": "selection fails to load" if status == "error" else "",
        }
        for i, status in enumerate(statuses)
    ]
    count = {s: statuses.count(s) for s in ("zapped", "survived", "timeout", "error")}
    return {"summary": {"total": len(statuses), **count}, "results": results}


def test_survivors_and_errors_need_a_reason_and_timeouts_count_as_kills(tmp_path, capsys):
    report = _report(tmp_path, "zapped", "timeout", "survived", "error")
    unexplained = mutants.summarise("translog", report, explained={})
    assert unexplained == [
        "translog.py:1 'mutation 2' in `if size < 0:`",
        "translog.py:1 'mutation 3' in `if size < 0:`",
    ]
    out = capsys.readouterr().out
    assert "1 killed    1 killed by timeout    1 survived    1 error" in out
    assert "selection fails to load" in out  # an unexplained error shows why it judged nothing


def test_an_explanation_matches_by_line_text_and_mutation_not_line_number(tmp_path, capsys):
    report = _report(tmp_path, "survived", "error")
    report["results"][0]["line_number"] = 40  # the line moved; its text did not
    explained = {
        ("translog.py", "if size < 0:", "mutation 0"): "equivalent: reason",
        ("translog.py", "if size < 0:", "mutation 1"): "collects only with: reason",
    }
    assert mutants.summarise("translog", report, explained) == []
    assert capsys.readouterr().out.count("UNEXPLAINED") == 0
    other = {("translog.py", "if size < 0:", "another mutation"): "reason"}
    assert len(mutants.summarise("translog", report, other)) == 2


def test_report_only_fails_on_an_unexplained_survivor_and_passes_once_it_is_explained(
    tmp_path, monkeypatch
):
    out = tmp_path / "mutants"
    out.mkdir()
    (out / "translog.json").write_text(json.dumps(_report(tmp_path, "zapped", "survived")))
    explained = tmp_path / "explained.json"
    monkeypatch.setattr(mutants, "OUT", out)
    monkeypatch.setattr(mutants, "EXPLAINED", tmp_path / "none.json")
    assert mutants.main(["--only", "translog", "--report-only"]) == 1
    entry = {"file": "translog.py", "line": "if size < 0:", "mutation": "mutation 1"}
    explained.write_text(json.dumps([{**entry, "reason": "equivalent: reason"}]))
    monkeypatch.setattr(mutants, "EXPLAINED", explained)
    assert mutants.main(["--only", "translog", "--report-only"]) == 0


def test_every_written_reason_names_a_listed_module_and_says_something():
    entries = json.loads(mutants.EXPLAINED.read_text())
    modules = {Path(t.source).name for t in mutants.TARGETS.values()}
    for e in entries:
        assert set(e) == {"file", "line", "mutation", "reason"}, e
        assert e["file"] in modules, e
        assert len(e["reason"]) > 40, e  # a reason, not a placeholder
    keys = [(e["file"], e["line"], e["mutation"]) for e in entries]
    assert len(keys) == len(set(keys)), "one reason per mutant"


def test_an_unknown_module_is_refused_by_name():
    with pytest.raises(SystemExit):
        mutants.main(["--only", "stor", "--report-only"])


SOURCE = """\
import dataclasses

LIMIT = 3


@dataclasses.dataclass(
    frozen=True,
)
class Charge:
    micros: int

    @property
    def is_eth(self) -> bool:
        return True


def helper(x):
    def inner(y):
        return y
    return inner(x)
"""


def test_each_line_belongs_to_its_innermost_definition_decorators_included():
    owners = mutants.definitions_by_line(SOURCE)
    lines = SOURCE.splitlines()
    where = {lines[n - 1].strip(): owner for n, owner in owners.items()}
    assert "LIMIT = 3" not in where  # module level: no definition
    assert where["frozen=True,"] == "Charge"  # a decorator's lines are its class's
    assert where["micros: int"] == "Charge"
    assert where["@property"] == "Charge.is_eth"
    assert where["return True"] == "Charge.is_eth"
    assert where["return y"] == "helper.inner"
    assert where["return inner(x)"] == "helper"


def test_a_scope_counts_named_definitions_and_what_they_enclose_only():
    scope = ("Store._insert", "helper")
    assert mutants.in_scope("Store._insert", scope)
    assert mutants.in_scope("helper.inner", scope)  # enclosed by a named one
    assert not mutants.in_scope("Store", scope)  # the class itself is not its method
    assert not mutants.in_scope("Store._insert_many", scope)  # a prefix of text is not a name
    assert not mutants.in_scope("<module>", scope)
    assert mutants.in_scope("<module>", ())  # no scope: the whole file


def test_survivors_outside_the_scope_are_counted_but_never_fail_the_run(tmp_path, capsys):
    report = _report(tmp_path, "survived", "survived", "zapped")
    for r, definition in zip(
        report["results"], ("Store.tokens", "Store._insert", "Store._insert"), strict=True
    ):
        r["definition"] = definition
    unexplained = mutants.summarise("store", report, {}, scope=("Store._insert",))
    assert unexplained == ["translog.py:1 'mutation 1' in `if size < 0:`"]
    out = capsys.readouterr().out
    assert "in scope (1 definitions): 2 mutants, 1 survived" in out
    assert "outside it: 1 mutants, 1 survived or errored" in out
    # a report without definitions (written before scopes) judges nothing a scope excludes
    del report["results"][1]["definition"]
    assert mutants.summarise("store", report, {}, scope=("Store._insert",)) == []


def test_every_scoped_name_is_a_definition_of_its_module():
    """A renamed function would silently drop out of the scope; name it here instead."""
    for name, target in mutants.TARGETS.items():
        defined = set(
            mutants.definitions_by_line((mutants.paths.ROOT / target.source).read_text()).values()
        )
        missing = set(target.scope) - defined
        assert not missing, f"{name}: {sorted(missing)} not defined in {target.source}"


CALC = """\
def guarded(x):
    if x > 10:
        return x - 10
    return x


def unguarded(x):
    return x * 2 + 1
"""

CALC_TESTS = """\
from calc import guarded, unguarded


def test_calc():
    assert guarded(11) == 1 and guarded(3) == 3 and unguarded(2) == 5
"""


def test_a_scoped_run_of_pytest_gremlins_mutates_the_scoped_lines_only(tmp_path):
    """The real plugin on a two-function module: scoped to one, the other is never mutated."""
    (tmp_path / "calc.py").write_text(CALC)
    (tmp_path / "test_calc.py").write_text(CALC_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    owners = mutants.definitions_by_line(CALC)
    lines = {n for n, d in owners.items() if mutants.in_scope(d, ("guarded",))}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(mutants.paths.ROOT / "orchestrator")]),
        mutants.gremlin_scope.ENV: f"{tmp_path / 'calc.py'}:{mutants.gremlin_scope.spans(lines)}",
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "vbill_tools.gremlin_scope", "test_calc.py", "--gremlins"]
    cmd += ["--gremlin-targets=calc.py", "--gremlin-report=json", "--gremlin-operators=arithmetic"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    report_file = tmp_path / "coverage" / "gremlins" / "gremlins.json"
    assert report_file.exists(), run.stdout[-2000:] + run.stderr[-2000:]
    mutated = {r["line_number"] for r in json.loads(report_file.read_text())["results"]}
    assert mutated and mutated <= {1, 2, 3, 4}, mutated  # guarded's lines only
    assert 3 in mutated  # its arithmetic, the only operator this run uses
    del env[mutants.gremlin_scope.ENV]  # unscoped, the same run mutates unguarded too
    subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=300)
    unscoped = {r["line_number"] for r in json.loads(report_file.read_text())["results"]}
    assert 8 in unscoped and mutated < unscoped


def test_line_spans_round_trip():
    lines = {1, 2, 3, 7, 9, 10}
    assert mutants.gremlin_scope.spans(lines) == "1-3,7-7,9-10"
    assert mutants.gremlin_scope.parse("/x/store.py:" + "1-3,7-7,9-10") == (
        Path("/x/store.py"),
        lines,
    )
