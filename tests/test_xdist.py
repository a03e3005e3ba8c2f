"""The suite under pytest-xdist (``-n N``): one report, digest and JUnit file, made by the controller from the
records the workers send, with the same statuses as a run without ``-n`` on the same seed (conformance/plugin.py:
the suite's tests run as one scope on one worker; each test's record travels with its report)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.contract.findings import Finding
from conformance.plugin import SUITE_MODULES, suite_scope
from conformance.report import TestRecord

pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[1]
MUTANT = ROOT / "tests" / "mutants" / "mutant.py"
IRIS = ROOT / "examples" / "iris"
IRIS_ORACLE = f"python:{IRIS / 'reference.py'}:answer"

#: Candidates whose reports must not move under -n: the reference; mutants that exercise what the suite's tests
#: share (the hang detector and its not-checked reasons, the golden batch and the multiplier check, kept
#: workspaces, a SHOULD-only finding under strict, a batch that stops at the first bad request); the iris
#: variants that B-DETERMINISTIC and B-INDEPENDENT catch by comparing lone and batched runs of the good requests.
CASES = {
    "reference": ([f"--predictor-cmd={sys.executable} {ROOT / 'predictor' / 'reference.py'}"], {}),
    "hangs": ([f"--predictor-cmd={sys.executable} {MUTANT} hangs", "--run-timeout=3"], {}),
    "hardcoded-multiplier": ([f"--predictor-cmd={sys.executable} {MUTANT} hardcoded-multiplier"], {}),
    "writes-input": ([f"--predictor-cmd={sys.executable} {MUTANT} writes-input"], {}),
    "stops-at-first-error": ([f"--predictor-cmd={sys.executable} {MUTANT} stops-at-first-error"], {}),
    "daemonises+strict": ([f"--predictor-cmd={sys.executable} {MUTANT} daemonises", "--conformance-strict"], {}),
    "iris-nondeterministic": ([f"--predictor-cmd={sys.executable} {IRIS / 'predictor.py'}",
                               f"--model={IRIS / 'model'}", "--oracle=signature"], {"IRIS_VARIANT": "nondeterministic"}),
    "iris-batch-mean": ([f"--predictor-cmd={sys.executable} {IRIS / 'predictor.py'}", f"--model={IRIS / 'model'}",
                         f"--oracle={IRIS_ORACLE}"], {"IRIS_VARIANT": "batch-mean"}),
}


def suite(tmp: Path, options: list[str], env: dict[str, str], *extra: str) -> tuple[int, dict | None, ElementTree.Element | None, str]:
    """The suite (dev profile, seed 1) on ``options``; (exit status, report, JUnit root, output)."""
    tmp.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q", *options,
         "--conformance-profile=dev", "--hypothesis-seed=1", f"--conformance-report={tmp / 'report.json'}",
         f"--junitxml={tmp / 'junit.xml'}", f"--workspace-dir={tmp}", *extra],
        cwd=tmp, capture_output=True, text=True, timeout=600, env={**__import__("os").environ, **env})
    report = json.loads((tmp / "report.json").read_text()) if (tmp / "report.json").is_file() else None
    junit = ElementTree.parse(tmp / "junit.xml").getroot() if (tmp / "junit.xml").is_file() else None
    return done.returncode, report, junit, done.stdout + done.stderr


def verdict(report: dict) -> dict:
    """What must be the same with and without -n: every requirement's status (and failed level), the tests that
    checked it, the run's status, summary and how many times the candidate ran."""
    return {"status": report["status"], "summary": report["summary"], "completed": report["completed"],
            "runs": report["stats"]["predictor_runs"], "generated": report["stats"]["generated_requests"],
            "requirements": [(r["id"], r["status"], r.get("failed_level"), r["tests"]) for r in report["requirements"]]}


def global_properties(junit: ElementTree.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in junit.iter("property")
            if p.get("name", "") == "conformance_status" or p.get("name", "").startswith("requirement ")}


