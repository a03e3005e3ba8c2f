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


def test_a_failing_candidate_exits_1_and_names_the_requirement(pytester):
    result = suite(pytester, "--predictor-cmd", f"{sys.executable} {MUTANT} exit-one", "-m", "P-EXIT",
                   "--conformance-report", str(pytester.path / "r.json"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["P-EXIT * FAILED (MUST): *exit status 1*", "* reproduce: env ODAHU_MODEL_PATH=*",
                                 "FAILED: *"])
    # the digest is the last screen: after pytest's failure blocks and its short test summary
    assert result.stdout.lines[-1].startswith("FAILED: ")
    assert result.stdout.str().rindex("short test summary info") < result.stdout.str().rindex("odahu conformance")


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
