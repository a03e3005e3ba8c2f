"""The suite is only real if broken predictors fail it, and its report only true if each failure names what the
evidence shows. Each mutant (tests/mutants/mutant.py) breaks one thing; the whole suite (dev profile) runs against
it, and its report must equal the report stated here: exactly these requirements failed, exactly these
not-checked (nothing to show them on), B-MATCH and B-SIGNATURE skipped (the multiplier model's answers are the
M-* requirements'), every other requirement passed. The iris model's regressed variants are stated the same way
in tests/test_any_model.py.

Every run is a real ``pytest --pyargs conformance.suite`` subprocess with a report, two at a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.contract.requirements import REQUIREMENTS
from helpers import Runs

sys.path.insert(0, str(Path(__file__).parent / "mutants"))
from mutant import MUTANTS  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MUTANT = Path(__file__).parent / "mutants" / "mutant.py"
PREDICTORS = {"fast": ROOT / "predictor" / "fast.py", "reference": ROOT / "predictor" / "reference.py"}

#: What every response requirement is when the candidate wrote no response the suite could examine (B-DETERMINISTIC
#: and B-INDEPENDENT compare responses with each other: none, nothing to compare).
NO_RESPONSES = {"F-JSON", "F-SCHEMA", "F-ID", "F-MODEL", "F-COUNT", "F-TYPED", "M-EVERY", "M-SELECT", "M-SHAPE",
                "M-DTYPE", "M-VALUE", "M-LAYOUT", "M-EMPTY", "M-FINITE", "M-UNSUPPORTED", "M-MULTIPLIER",
                "B-DETERMINISTIC", "B-INDEPENDENT"}
#: Skipped for the multiplier model: its answers are checked exactly by M-*, and it declares no signature.
#: and the V2 server's H-* ones, which a batch predictor cannot show
H_IDS = {r.id for r in REQUIREMENTS if r.id.startswith(("H-", "G-"))}  # (G-*: a server's own, over gRPC)
MULTIPLIER_SKIPPED = {"B-MATCH", "B-SIGNATURE"} | H_IDS
#: The differential protocol checks, not-checked when the candidate never answers anything to compare with.
NO_BASELINE = {"P-OUTDIR", "P-ISOLATE", "P-OFFLINE", "P-CONFIG", "P-ENV"}

#: mutant -> (failed, not-checked). Why each, in one line.
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    # returns only the first output: wrong for plain requests and for selections of two or more
    "first-tensor-only": ({"M-EVERY", "M-SELECT"}, set()),
    # answers every input: wrong selection, computes an overflowing tensor the selection left out, and answers
    # a selection that names a tensor twice (an error is due: P-EVERY; shown since test_inputs.py)
    "ignore-outputs": ({"M-SELECT", "M-FINITE", "P-EVERY"}, set()),
    "flat-shape": ({"M-SHAPE"}, set()),
    "fp32-as-fp64": ({"M-DTYPE"}, set()),
    # big INT64 products through a double: wrong values, written as floats (1.2e19 is not an INT64 element)
    "int64-through-double": ({"M-VALUE", "F-TYPED"}, set()),
    "reject-nested": ({"M-LAYOUT"}, set()),
    "reject-scalars-and-empty": ({"M-EMPTY"}, set()),
    "clip-overflow": ({"M-FINITE"}, set()),
    "echo-unsupported": ({"M-UNSUPPORTED"}, set()),
    # Infinity tokens where overflow errors belong: not JSON, so M-FINITE cannot be shown on them
    "infinity-tokens": ({"F-JSON"}, {"M-FINITE"}),
    # no model_name: F-SCHEMA; F-MODEL has nothing to look at; the outputs are still compared (and right)
    "no-model-name": ({"F-SCHEMA"}, {"F-MODEL"}),
    "drop-id": ({"F-ID"}, set()),
    "wrong-model-name": ({"F-MODEL"}, set()),
    "no-model-version": ({"F-MODEL"}, set()),  # SHOULD only
    # every good request's response is malformed: no two responses can be compared for B-DETERMINISTIC and
    # B-INDEPENDENT
    "short-data": ({"F-COUNT"}, {"B-DETERMINISTIC", "B-INDEPENDENT"}),
    "ints-as-floats": ({"F-TYPED"}, set()),
    # uses the names of the platform's docs: the decoys show it (P-ENV); without decoys it writes nothing
    # and fails, so every other run is P-EVERY + P-EXIT, and nothing else can be shown
    "doc-env-names": ({"P-ENV", "P-EVERY", "P-EXIT"}, NO_RESPONSES | (NO_BASELINE - {"P-ENV"})),
    # never reads multiplier.txt: the model's own values under other multipliers, and bad models served
    "hardcoded-multiplier": ({"M-MULTIPLIER", "P-CONFIG"}, set()),
    # needs the folder to exist: every ordinary run writes nothing and fails; only the present-folder run answers
    "no-makedirs": ({"P-OUTDIR", "P-EVERY", "P-EXIT"},
                    {"M-EMPTY", "M-FINITE", "M-LAYOUT", "M-MULTIPLIER", "M-SELECT", "M-UNSUPPORTED",
                     "B-DETERMINISTIC", "B-INDEPENDENT"} | (NO_BASELINE - {"P-OUTDIR"})),
    "mkdir-without-parents": ({"P-OUTDIR"}, set()),
    # skips one response for no reason: P-EVERY only (not P-ISOLATE, P-ENV or P-OUTDIR)
    "skip-last": ({"P-EVERY"}, set()),
    "not-json-names": ({"P-NAME"}, set()),
    "renamed-responses": ({"P-NAME"}, set()),  # SHOULD only: paired by id, never MUST failures
    "writes-input": ({"P-READONLY"}, set()),
    "exit-one": ({"P-EXIT"}, set()),
    "ignores-bad-model": ({"P-CONFIG"}, set()),
    # gives up at the first unservable request: its error responses are never written
    "stops-at-first-error": ({"P-ISOLATE", "P-EXIT", "P-EVERY"}, {"M-FINITE", "M-SELECT", "M-UNSUPPORTED"}),
    "needs-network": ({"P-OFFLINE"}, set()),
    # writes nothing at all: P-EVERY, and nothing else can be shown
    "writes-nothing": ({"P-EVERY"}, NO_RESPONSES | NO_BASELINE),
    # response0.json, response1.json... (the ODAHU example's names): SHOULD only, paired right
    "numbered-responses": ({"P-NAME"}, set()),
    # multiplier + 1: wrong values and overflow decisions at every multiplier, so not M-MULTIPLIER
    "off-by-one-multiplier": ({"M-VALUE", "M-FINITE"}, set()),
    # a correct batch plus a 600 MB extra .json: P-EVERY (and P-EXIT, as for any file written for an empty batch)
    "huge-extra-file": ({"P-EVERY", "P-EXIT"}, set()),
    # leaves a process running after it exits
    "daemonises": ({"P-EXIT"}, set()),
    # dies on {"inputs": []}: the good requests beside it are lost (their missing responses are P-ISOLATE's)
    "crashes-on-empty-request": ({"P-ISOLATE", "P-EXIT"}, set()),
    # serves "1_0" as 10 and the Arabic-Indic three as 3: models the kit refuses
    "python-int-multiplier": ({"P-CONFIG"}, set()),
    # defects only conformance/suite/test_inputs.py's inputs show (issue 13), each one requirement:
    # merges the trailing dimensions of a rank-4+ tensor into the third
    "rank-over-three": ({"M-SHAPE"}, set()),
    # repeats element 65,535 at 65,536 (a chunk boundary) in tensors above 65,536 elements
    "chunk-boundary": ({"M-VALUE"}, set()),
    # writes model_name "multiplier" (the kit's model's name) whatever the staged model is called
    "hardcoded-model-name": ({"F-MODEL"}, set()),
    # floats as float64(x) * float64(m), then cast: double rounding for FP32 beyond 2**29, m rounded beyond 2**53
    "float64-product": ({"M-VALUE"}, set()),
    # serves the first 256 files of the 307-file batch
    "caps-at-256": ({"P-EVERY"}, set()),
    # time grows with the square of the largest tensor: the million-element request is killed (15 s timeout)
    "quadratic-time": ({"P-TIMELY"}, set()),
    # refuses multiplier.txt with CRLF, surrounding spaces or a "+" (models the kit reads): P-CONFIG, decided
    # against the answered baseline; its missing responses are not counted again
    "strict-multiplier-regex": ({"P-CONFIG"}, set()),
    # the multiplier wrapped to a signed 64-bit integer: integers are right (the same modulo 2**64), floats are
    # wrong beyond 2**63 and 2**64, and products that overflow are answered
    "multiplier-int64": ({"M-VALUE", "M-FINITE"}, set()),
    # answers outputs [a, a] (an error is due: P-EVERY, as for every request a strict reading refuses)
    "dedupes-repeated-selection": ({"P-EVERY"}, set()),
    # answers [[1, 2, 3, 4]] for shape [2, 2] (and other data nested against its shape)
    "flattens-before-checking": ({"P-EVERY"}, set()),
    # refuses every unusable model (exit 1, nothing written) with a traceback: the one-line reason is a SHOULD
    "traceback-on-bad-model": ({"P-CONFIG"}, set()),
    # numbers its responses in a hash order (paired by content: names, datatypes, shapes) and stops at the first
    # request without "inputs": good requests after it are lost (P-ISOLATE), exit 1 (P-EXIT), renamed (P-NAME)
    "odahu-example": ({"P-NAME", "P-ISOLATE", "P-EXIT"}, set()),
    # NAME.txt for NAME.json: dropped by the platform (P-NAME), each paired by its echoed id, nothing else
    "txt-names-with-ids": ({"P-NAME"}, set()),
    # hangs on the requests without "inputs" the platform delivers; as many good requests finish: P-ISOLATE,
    # the killed run's P-TIMELY its consequence
    "hangs-on-missing-inputs": ({"P-ISOLATE"}, set()),
    # hangs on every batch of more than 12 files: P-TIMELY, and the 15-file batch with unservable requests is not
    # P-ISOLATE's (as many good requests hang too); what only big batches show is not-checked (M-EMPTY; the
    # multiplier probe and the crowd of B-INDEPENDENT)
    "hangs-on-big-batches": ({"P-TIMELY"}, {"M-EMPTY", "M-MULTIPLIER", "B-INDEPENDENT"}),
    # serves a request that is not UTF-8 and one whose id is a lone surrogate (the platform delivers both; an
    # error is due) with their U+FFFD text: P-EVERY, and F-ID for the id it made up (the request has none a
    # strict reader can read); its values are right for the text it read
    "repairs-invalid-utf8": ({"P-EVERY", "F-ID"}, set()),
    # serves whole chunks of 100 files and loses the remainder: only a batch of more than 100 files that is not a
    # multiple of 100 shows it (the 307-file batch; 300 files passed)
    "chunks-of-100": ({"P-EVERY"}, set()),
    # never finishes: P-TIMELY; after it also times out on three small requests, no further run is made, so
    # everything but what the two killed runs showed (P-READONLY, P-NAME) and the kit's files is not-checked
    "hangs": ({"P-TIMELY"}, {r.id for r in REQUIREMENTS} - {"P-TIMELY", "P-READONLY", "P-NAME", "K-SERVICE",
                                                             "K-JOB", "K-META", "K-GOLDEN"} - MULTIPLIER_SKIPPED),
}
#: Mutants that break only a SHOULD part: they pass unless strict.
SHOULD_ONLY = {"no-model-version", "renamed-responses", "numbered-responses", "traceback-on-bad-model"}
#: A process left running is stopped, as in a pod, and is a SHOULD finding (an image's ends unseen with its container).
SHOULD_ONLY |= {"daemonises"}
#: The hung mutant runs with a short timeout; the quadratic one with one the reference meets far inside.
SELECTION = {"hangs": ["--run-timeout", "3"], "quadratic-time": ["--run-timeout", "15"],
             "hangs-on-missing-inputs": ["--run-timeout", "15"], "hangs-on-big-batches": ["--run-timeout", "8"]}


def suite(tmp: Path, cmd: str, *extra: str) -> tuple[int, dict | None, str]:
    """Run the conformance suite on ``cmd``; return (exit status, report or None, output tail)."""
    report = tmp / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", cmd, "--conformance-profile", "dev", "--conformance-report", str(report),
         "--hypothesis-seed", "1",  # the same generated batches every time: the stated reports are exact
         "--workspace-dir", str(tmp), *extra],
        cwd=tmp, capture_output=True, text=True, timeout=600,
    )
    loaded = json.loads(report.read_text()) if report.is_file() else None
    return done.returncode, loaded, (done.stdout + done.stderr)[-3000:]


def statuses(report: dict) -> dict[str, set[str]]:
    """Status -> the requirement IDs with it."""
    found: dict[str, set[str]] = {}
    for row in report["requirements"]:
        found.setdefault(row["status"], set()).add(row["id"])
    return found


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, tuple[int, dict | None, str]]:
    """Every mutant's suite run (plain, and strict for the SHOULD-only ones), two at a time (under xdist: each when
    a test of the worker first needs it, :class:`helpers.Runs`)."""
    jobs = {}
    for name in MUTANTS:
        selection = SELECTION.get(name, [])
        jobs[name] = (f"{sys.executable} {MUTANT} {name}", selection)
        if name in SHOULD_ONLY:
            jobs[name + "+strict"] = (f"{sys.executable} {MUTANT} {name}", [*selection, "--conformance-strict"])

    def one(key: str, cmd: str, extra: list[str]) -> Callable[[], tuple[int, dict | None, str]]:
        return lambda: suite(tmp_path_factory.mktemp(key), cmd, *extra)

    return Runs({key: one(key, cmd, extra) for key, (cmd, extra) in jobs.items()})  # type: ignore[return-value]


def test_every_mutant_has_a_stated_report():
    assert set(MUTANTS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mutant_report_is_exactly_the_stated_one(verdicts, name):
    status, report, output = verdicts[name]
    failed, not_checked = EXPECTED[name]
    assert report is not None, output
    found = statuses(report)
    assert found.get("failed", set()) == failed, (found, output)
    assert found.get("not-checked", set()) == not_checked, (found, output)
    assert found.get("skipped", set()) == MULTIPLIER_SKIPPED, found
    assert found.get("passed", set()) == {r.id for r in REQUIREMENTS} - failed - not_checked - MULTIPLIER_SKIPPED, found
    if name in SHOULD_ONLY:
        assert status == 0 and report["status"] == "passed", output
        assert all(r["failed_level"] == "SHOULD" for r in report["requirements"] if r["status"] == "failed")
        strict_status, strict_report, strict_output = verdicts[name + "+strict"]
        assert strict_status == 1 and strict_report["status"] == "failed", strict_output
    else:
        assert status == 1 and report["status"] == "failed", output
        assert MUTANTS[name] in failed
        row = next(r for r in report["requirements"] if r["id"] == MUTANTS[name])
        assert row["failed_level"] == "MUST" and row["failures"][0].split(": ", 2)[1].startswith(MUTANTS[name])


def test_a_hung_candidate_is_not_waited_for_again_and_again(verdicts):
    """Two runs wait out the 3 s timeout (the golden batch, then three small requests), not twenty."""
    status, report, output = verdicts["hangs"]
    assert report["stats"]["predictor_runs"] <= 2 + 8, report["stats"]  # + the 8 bad-model runs, which end at once
    reasons = {row["reason"] for row in report["requirements"] if row["status"] == "not-checked"}
    assert any("further runs are not made" in reason for reason in reasons), reasons


def test_every_requirement_about_a_candidate_has_a_mutant_that_fails_it():
    """K-* are about files, not candidates: tests/test_manifests.py, test_goldens.py and the K-GOLDEN case
    below show those checks failing. B-* are shown failing by the iris model's regressed variants
    (tests/test_any_model.py::test_every_b_requirement_has_a_variant_that_fails_it), H-* by the broken V2
    servers (tests/test_server_mutants.py)."""
    candidate_requirements = {r.id for r in REQUIREMENTS if not r.id.startswith(("K-", "B-", "H-", "G-"))}
    assert candidate_requirements <= set(MUTANTS.values())
    assert candidate_requirements <= set().union(*(failed for failed, _ in EXPECTED.values()))


@pytest.mark.parametrize("predictor", sorted(PREDICTORS))
def test_predictors_pass_everything_strictly(tmp_path, predictor):
    if not PREDICTORS[predictor].is_file():
        pytest.skip(f"{PREDICTORS[predictor]} is not in this checkout")
    status, report, output = suite(tmp_path, f"{sys.executable} {PREDICTORS[predictor]}", "--conformance-strict")
    assert status == 0, output
    assert report["strict"] is True and report["candidate"]["kind"] == "cmd" and report["status"] == "passed"
    assert {r["id"] for r in report["requirements"]} == {r.id for r in REQUIREMENTS}
    not_passed = [(r["id"], r["status"], r["failures"][:1]) for r in report["requirements"] if r["status"] != "passed"]
    if shutil.which("unshare") is None:  # P-OFFLINE needs a network namespace for a local command
        not_passed = [row for row in not_passed if row[0] != "P-OFFLINE"]
    not_passed = [row for row in not_passed if not (row[0] in MULTIPLIER_SKIPPED and row[1] == "skipped")]
    assert not not_passed, output
    assert (tmp_path / "report.md").read_text().startswith("# Conformance report: PASSED")


def test_tampered_golden_fixtures_fail_k_golden(tmp_path):
    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", fixtures)
    response = fixtures / "output" / "request.json"
    response.write_text(response.read_text().replace("40", "41"))
    status, report, output = suite(tmp_path, f"{sys.executable} {PREDICTORS['fast']}", "--fixtures-dir", str(fixtures),
                                   "-m", "manifest")
    assert status == 1, output
    row = next(r for r in report["requirements"] if r["id"] == "K-GOLDEN")
    assert row["status"] == "failed" and "request.json" in row["failures"][0], row


@pytest.mark.parametrize("option", ["--predictor-cmd", "--predictor-image"])
def test_a_blank_candidate_option_is_a_usage_error_not_the_reference(tmp_path, option):
    """An unset variable (``--predictor-cmd "$UNSET"``) must never fall back to the reference and pass."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider",
                           "-q", option, " "], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "is empty" in done.stderr and "Traceback" not in done.stderr + done.stdout


def test_a_candidate_that_cannot_start_stops_the_run_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider",
                           "-q", "--predictor-cmd", str(tmp_path / "no-such-predictor")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "cannot start" in done.stderr and "PASSED" not in done.stdout
