"""The pytest plugin in-process (pytester): usage errors, exit statuses, the report file and an interrupted run.

Each test runs ``pytest --pyargs conformance.suite`` inside this process with a narrow selection, so it takes a
second or two; the subprocess runs elsewhere (tests/test_mutants.py) show the same through a real command line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# Imported here, so that pytester's in-process runs (which drop the modules they import when they end) share one
# copy of them: otherwise a second run mixes hypothesis classes from two imports.
import conformance.generate.strategies  # noqa: F401
import conformance.judge  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "predictor" / "reference.py"
MUTANT = ROOT / "tests" / "mutants" / "mutant.py"


def suite(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--pyargs", "conformance.suite", "-p", "no:cacheprovider",
                              "--workspace-dir", str(pytester.path), *args, no_reraise_ctrlc=True)


def test_in_a_checkout_no_candidate_option_means_the_reference_and_the_summary_says_so(pytester):
    """(Outside a checkout, no candidate is a usage error: tests/test_installed_kit.py.)"""
    result = suite(pytester, "-m", "P-EXIT and protocol")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["candidate: cmd * (the kit's reference predictor: no candidate option was given)"])


@pytest.mark.parametrize("option", ["--predictor-cmd", "--conformance-predictor-cmd", "--predictor-image"])
def test_a_blank_candidate_is_a_usage_error(pytester, option):
    result = suite(pytester, option, "  ")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is empty" in result.stderr.str()


def test_a_candidate_that_cannot_start_is_a_usage_error(pytester):
    result = suite(pytester, "--predictor-cmd", str(pytester.path / "missing-predictor"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot start" in result.stderr.str() and "PASSED" not in result.stdout.str()


def test_a_passing_run_writes_its_report_and_exits_0(pytester):
    report = pytester.path / "out" / "report.json"
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {REFERENCE}", "-m", "P-EXIT",
                   "--conformance-report", str(report))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    made = json.loads(report.read_text())
    assert made["status"] == "passed" and made["completed"] is True
    assert {r["id"]: r["status"] for r in made["requirements"]}["P-EXIT"] == "passed"
    assert (pytester.path / "out" / "report.md").read_text().startswith("# Conformance report: PASSED")
    result.stdout.fnmatch_lines(["*PASSED: * requirements passed*"])


def test_a_run_where_the_candidate_never_ran_is_not_passed_and_exits_5(pytester):
    """``-m manifest`` checks the kit's files only (the candidate, /bin/false, never runs): no verdict about the
    candidate, one line saying so last, pytest's "no tests ran" status, the report not passed."""
    report = pytester.path / "r.json"
    result = suite(pytester, "--predictor-cmd", "/bin/false", "-m", "manifest", "--conformance-report", str(report))
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    assert result.stdout.lines[-2] == ("NOTHING CHECKED, NOT PASSED: the candidate never ran (only the kit's files "
                                       "were checked: 4 K-* requirements passed); exit status 5")
    assert "4 passed" in result.stdout.lines[-1]  # pytest's totals, last
    assert "PASSED:" not in result.stdout.str().replace("NOT PASSED:", "")
    made = json.loads(report.read_text())
    assert made["status"] == "nothing-checked" and made["stats"]["predictor_runs"] == 0
    assert (pytester.path / "r.md").read_text().startswith("# Conformance report: NOTHING CHECKED")


def test_a_failing_candidate_exits_1_and_names_the_requirement(pytester):
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {MUTANT} exit-one", "-m", "P-EXIT",
                   "--conformance-report", str(pytester.path / "r.json"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["P-EXIT * FAILED (MUST): *exit status 1*", "* reproduce: env ODAHU_MODEL_PATH=*",
                                 "FAILED: *"])
    # the digest is the last screen: after pytest's failure blocks and its short test summary, before only
    # pytest's own totals line
    assert result.stdout.lines[-2].startswith("FAILED: ") and " failed, " in result.stdout.lines[-1]
    assert result.stdout.str().rindex("short test summary info") < result.stdout.str().rindex("odahu conformance")