def digest(output: str) -> list[str]:
    """The digest's lines about the requirements (ID and status: a finding may quote a pid or a value that
    differs run to run) and its verdict line."""
    lines = output[output.index("odahu conformance"):].splitlines()[1:]
    return [line.split(":", 1)[0] if re.match(r"^[A-Z]-[A-Z0-9-]+ ", line) else line for line in lines
            if re.match(r"^[A-Z]-[A-Z0-9-]+ |^(PASSED|FAILED|INCOMPLETE|NOTHING)", line)]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_report_is_the_same_with_and_without_n(tmp_path, case):
    options, env = CASES[case]
    if case.startswith("iris"):
        pytest.importorskip("sklearn", reason="the iris example needs scikit-learn (pip install -e '.[dev]')")
    with ThreadPoolExecutor(2) as pool:
        alone, spread = pool.map(lambda run: suite(tmp_path / run[0], options, env, *run[1]),
                                 [("serial", ()), ("xdist", ("-n", "2"))])
    (status, report, junit, output), (x_status, x_report, x_junit, x_output) = alone, spread
    assert report is not None and x_report is not None, (output[-2000:], x_output[-2000:])
    assert x_status == status, (output[-2000:], x_output[-2000:])
    assert verdict(x_report) == verdict(report), x_output[-3000:]
    assert "bringing up nodes" in x_output or "created: 2/2 workers" in x_output, x_output[-2000:]  # (really -n 2)
    assert junit is not None and x_junit is not None
    assert global_properties(x_junit) == global_properties(junit) != {}
    assert digest(x_output) == digest(output) != []
    assert x_output.count("odahu conformance") == 1  # one digest, the controller's


def test_a_record_travels_as_plain_data_and_back():
    record = TestRecord("conformance/suite/test_golden.py::test_golden_run", {"M-VALUE", "F-JSON"}, "failed",
                        [Finding("M-VALUE", "a.json", "/outputs/0/data/1", "expected 4, got 5")], {"F-JSON"},
                        {"M-EVERY": "no response"}, {"B-MATCH": "the multiplier model"}, None, None, "python3 x.py")
    wire = record.to_wire()
    assert json.loads(json.dumps(wire)) == wire  # plain data: what pytest-xdist can send
    assert TestRecord.from_wire(wire) == record


def test_the_suite_s_tests_are_known_by_their_ids():
    assert {"test_golden.py", "test_behaviour.py", "test_property.py"} <= SUITE_MODULES
    assert suite_scope("conformance/suite/test_golden.py::test_golden_run")
    assert suite_scope("test_behaviour.py::test_same_request_same_response")  # --pyargs from the suite's folder
    assert suite_scope("../../lib/python3.11/site-packages/conformance/suite/test_property.py::test_x[1]")
    assert not suite_scope("tests/test_golden.py::test_golden_run")  # a project's own test of that name
    assert not suite_scope("tests/test_goldens.py::test_x")


@pytest.mark.slow
def test_a_candidate_that_cannot_start_stops_the_run_once_with_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q", "-n", "2",
         "--predictor-cmd=no-such-predictor-program"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert lines == ["ERROR: odahu-conformance: the candidate cannot start: cannot start 'no-such-predictor-program': "
                     "command not found"], lines


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["loadfile", "each"])
def test_a_distribution_that_would_split_or_repeat_the_suite_is_refused(tmp_path, dist):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q", "-n", "2",
         "--dist", dist, f"--predictor-cmd={sys.executable} {ROOT / 'predictor' / 'reference.py'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stdout + done.stderr
    assert (done.stdout + done.stderr).strip().splitlines() == [
        f"ERROR: odahu-conformance: --dist {dist} would split or repeat the conformance suite's tests across workers: "
        "use -n N with the default --dist load (or loadgroup)"]


@pytest.mark.slow
def test_beside_other_tests_the_verdict_is_the_suite_s_alone_and_said_once(tmp_path):
    """The controller knows the suite's tests from the records the workers send: the verdict line says it covers
    the suite alone and counts the other failing test, as without -n."""
    (tmp_path / "test_other.py").write_text("def test_other_fails():\n    assert False\n\n"
                                            "def test_other_passes():\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "test_other.py",
         str(ROOT / "conformance" / "suite"), "--rootdir", str(tmp_path),
         f"--predictor-cmd={sys.executable} {ROOT / 'predictor' / 'reference.py'}", "--conformance-profile=dev"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    verdicts = [line for line in out.splitlines() if line.startswith(("PASSED:", "FAILED:", "INCOMPLETE:"))]
    assert len(verdicts) == 1 and verdicts[0].startswith("PASSED: ") and verdicts[0].endswith(
        " skipped (the conformance suite alone; 1 other test failed)"), out[-3000:]


def test_run_n_without_pytest_xdist_is_one_line(monkeypatch, capsys, tmp_path):
    import importlib.util

    from conformance import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "xdist" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--cmd", "true", "-n", "2"]) == 2
    assert capsys.readouterr().err == "odahu-conformance: -n: pytest-xdist is not installed (pip install pytest-xdist)\n"


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("0", "0"), ("3", "3")])
def test_run_n_takes_a_count_or_auto(value, expected):
    from conformance import arguments

    assert arguments.workers(value) == expected
    with pytest.raises(arguments.ArgumentProblem):
        arguments.workers("-1")
