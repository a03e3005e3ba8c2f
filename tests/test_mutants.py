"""The suite is only real if broken predictors fail it. Each mutant (tests/mutants/mutant.py) breaks one
requirement; the suite, run against it, must fail and its report must name that requirement. The reference
passes everything, also under --conformance-strict, with nothing skipped.

Every run is a real ``pytest --pyargs conformance.suite`` subprocess with a report, restricted to the tests that
matter for the mutant so that the whole file stays quick (two runs at a time).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.contract.requirements import REQUIREMENTS

sys.path.insert(0, str(Path(__file__).parent / "mutants"))
from mutant import MUTANTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MUTANT = Path(__file__).parent / "mutants" / "mutant.py"
REFERENCE = ROOT / "predictor" / "fast.py"

#: Which part of the suite each kind of mutant needs (the default: the golden pairs).
SELECTION = {
    "P-ENV": ["-k", "test_reads_the_operator_variables"],
    "P-OUTDIR": ["-k", "test_output_folder"],
    "P-EVERY": ["-k", "test_one_response_per_request"],
    "P-NAME": ["-k", "test_one_response_per_request"],
    "P-READONLY": ["-k", "test_input_and_model_unchanged"],
    "P-EXIT": ["-k", "test_empty_input_folder or test_golden_run"],
    "P-CONFIG": ["-k", "test_unusable_model"],
    "P-ISOLATE": ["-k", "test_unservable_requests"],
    "P-TIMELY": ["-k", "test_reads_the_operator_variables", "--run-timeout", "3"],
    "P-OFFLINE": ["-k", "test_needs_no_network"],
}
#: Mutants that break only a SHOULD part: they pass unless strict.
SHOULD_ONLY = {"no-model-version", "renamed-responses"}


def suite(tmp: Path, cmd: str, *extra: str) -> tuple[int, dict | None, str]:
    """Run the conformance suite on ``cmd``; return (exit status, report or None, output tail)."""
    report = tmp / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", cmd, "--conformance-profile", "dev", "--conformance-report", str(report),
         "--workspace-dir", str(tmp), *extra],
        cwd=tmp, capture_output=True, text=True, timeout=600,
    )
    loaded = json.loads(report.read_text()) if report.is_file() else None
    return done.returncode, loaded, (done.stdout + done.stderr)[-3000:]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, tuple[int, dict | None, str]]:
    """Every mutant's suite run (plain, and strict for the SHOULD-only ones), two at a time."""
    jobs = {}
    for name, requirement in MUTANTS.items():
        selection = SELECTION.get(requirement, ["-m", "golden"])
        jobs[name] = (f"{sys.executable} {MUTANT} {name}", selection)
        if name in SHOULD_ONLY:
            jobs[name + "+strict"] = (f"{sys.executable} {MUTANT} {name}", [*selection, "--conformance-strict"])

    def one(item):
        key, (cmd, extra) = item
        return key, suite(tmp_path_factory.mktemp(key), cmd, *extra)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, jobs.items()))


@pytest.mark.parametrize("name", sorted(set(MUTANTS) - SHOULD_ONLY))
def test_mutant_fails_with_its_requirement(verdicts, name):
    status, report, output = verdicts[name]
    requirement = MUTANTS[name]
    assert status == 1, f"the suite did not fail on mutant {name} (exit {status}):\n{output}"
    assert report is not None, output
    row = next(r for r in report["requirements"] if r["id"] == requirement)
    assert row["status"] == "failed" and row["failed_level"] == "MUST", (row, output)
    assert row["failures"] and all(line.split(": ", 2)[1].startswith(requirement) for line in row["failures"][:1])
    assert report["summary"]["must_failed"] >= 1


@pytest.mark.parametrize("name", sorted(SHOULD_ONLY))
def test_should_only_mutant_fails_only_when_strict(verdicts, name):
    requirement = MUTANTS[name]
    status, report, output = verdicts[name]
    assert status == 0, output
    row = next(r for r in report["requirements"] if r["id"] == requirement)
    assert row["status"] == "failed" and row["failed_level"] == "SHOULD", row
    assert report["summary"] == {**report["summary"], "must_failed": 0, "should_failed": 1}
    status, report, output = verdicts[name + "+strict"]
    assert status == 1 and report["strict"] is True, output


def test_every_must_requirement_about_a_candidate_has_a_mutant():
    """K-* are about files, not candidates: tests/test_manifests.py, test_goldens.py and the K-GOLDEN case
    below show those checks failing."""
    candidate_requirements = {r.id for r in REQUIREMENTS if not r.id.startswith("K-")}
    assert candidate_requirements <= set(MUTANTS.values())


def test_reference_passes_everything_strictly(tmp_path):
    status, report, output = suite(tmp_path, f"{sys.executable} {REFERENCE}", "--conformance-strict")
    assert status == 0, output
    assert report["strict"] is True and report["candidate"]["kind"] == "cmd"
    assert {r["id"] for r in report["requirements"]} == {r.id for r in REQUIREMENTS}
    not_passed = [(r["id"], r["status"], r["failures"][:1]) for r in report["requirements"] if r["status"] != "passed"]
    if shutil.which("unshare") is None:  # P-OFFLINE needs a network namespace for a local command
        not_passed = [row for row in not_passed if row[0] != "P-OFFLINE"]
    assert not not_passed, output
    assert (tmp_path / "report.md").read_text().startswith("# Conformance report: PASSED")


def test_tampered_golden_fixtures_fail_k_golden(tmp_path):
    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", fixtures)
    response = fixtures / "output" / "request.json"
    response.write_text(response.read_text().replace("40", "41"))
    status, report, output = suite(tmp_path, f"{sys.executable} {REFERENCE}", "--fixtures-dir", str(fixtures),
                                   "-m", "manifest")
    assert status == 1, output
    row = next(r for r in report["requirements"] if r["id"] == "K-GOLDEN")
    assert row["status"] == "failed" and "request.json" in row["failures"][0], row