@pytest.mark.parametrize("verbosity", [["-q"], [], ["-v"], ["-qq"]])
def test_pytests_totals_stay_last_beside_the_projects_own_tests(pytester, verbosity):
    """The suite passes beside a failing ordinary test (a project's own tests run with the suite): pytest's totals
    line, which counts the failure, is the last line in every verbosity; under ``-qq``, which prints no totals, the
    suite's verdict line says it covers the suite alone and that another test failed."""
    pytester.makepyfile(test_other="def test_broken():\n    assert False\n\n\ndef test_fine():\n    pass\n")
    result = suite(pytester, "test_other.py", "--predictor-cmd", f"{sys.executable} {REFERENCE}",
                   "-k", "empty_input_folder or test_broken or test_fine", *verbosity)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    lines = result.stdout.lines
    verdict = next(line for line in lines if line.startswith("PASSED: "))
    assert verdict.endswith(" skipped (the conformance suite alone; 1 other test failed)"), verdict
    if verbosity == ["-qq"]:
        assert lines[-1] == verdict
    else:
        assert "1 failed, 2 passed" in lines[-1], lines[-3:]
        assert lines.index(verdict) == len(lines) - 2


ORACLES = """
import time


def raises(request, model):
    raise RuntimeError("the reference is broken")


def sleeps(request, model):
    time.sleep(600)


def exits(request, model):
    raise SystemExit(3)
"""


@pytest.mark.parametrize("function, says", [
    ("raises", "broken_oracle.py:raises failed on a.json: RuntimeError: the reference is broken"),
    ("sleeps", "broken_oracle.py:sleeps took longer than 0.5 s on a.json (--oracle-timeout)"),
    ("exits", "broken_oracle.py:exits called sys.exit(3) on a.json"),
])
def test_a_broken_oracle_stops_the_run_with_one_line_and_exit_2(pytester, function, says):
    """An oracle that raises or hangs is the kit's setup's problem, not the candidate's: the run stops at the first
    call (within --oracle-timeout), one line names the oracle and what went wrong, pytest exits 2 (the run was
    stopped), and the report is incomplete with that line; never a list of MUST requirements that 'broke'."""
    oracle = pytester.path / "broken_oracle.py"
    oracle.write_text(ORACLES)
    report = pytester.path / "r.json"
    result = suite(pytester, "--predictor-cmd", "/bin/true", "--model", str(ROOT / "examples" / "iris" / "model"),
                   "--oracle", f"python:{oracle}:{function}", "--oracle-timeout", "0.5",
                   "--conformance-report", str(report))
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED == 2, out
    verdict = [line for line in result.stdout.lines if line.startswith("NOT A VERDICT: ")]
    assert len(verdict) == 1 and verdict[0].endswith(f"{says}; exit status 2"), out
    assert "the oracle broke, so the run stops" in verdict[0]
    assert "broke: OracleProblem" not in out and "NOT CHECKED" not in out and "Traceback" not in out
    assert "1 failed" in result.stdout.lines[-1]  # the first test only; pytest's totals last
    made = json.loads(report.read_text())
    assert made["status"] == "incomplete" and says in made["kit_problem"]
    assert says in (pytester.path / "r.md").read_text()


def test_an_oracle_timeout_must_be_positive(pytester):
    result = suite(pytester, "--predictor-cmd", "/bin/true", "--model", str(ROOT / "examples" / "iris" / "model"),
                   "--oracle", "signature", "--oracle-timeout", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--oracle-timeout: must be a positive number of seconds, got 0" in result.stderr.str()


def test_an_interrupted_run_is_incomplete_never_passed(pytester):
    """Ctrl-C after the first test: exit status 2, the report says incomplete, the console INCOMPLETE."""
    pytester.makepyfile(interrupt="""
        calls = []
        def pytest_runtest_teardown(item):
            calls.append(item)
            if len(calls) == 1:
                raise KeyboardInterrupt
    """)
    pytester.syspathinsert()
    report = pytester.path / "r.json"
    result = suite(pytester, "-p", "interrupt", "--predictor-cmd", f"{sys.executable} {REFERENCE}", "-m", "protocol",
                   "--conformance-report", str(report))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    made = json.loads(report.read_text())
    assert made["completed"] is False and made["status"] == "incomplete"
    assert "PASSED" not in (pytester.path / "r.md").read_text().splitlines()[0]
    result.stdout.fnmatch_lines(["INCOMPLETE: *"])


def test_requirement_markers_take_the_ids_as_spelled(pytester):
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {REFERENCE}", "-m", "P-CONFIG", "--co", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert "test_unusable_model" in result.stdout.str()


def test_importing_the_plugin_loads_nothing_heavy(pytester):
    result = pytester.runpython_c(
        "import sys, conformance.plugin; "
        "print(sorted(m for m in ('numpy', 'jsonschema', 'simdjson', 'orjson', 'deepdiff', 'yaml') if m in sys.modules))")
    assert result.stdout.lines[-1] == "[]"


@pytest.mark.slow
def test_a_long_run_says_so_while_it_runs(pytester):
    """A predictor run past 5 s prints one line with its elapsed time and timeout, even under output capture."""
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {MUTANT} hangs", "-k", "golden_run",
                   "--run-timeout", "6")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["odahu-conformance: predictor run 1: still running after 5 s (timeout 6 s)"])


def test_a_baseline_of_known_failures_lets_the_gate_be_adopted_gradually(pytester):
    """Record today's failures; with that baseline the same candidate passes; a new failure still fails; a known
    failure that no longer occurs is named so the baseline shrinks."""
    baseline = pytester.path / "known.json"
    failing = ["--predictor-cmd", f"{sys.executable} {MUTANT} exit-one", "-m", "P-EXIT and protocol"]
    first = suite(pytester, *failing, "--write-baseline", str(baseline))
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    assert json.loads(baseline.read_text()) == {"known_failures": [{"id": "P-EXIT", "files": ["(run)"]}]}
    again = suite(pytester, *failing, "--conformance-baseline", str(baseline), "--conformance-report",
                  str(pytester.path / "r.json"))
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    made = json.loads((pytester.path / "r.json").read_text())
    row = {r["id"]: r for r in made["requirements"]}["P-EXIT"]
    assert row["status"] == "failed" and row["baselined"] is True and made["status"] == "passed"
    again.stdout.fnmatch_lines(["P-EXIT * KNOWN (MUST, in the baseline): *"])
    # a failure the baseline does not know still fails the run
    baseline.write_text(json.dumps({"known_failures": [{"id": "F-ID"}]}))
    assert suite(pytester, *failing, "--baseline", str(baseline)).ret == pytest.ExitCode.TESTS_FAILED
    # fixed: the reference passes, and the stale entry is named
    baseline.write_text(json.dumps({"known_failures": [{"id": "P-EXIT"}]}))
    fixed = suite(pytester, "--predictor-cmd", f"{sys.executable} {REFERENCE}", "-m", "P-EXIT and protocol",
                  "--baseline", str(baseline))
    assert fixed.ret == pytest.ExitCode.OK
    fixed.stdout.fnmatch_lines(["no longer failing, remove from the baseline *: P-EXIT"])


@pytest.mark.parametrize("content", ["not json", '{"known_failures": [{"id": "X-NOPE"}]}', "[]"])
def test_an_unusable_baseline_is_one_usage_error_line(pytester, content):
    (pytester.path / "known.json").write_text(content)
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {REFERENCE}", "--baseline",
                   str(pytester.path / "known.json"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "known.json" in result.stderr.str() and "Traceback" not in result.stderr.str()


BLANK = "is blank: give a path (a blank value, e.g. an unset variable, would mean the current folder)"
TOO_SHORT = "must be at least 1 s (a predictor needs time to start)"
BAD_OPTIONS = {
    # a blank path is refused, never read as the current folder
    **{f"blank {flag}": ([flag, ""], f"{flag}: {BLANK}")
       for flag in ("--model", "--fixtures-dir", "--signature", "--service-manifest", "--baseline",
                    "--write-baseline", "--workspace-dir", "--conformance-report")},
    "blank --conformance-model": (["--conformance-model", " "], f"--model: {BLANK}"),
    # numbers: finite, in range
    "--keep-workspaces -1": (["--keep-workspaces", "-1"], "--keep-workspaces: must not be negative, got -1"),
    "--run-timeout inf": (["--run-timeout", "inf"], "--run-timeout: must be a finite number, got 'inf'"),
    "--run-timeout nan": (["--run-timeout", "nan"], "--run-timeout: must be a finite number, got 'nan'"),
    "--run-timeout 0": (["--run-timeout", "0"], f"--run-timeout: {TOO_SHORT}, got 0"),
    "--run-timeout 1e-9": (["--conformance-run-timeout", "1e-9"], f"--run-timeout: {TOO_SHORT}, got 1e-9"),
    "--rtol inf": (["--rtol", "inf"], "--rtol: must be a finite number, got 'inf'"),
    "--atol x": (["--atol", "x"], "--atol: expected a number, got 'x'"),
    # files and folders the run writes: made at most one folder deep
    "report two folders deep": (["--conformance-report", "missing/dir/r.json"],
                                "--conformance-report missing/dir/r.json: missing does not exist (only the last folder "
                                "of a path is made)"),
    "baseline two folders deep": (["--write-baseline", "missing/dir/b.json"],
                                  "--write-baseline missing/dir/b.json: missing does not exist (only the last folder "
                                  "of a path is made)"),
    # a path the system cannot look at (a name too long; a folder without search permission alike)
    "report name too long": (["--conformance-report", "x" * 300], "--conformance-report " + "x" * 300
                             + ": cannot look at it: File name too long"),
    "workspace dir name too long": (["--workspace-dir", "x" * 300 + "/ws"], f"--workspace-dir {'x' * 300}/ws: "
                                    f"cannot look at {'x' * 300}/ws: File name too long"),
    "workspace two folders deep": (["--workspace-dir", "missing/ws"],
                                   "--workspace-dir missing/ws: missing does not exist (only the last folder of a path "
                                   "is made)"),
}


@pytest.mark.parametrize("args,line", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_a_bad_option_value_is_one_usage_error_line_and_nothing_is_made(pytester, args, line):
    before = sorted(pytester.path.rglob("*"))
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {REFERENCE}", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().strip() == f"ERROR: odahu-conformance: {line}"
    assert sorted(pytester.path.rglob("*")) == before


def test_signature_is_refused_for_the_multiplier_not_ignored(pytester):
    signature = ROOT / "examples" / "iris" / "model" / "model-settings.json"
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {REFERENCE}", "--signature", str(signature))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().strip() == (
        f"ERROR: odahu-conformance: --signature {signature}: the multiplier's oracle takes any tensor and needs no "
        "signature; give --oracle signature to check this model by a signature only")


def test_the_report_and_workspace_folders_are_made_one_level_deep(pytester):
    """What the run writes goes in a folder that exists, or in one it makes there (never a chain of them)."""
    workspaces, report = pytester.path / "ws", pytester.path / "reports" / "r.json"
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {MUTANT} exit-one", "-m", "P-EXIT and protocol",
                   "--workspace-dir", str(workspaces), "--conformance-report", str(report))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    kept = sorted(workspaces.iterdir())  # the failed runs' workspaces
    assert report.is_file() and kept and all(p.name.startswith("odahu-conformance-") for p in kept)
