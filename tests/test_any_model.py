"""Gating a model that is not the multiplier (issue 12): the declared signature, the tolerance comparator, the
oracles, ``fixtures record``, and the whole suite against the iris example in every mode, with the exact report
each regressed variant must get (as tests/test_mutants.py states it for the multiplier's mutants)."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.cli import main
from conformance.contract.requirements import REQUIREMENTS
from conformance.generate import fromsignature
from conformance.odahu.model import OtherModel
from conformance.oracle.expect import Expected
from conformance.oracle.match import examine_any, response_difference, tensor_difference
from conformance.oracle.signature import (
    SignatureProblem,
    follows_inputs,
    read_signature,
    unservable,
)
from conformance.oracle.sources import (
    OracleProblem,
    Tolerance,
    load_reference,
    parse_output_tolerance,
)
from conformance.run.candidate import CandidateProblem, from_options
from conformance.v2.documents import REQUEST, RESPONSE, Tensor, inspect
from conformance.v2.strictjson import dumps
from helpers import Runs

ROOT = Path(__file__).resolve().parents[1]
IRIS = ROOT / "examples" / "iris"
PREDICTOR = f"{sys.executable} {IRIS / 'predictor.py'}"
REFERENCE = f"python:{IRIS / 'reference.py'}:answer"
MODEL = OtherModel("iris", "1")


@pytest.fixture(scope="module")
def iris_model() -> Path:
    """The committed iris model folder (weights.json included: the goldens were recorded from it); read only."""
    pytest.importorskip("sklearn", reason="the iris example needs scikit-learn (pip install -e '.[dev]')")
    return IRIS / "model"


def signature_file(tmp_path: Path, body: object) -> Path:
    path = tmp_path / "model-settings.json"
    path.write_text(json.dumps(body))
    return path


# ------------------------------------------------------------------------------------------------ signature


@pytest.mark.parametrize("body, says", [
    ({"outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}, "/inputs: a non-empty list"),
    ({"inputs": [{"name": "x", "datatype": "FP8", "shape": [1]}], "outputs": [{"name": "y", "datatype": "FP32", "shape": [1]}]},
     "/inputs/0/datatype: 'FP8' is not a V2 datatype"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-2]}], "outputs": [{"name": "y", "datatype": "FP32", "shape": [1]}]},
     "/inputs/0/shape"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "parameters": {"min": 2, "max": 1}}],
      "outputs": [{"name": "y", "datatype": "FP32", "shape": [1]}]}, "min 2 is above max 1"),
    ([], "is not a JSON object"),
])
def test_a_bad_signature_is_one_line_naming_the_file_and_pointer(tmp_path, body, says):
    path = signature_file(tmp_path, body)
    with pytest.raises(SignatureProblem) as problem:
        read_signature(path)
    assert str(problem.value).startswith(str(path)) and says in str(problem.value) and "\n" not in str(problem.value)


def test_the_iris_signature_is_read_and_decides_which_requests_follow_it():
    signature = read_signature(IRIS / "model" / "model-settings.json")
    assert [s.name for s in signature.inputs] == ["features"] and signature.inputs[0].shape == (-1, 4)

    def request(**tensor) -> object:
        body = {"name": "features", "shape": [2, 4], "datatype": "FP32", "data": [1.0] * 8, **tensor}
        return inspect({"inputs": [body]}, REQUEST, "r.json")

    assert follows_inputs(request(), signature)
    assert follows_inputs(request(shape=[0, 4], data=[]), signature)
    assert not follows_inputs(request(shape=[2, 3], data=[1.0] * 6), signature)
    assert not follows_inputs(request(datatype="FP64"), signature)
    assert not follows_inputs(request(data=[11.0] * 8), signature)  # outside the declared range [0, 10]
    assert not follows_inputs(request(name="x"), signature)


def response(outputs: list[dict], **extra) -> object:
    return inspect({"model_name": "iris", "model_version": "1", "outputs": outputs, **extra}, RESPONSE, "r.json")


def iris_request(rows: int = 1):
    return inspect({"inputs": [{"name": "features", "shape": [rows, 4], "datatype": "FP32", "data": [1.0] * 4 * rows}]},
                   REQUEST, "r.json")


def outputs(probabilities: list[float], labels: list[int], datatype: str = "FP32") -> list[dict]:
    return [{"name": "probabilities", "shape": [len(labels), 3], "datatype": datatype, "data": probabilities},
            {"name": "label", "shape": [len(labels)], "datatype": "INT64", "data": labels}]


SIGNATURE = read_signature(IRIS / "model" / "model-settings.json")
RIGHT = [0.5, 0.25, 0.25]


def findings_of(actual, expected: Expected | None = None, tolerance: Tolerance = Tolerance()) -> list[str]:
    expected = expected if expected is not None else Expected(None, MODEL)
    return [f"{f.requirement} {f.pointer}" for f in examine_any(actual, expected, iris_request(), SIGNATURE, tolerance).findings]


def test_b_signature_finds_what_breaks_the_declared_outputs():
    assert findings_of(response(outputs(RIGHT, [0]))) == []
    assert findings_of(response(outputs(RIGHT, [3]))) == ["B-SIGNATURE /outputs/1/data/0"]
    assert findings_of(response(outputs(RIGHT, [0], "FP64"))) == ["B-SIGNATURE /outputs/0/datatype"]
    assert findings_of(response(outputs(RIGHT, [0])[:1])) == ["B-SIGNATURE /outputs"]
    two_rows = response(outputs(RIGHT * 2, [0, 0]))  # the request has one row
    assert findings_of(two_rows) == ["B-SIGNATURE /outputs/0/shape", "B-SIGNATURE /outputs/1/shape"]
    assert findings_of(inspect({"error": "no"}, RESPONSE, "r.json")) == ["B-SIGNATURE /error"]
    # a probability of 1 + 1e-7 is 1 within the tolerance; 1.001 is not
    assert findings_of(response(outputs([1.0000001, 0.0, 0.0], [0]))) == []
    assert findings_of(response(outputs([1.001, 0.0, 0.0], [0]))) == ["B-SIGNATURE /outputs/0/data/0"]


def test_b_match_compares_within_the_tolerance_and_keeps_errors_errors():
    want = response(outputs(RIGHT, [0]))
    expected = Expected(None, MODEL, outputs=want.tensors)
    assert findings_of(response(outputs([0.5000001, 0.25, 0.25], [0])), expected) == []
    assert findings_of(response(outputs([0.5001, 0.25, 0.25], [0])), expected) == ["B-MATCH /outputs/0/data"]
    assert findings_of(response(outputs(RIGHT, [1])), expected) == ["B-MATCH /outputs/1/data"]  # integers exactly
    assert findings_of(response(outputs([0.5001, 0.25, 0.25], [0])), expected, Tolerance(1e-3, 0)) == []
    assert findings_of(inspect({"error": "no"}, RESPONSE, "r.json"), Expected(None, MODEL, error="x", requirement="B-MATCH")) == []
    assert findings_of(response(outputs(RIGHT, [0])), Expected(None, MODEL, error="x", requirement="B-MATCH")) == ["B-MATCH "]
    # off the signature: B-SIGNATURE, and B-MATCH is not checked on it (one root cause)
    result = examine_any(response(outputs(RIGHT, [3])), expected, iris_request(), SIGNATURE, Tolerance())
    assert [f.requirement for f in result.findings] == ["B-SIGNATURE"] and "B-MATCH" in result.blocked


def judged_run(tmp_path: Path, written: dict[str, object], **fields):
    """A run of an iris predictor that wrote ``written`` (file name -> response body) and ended with exit 0,
    unless ``fields`` say otherwise."""
    from conformance.run.workspace import OutputEntry, RunResult, Workspace

    output = tmp_path / "raw-output"
    output.mkdir(parents=True)
    for name, body in written.items():
        (output / name).write_bytes(dumps(body))
    workspace = Workspace(tmp_path, tmp_path / "input", output, tmp_path / "model")
    values = dict(exit_code=0, stdout="", stderr="", duration=0.5, timed_out=False, output_exists=True,
                  entries=[OutputEntry(n, "file", 10) for n in written], input_changes=[], model_changes=[],
                  command=["predict"], workspace=workspace)
    return RunResult(**{**values, **fields})


def iris_oracle(kind: str):
    from conformance.oracle.sources import Oracle

    return Oracle(kind, kind, MODEL, SIGNATURE, Tolerance())


GOOD_IRIS = dumps({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1.0] * 4}]})


def test_without_expected_answers_b_match_is_never_blocked(tmp_path):
    """--oracle signature has no expected answers: a missing response or a killed run leaves B-MATCH as it
    was (skipped), never not-checked; the other response requirements are blocked as usual."""
    from conformance.judge import judge_batch

    requests = {"a.json": GOOD_IRIS, "b.json": GOOD_IRIS}
    answered = {"a.json": {"model_name": "iris", "model_version": "1", "outputs": outputs(RIGHT, [0])}}
    missing = judge_batch(judged_run(tmp_path / "missing", answered), requests, MODEL, oracle=iris_oracle("signature"))
    assert "b.json" in missing.blocked["B-SIGNATURE"] and "B-MATCH" not in missing.blocked
    killed = judge_batch(judged_run(tmp_path / "killed", {}, timed_out=True, exit_code=None), requests, MODEL,
                         oracle=iris_oracle("signature"))
    assert "B-SIGNATURE" in killed.blocked and "B-MATCH" not in killed.blocked
    # where an answer is known (a reference function's, a golden one), a missing response still blocks B-MATCH
    golden = tmp_path / "golden.json"
    golden.write_bytes(dumps(answered["a.json"]))
    known = judge_batch(judged_run(tmp_path / "known", {}), requests, MODEL, {"b.json": golden},
                        oracle=iris_oracle("recorded"))
    assert list(known.blocked["B-MATCH"]) == ["b.json"]


def test_an_off_signature_golden_request_answered_with_values_is_p_every(tmp_path):
    """A golden request the declared signature cannot serve owes an error response (P-EVERY), whatever its
    recorded answer; answering it with values is not B-MATCH's."""
    from conformance.judge import judge_batch

    off = dumps({"inputs": [{"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [1.0] * 3}]})
    golden = tmp_path / "golden.json"
    golden.write_bytes(dumps({"error": "features: expected 4 columns"}))
    answer = {"model_name": "iris", "model_version": "1", "outputs": outputs(RIGHT, [0])}
    judged = judge_batch(judged_run(tmp_path / "run", {"off.json": answer}), {"off.json": off}, MODEL,
                         {"off.json": golden}, oracle=iris_oracle("recorded"))
    assert [f.requirement for f in judged.findings] == ["P-EVERY"], [f.line() for f in judged.findings]
    assert judged.expected["off.json"].requirement == "P-EVERY"


def test_one_output_can_have_its_own_tolerance():
    expected = Expected(None, MODEL, outputs=response(outputs(RIGHT, [0])).tensors)
    loose = Tolerance(1e-5, 1e-8, (("probabilities", 1e-3, 0.0),))
    assert findings_of(response(outputs([0.5001, 0.25, 0.25], [0])), expected, loose) == []
    assert findings_of(response(outputs([0.5001, 0.25, 0.25], [1])), expected, loose) == ["B-MATCH /outputs/1/data"]
    assert parse_output_tolerance("probabilities=1e-3") == ("probabilities", 1e-3, 0.0)
    assert parse_output_tolerance("p=1e-3,1e-6") == ("p", 1e-3, 1e-6)
    for bad in ("probabilities", "=1", "p=x", "p=-1", "p=1,2,3"):
        with pytest.raises(ValueError, match="--output-tolerance"):
            parse_output_tolerance(bad)


def test_a_bad_tolerance_option_is_a_usage_error(iris_model, pytester_free_run):
    done = pytester_free_run("--predictor-cmd", PREDICTOR, "--model", str(iris_model), "--oracle", "signature",
                             "--output-tolerance", "probabilities")
    assert done.returncode == 4 and "--output-tolerance 'probabilities': expected NAME=RTOL" in done.stderr


@pytest.fixture
def pytester_free_run(tmp_path):
    """Run the suite in a subprocess with these options (-k matching nothing: only the set-up is exercised)."""
    def run(*options: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider",
                               "-q", "-k", "nothing_has_this_name", *options], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
    return run


def test_float_elements_equal_bit_for_bit_without_a_tolerance():
    got = Tensor("y", "FP32", [1], np.array([0.1], dtype=np.float32), False, "/outputs/0")
    near = Tensor("y", "FP32", [1], np.array([np.nextafter(np.float32(0.1), np.float32(1))]), False, "/outputs/0")
    assert tensor_difference("r.json", got, near, Tolerance()) is None
    assert tensor_difference("r.json", got, near, None) is not None


def test_two_responses_differ_in_outputs_not_in_spelling():
    a = response(outputs([0.5, 0.25, 0.25], [0]))
    spelled = response([{"name": "probabilities", "shape": [1, 3], "datatype": "FP32", "data": [[0.50, 0.250, 0.25]]},
                        {"name": "label", "shape": [1], "datatype": "INT64", "data": [0]}])
    assert response_difference(a, spelled) is None
    assert "elements differ" in response_difference(a, response(outputs([0.5, 0.25, 0.2500001], [0])))
    assert "error response once" in response_difference(a, inspect({"error": "x"}, RESPONSE, "r.json"))


# -------------------------------------------------------------------------------------------------- oracles


def test_a_reference_function_that_cannot_be_loaded_is_one_line(tmp_path):
    module = tmp_path / "ref.py"
    module.write_text("def answer(request, model):\n    return {}\n")
    assert callable(load_reference(f"python:{module}:answer"))
    for spec, says in ((f"python:{module}:missing", "has no function 'missing'"),
                       (f"python:{tmp_path / 'nope.py'}:answer", "no such file"),
                       ("python:no_such_module_here:answer", "cannot import"),
                       ("python:answer", "expected python:MODULE:FUNCTION")):
        with pytest.raises(OracleProblem, match=says):
            load_reference(spec)


def test_a_model_without_multiplier_txt_needs_an_oracle_option(iris_model):
    with pytest.raises(CandidateProblem, match="no multiplier.txt, so not the multiplier model: say where"):
        from_options(cmd=PREDICTOR, model=iris_model)
    with pytest.raises(CandidateProblem, match="--oracle nonsense"):
        from_options(cmd=PREDICTOR, model=iris_model, oracle="nonsense")
    candidate = from_options(cmd=PREDICTOR, model=iris_model, oracle="signature")
    assert candidate.oracle is not None and not candidate.is_multiplier and candidate.model.name == "iris"


def test_the_signature_oracle_needs_a_signature(iris_model, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(iris_model / "odahuflow.project.yaml", bare)
    with pytest.raises(CandidateProblem, match="--oracle signature: no signature"):
        from_options(cmd=PREDICTOR, model=bare, oracle="signature")


# --------------------------------------------------------------------------------------------- fixtures record


def test_record_writes_pairs_the_recorded_oracle_accepts(iris_model, tmp_path, capsys):
    out = tmp_path / "goldens"
    args = ["fixtures", "record", "--cmd", PREDICTOR, "--model", str(iris_model),
            "--requests", str(IRIS / "fixtures" / "input"), "--out", str(out)]
    assert main(args) == 0
    assert "recorded 18 golden pairs" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "output").iterdir()) == sorted(p.name for p in (out / "input").iterdir())
    before = (out / "output" / "iris-classes.json").read_bytes()
    assert main(args) == 2  # never overwrites without --force
    assert "exists" in capsys.readouterr().err and (out / "output" / "iris-classes.json").read_bytes() == before
    assert main([*args, "--force"]) == 0


@pytest.mark.parametrize("variant, requirement", [("nondeterministic", "B-DETERMINISTIC"),
                                                  ("label-off-by-one", "B-SIGNATURE")])
def test_record_refuses_a_predictor_unfit_to_record_from(iris_model, tmp_path, capsys, monkeypatch, variant, requirement):
    monkeypatch.setenv("IRIS_VARIANT", variant)
    out = tmp_path / "goldens"
    code = main(["fixtures", "record", "--cmd", PREDICTOR, "--model", str(iris_model),
                 "--requests", str(IRIS / "fixtures" / "input"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and f": {requirement} " in captured.out and "nothing recorded" in captured.err
    assert not (out / "output").exists()


def test_record_refuses_a_request_the_platform_skips_and_leaves_no_workspace(iris_model, tmp_path):
    from conformance.record import RecordProblem, record

    workspaces = tmp_path / "ws"
    workspaces.mkdir()
    candidate = from_options(cmd=PREDICTOR, model=iris_model, oracle="signature", workspace_base=workspaces)
    requests = [("good.json", (IRIS / "fixtures" / "input" / "good-a.json").read_bytes()), ("broken.json", b"[1,")]
    with pytest.raises(RecordProblem, match="input filter skips broken.json"):
        record(candidate, requests, tmp_path / "out")
    assert list(workspaces.iterdir()) == [] and not (tmp_path / "out").exists()


def test_good_requests_of_a_model_without_signature_are_goldens_answered_with_values():
    from conformance.generate.goldens import answered_requests

    chosen = [name for name, _ in answered_requests(IRIS / "fixtures", 3)]
    assert chosen == ["fp64-features.json", "good-a.json", "good-b.json"]  # not empty-batch or the error ones


def test_fixtures_check_takes_another_models_oracle(iris_model, tmp_path, capsys):
    fixtures = str(IRIS / "fixtures")
    assert main(["fixtures", "check", "--fixtures", fixtures, "--model", str(iris_model), "--oracle", REFERENCE]) == 0
    assert "18 golden pairs of model iris 1 checked" in capsys.readouterr().out
    assert main(["fixtures", "check", "--fixtures", fixtures, "--model", str(iris_model)]) == 2
    assert "not the multiplier model: check its goldens with --oracle" in capsys.readouterr().err
    tampered = tmp_path / "fixtures"
    shutil.copytree(IRIS / "fixtures", tampered)
    golden = tampered / "output" / "iris-classes.json"
    golden.write_text(golden.read_text().replace('"data":[0,1,2]', '"data":[0,1,1]'))
    assert main(["fixtures", "check", "--fixtures", str(tampered), "--model", str(iris_model), "--oracle", REFERENCE]) == 1
    assert "iris-classes.json: K-GOLDEN /outputs/1/data: B-MATCH" in capsys.readouterr().out


def test_the_committed_iris_goldens_match_the_reference_function(iris_model):
    """K-GOLDEN for another model: the recorded pairs, checked against the reference function within tolerance."""
    from conformance.generate import goldens

    candidate = from_options(cmd=PREDICTOR, model=iris_model, oracle=REFERENCE)
    pairs, findings = goldens.check(IRIS / "fixtures", None, candidate.oracle)
    assert pairs == 18 and findings == []


# ----------------------------------------------------------------------------- the suite against iris, per mode

M_IDS = {r.id for r in REQUIREMENTS if r.id.startswith("M-")}
#: A V2 server's requirements: skipped for every batch predictor.
H_IDS = {r.id for r in REQUIREMENTS if r.id.startswith(("H-", "G-"))}  # (G-*: a server's own, over gRPC)
FIXTURES = ["--fixtures-dir", str(IRIS / "fixtures")]
#: (oracle, variant, extra options) -> (failed, not-checked, skipped). Every other requirement must be passed.
CASES: dict[tuple[str, str], tuple[list[str], set[str], set[str], set[str]]] = {
    ("python", ""): (FIXTURES, set(), set(), M_IDS),
    ("recorded", ""): (FIXTURES, set(), set(), M_IDS),
    # no expected values: format, signature, determinism and batch independence only; no goldens given
    ("signature", ""): ([], set(), set(), M_IDS | {"B-MATCH", "K-GOLDEN"}),
    ("recorded", "reordered-features"): (FIXTURES, {"B-MATCH"}, set(), M_IDS),
    ("python", "fp16-probabilities"): ([], {"B-MATCH"}, set(), M_IDS | {"K-GOLDEN"}),
    # label 3 is outside the declared range (B-SIGNATURE); labels 1 and 2 in place of 0 and 1 are B-MATCH's
    ("recorded", "label-off-by-one"): (FIXTURES, {"B-MATCH", "B-SIGNATURE"}, set(), M_IDS),
    # inside the tolerance but different every run: only B-DETERMINISTIC shows it; batch independence cannot be
    # told when the same request alone is answered differently twice
    ("signature", "nondeterministic"): ([], {"B-DETERMINISTIC"}, {"B-INDEPENDENT"}, M_IDS | {"B-MATCH", "K-GOLDEN"}),
    # answers a request whose only input is not 'features' (a declared input missing): an error was owed
    ("signature", "any-input-name"): ([], {"P-EVERY"}, set(), M_IDS | {"B-MATCH", "K-GOLDEN"}),
    # a trace of the batch's mean in every answer: inside the tolerance, the same twice alone and beside copies
    # of itself, but another answer beside other requests
    ("python", "batch-mean"): ([], {"B-INDEPENDENT"}, set(), M_IDS | {"K-GOLDEN"}),
    # a difference inside the tolerance passes
    ("python", "within-tolerance"): (FIXTURES, set(), set(), M_IDS),
    # answers as "iris" version "1" whatever the project file says: the copy staged under another name shows it
    ("python", "hardcoded-name"): (FIXTURES, {"F-MODEL"}, set(), M_IDS),
    ("recorded", "hardcoded-name"): (FIXTURES, {"F-MODEL"}, set(), M_IDS),
    ("signature", "hardcoded-name"): ([], {"F-MODEL"}, set(), M_IDS | {"B-MATCH", "K-GOLDEN"}),
    # 1 to 3 float steps, differently every time, only on requests of more than 8 rows: inside the tolerance
    # (B-MATCH passes), seen only by the large requests repeated in one batch and across runs
    ("python", "jitter-big-batches"): (FIXTURES, {"B-DETERMINISTIC"}, set(), M_IDS),
    # dies at the edge request of 0 rows, which every run of test_generated_from_the_signature sends first
    # (no goldens here: their empty-batch.json would stop the golden batch too)
    ("signature", "crash-on-zero-rows"): ([], {"P-EVERY", "P-EXIT"}, set(), M_IDS | {"B-MATCH", "K-GOLDEN"}),
    # files in chunks of 100, the remainder lost: the 307-file batch loses 7 (every other batch is under 100)
    ("recorded", "chunked-batches"): (FIXTURES, {"P-EVERY"}, set(), M_IDS),
}


def test_every_b_requirement_has_a_variant_that_fails_it():
    failing = {requirement for (_, variant), (_, failed, _, _) in CASES.items() if variant for requirement in failed}
    assert {r.id for r in REQUIREMENTS if r.id.startswith("B-")} <= failing


@pytest.fixture(scope="module")
def iris_reports(iris_model, tmp_path_factory) -> dict:
    def one(case):
        oracle, variant = case
        tmp = tmp_path_factory.mktemp(f"{oracle}-{variant or 'right'}")
        report = tmp / "report.json"
        env = {**__import__("os").environ, "IRIS_VARIANT": variant}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
             "--predictor-cmd", PREDICTOR, "--model", str(iris_model),
             "--oracle", REFERENCE if oracle == "python" else oracle, *CASES[case][0],
             "--conformance-profile", "dev", "--hypothesis-seed", "1", "--conformance-report", str(report),
             "--workspace-dir", str(tmp)],
            cwd=tmp, capture_output=True, text=True, timeout=600, env=env)
        loaded = json.loads(report.read_text()) if report.is_file() else None
        return done.returncode, loaded, (done.stdout + done.stderr)[-3000:]

    return Runs({case: functools.partial(one, case) for case in CASES})  # two at a time, or lazily under xdist


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES), ids=[f"{o}-{v or 'right'}" for o, v in sorted(CASES)])
def test_the_iris_report_is_exactly_the_stated_one(iris_reports, case):
    status, report, output = iris_reports[case]
    _, failed, not_checked, skipped = CASES[case]
    skipped = skipped | H_IDS
    assert report is not None, output
    found: dict[str, set[str]] = {}
    for row in report["requirements"]:
        found.setdefault(row["status"], set()).add(row["id"])
    assert found.get("failed", set()) == failed, (found, output)
    assert found.get("not-checked", set()) == not_checked, (found, output)
    assert found.get("skipped", set()) == skipped, (found, output)
    assert found.get("passed", set()) == {r.id for r in REQUIREMENTS} - failed - not_checked - skipped
    assert (status == 0) == (not failed and not not_checked), output
    reasons = {row["id"]: row.get("reason", "") for row in report["requirements"]}
    assert all("not the multiplier model" in reasons[r] for r in M_IDS), reasons


@pytest.mark.slow
@pytest.mark.parametrize("mutant, failed", [(None, set()), ("off-by-one-multiplier", {"B-MATCH"})])
def test_the_multiplier_is_one_model_among_others(tmp_path, mutant, failed):
    """The kit's own predictor gated like any model: against the kit's goldens as recorded answers (B-MATCH in
    place of M-*); a multiplier off by one fails B-MATCH."""
    cmd = f"{sys.executable} {ROOT / 'predictor' / 'reference.py'}" if mutant is None else \
        f"{sys.executable} {ROOT / 'tests' / 'mutants' / 'mutant.py'} {mutant}"
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", cmd, "--oracle", "recorded", "--fixtures-dir", str(ROOT / "fixtures"),
         "--conformance-profile", "dev", "--conformance-report", str(report), "--workspace-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    statuses: dict[str, set[str]] = {}
    for row in json.loads(report.read_text())["requirements"]:
        statuses.setdefault(row["status"], set()).add(row["id"])
    assert statuses.get("failed", set()) == failed, (statuses, done.stdout[-2000:])
    assert statuses.get("skipped") == M_IDS | H_IDS | {"B-SIGNATURE"} and "not-checked" not in statuses, statuses


MIXED = {"inputs": [{"name": "ids", "datatype": "INT64", "shape": [-1], "parameters": {"min": -5, "max": 5}},
                    {"name": "pixels", "datatype": "UINT8", "shape": [-1, 2, 2]},
                    {"name": "text", "datatype": "BYTES", "shape": [-1]},
                    {"name": "flags", "datatype": "BOOL", "shape": [3]},
                    {"name": "w", "datatype": "FP16", "shape": [-1], "parameters": {"min": 0.1, "max": 0.3}}],
         "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_requests_follow_the_signature(tmp_path, data):
    """Every request drawn from a signature follows it: all 13 datatype families, variable dimensions shared by
    the inputs, declared ranges (also ones a float type cannot hold exactly)."""
    signature = read_signature(signature_file(tmp_path, MIXED))
    body = data.draw(fromsignature.requests(signature, max_variable=6))
    request = inspect(json.loads(dumps(body)), REQUEST, "r.json")
    assert request.ok and follows_inputs(request, signature), (body, request.findings)


def test_good_large_and_off_signature_requests(tmp_path):
    signature = read_signature(signature_file(tmp_path, MIXED))
    for name, raw in fromsignature.good_requests(signature) + fromsignature.crowd(signature, 5):
        assert follows_inputs(inspect(json.loads(raw), REQUEST, name), signature), name
    large = inspect(json.loads(fromsignature.large_request(signature, 10_000)), REQUEST, "large.json")
    assert follows_inputs(large, signature) and large.tensors[0].shape[0] > 500
    for name, raw in fromsignature.off_signature(signature):
        request = inspect(json.loads(raw), REQUEST, name)
        assert request.ok and not follows_inputs(request, signature) and unservable(request, signature), name


BYTES_SIGNATURE = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]},
                             {"name": "n", "datatype": "INT8", "shape": [-1, 2], "parameters": {"min": -3, "max": 100}}],
                   "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}


def _edges(signature) -> dict[str, dict]:
    return {name: json.loads(raw) for name, raw in fromsignature.edge_requests(signature)}


def test_the_edges_of_the_iris_signature_are_always_sent():
    """0 rows, 1 row, a prime number of rows, the declared minimum and maximum: the same requests every time,
    each following the signature."""
    edges = _edges(SIGNATURE)
    assert edges == _edges(SIGNATURE)  # deterministic: nothing left to chance
    assert sorted(edges) == ["edge-0-rows.json", "edge-1-row.json", "edge-many-rows.json", "edge-max.json", "edge-min.json"]
    rows = {name: body["inputs"][0]["shape"][0] for name, body in edges.items()}
    assert rows["edge-0-rows.json"] == 0 and rows["edge-1-row.json"] == 1
    many = rows["edge-many-rows.json"]
    assert many > 100 and all(many % k for k in range(2, many))  # a prime: no round chunk size divides it
    assert set(edges["edge-min.json"]["inputs"][0]["data"]) == {0.0}
    assert set(edges["edge-max.json"]["inputs"][0]["data"]) == {10.0}
    for name, body in edges.items():
        assert follows_inputs(inspect(body, REQUEST, name), SIGNATURE), name


def test_the_edges_of_a_bytes_signature_are_always_sent(tmp_path):
    """Empty and non-ASCII BYTES elements, and the declared extremes of an integer input, beside the row edges."""
    signature = read_signature(signature_file(tmp_path, BYTES_SIGNATURE))
    edges = _edges(signature)
    assert edges == _edges(signature)
    assert {"edge-0-rows.json", "edge-1-row.json", "edge-many-rows.json", "edge-min.json", "edge-max.json",
            "edge-bytes-empty.json", "edge-bytes-non-ascii.json"} == set(edges)
    texts = {name: body["inputs"][0]["data"] for name, body in edges.items()}
    assert set(texts["edge-bytes-empty.json"]) == {""}
    assert all(t and not t.isascii() for t in texts["edge-bytes-non-ascii.json"])
    assert set(edges["edge-min.json"]["inputs"][1]["data"]) == {-3}
    assert set(edges["edge-max.json"]["inputs"][1]["data"]) == {100}
    for name, body in edges.items():
        assert follows_inputs(inspect(body, REQUEST, name), signature), name
    mixed = read_signature(signature_file(tmp_path, MIXED))  # FP16 extremes moved inside the declared range
    for name, raw in fromsignature.edge_requests(mixed):
        assert follows_inputs(inspect(json.loads(raw), REQUEST, name), mixed), name


@pytest.mark.slow
def test_a_crash_on_zero_rows_fails_whatever_hypothesis_draws(iris_model, tmp_path):
    """The 0-row request is not drawn by chance: under any seed the edge run (sent first) fails, and no
    generated batch runs after it, so the findings are the same lines every time."""
    seen = set()
    for seed in ("2", "3", "4"):
        report = tmp_path / f"report-{seed}.json"
        subprocess.run(
            [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
             "-k", "test_generated_from_the_signature", "--predictor-cmd", PREDICTOR, "--model", str(iris_model),
             "--oracle", "signature", "--conformance-profile", "dev", "--hypothesis-seed", seed,
             "--conformance-report", str(report), "--workspace-dir", str(tmp_path)],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**__import__("os").environ, "IRIS_VARIANT": "crash-on-zero-rows"})
        made = json.loads(report.read_text())
        failed = {row["id"]: tuple(row["failures"]) for row in made["requirements"] if row["status"] == "failed"}
        assert set(failed) == {"P-EVERY", "P-EXIT"} and made["stats"]["generated_requests"] == 0, made["stats"]
        seen.add(tuple(sorted(failed.items())))
    assert len(seen) == 1, seen


def test_the_cli_run_passes_the_any_model_options_on(iris_model, tmp_path, capsys):
    report = tmp_path / "report.json"
    code = main(["run", "--cmd", PREDICTOR, "--model", str(iris_model), "--oracle", "signature", "--rtol", "1e-4",
                 "--output-tolerance", "probabilities=1e-3", "-m", "manifest", "--report", str(report),
                 "--workspace-dir", str(tmp_path / "ws")])
    assert code == 5, capsys.readouterr().out[-2000:]  # -m manifest: the candidate never ran, no verdict about it
    made = json.loads(report.read_text())
    assert made["status"] == "nothing-checked"
    assert made["candidate"]["oracle"] == "signature"
    assert "- oracle (where the expected answers came from): `signature`" in report.with_suffix(".md").read_text()
    assert "oracle: signature (expected answers: none: format, declared signature" in capsys.readouterr().out
    rows = {row["id"]: row for row in made["requirements"]}
    assert rows["K-META"]["status"] == "passed"
    assert rows["K-GOLDEN"]["status"] == "skipped" and "no golden pairs for this model" in rows["K-GOLDEN"]["reason"]
    assert main(["run", "--cmd", PREDICTOR, "--model", str(iris_model), "-m", "manifest"]) == 2
    assert "no multiplier.txt, so not the multiplier model" in capsys.readouterr().err


def test_a_cli_run_with_every_test_skipped_is_not_passed(iris_model, tmp_path, capsys):
    """No goldens for this model, so ``-m golden`` skips every test and /bin/false never runs: exit 5 and one
    line saying nothing was checked, never PASSED."""
    code = main(["run", "--cmd", "/bin/false", "--model", str(iris_model), "--oracle", "signature", "-m", "golden",
                 "--workspace-dir", str(tmp_path / "ws")])
    out = capsys.readouterr().out
    assert code == 5, out[-2000:]
    assert out.splitlines()[-2] == "NOTHING CHECKED, NOT PASSED: the candidate never ran; exit status 5"
    assert "skipped" in out.splitlines()[-1]  # pytest's totals stay last


def test_the_report_lists_only_the_tests_that_can_check_a_requirement_for_this_model(iris_model, tmp_path):
    """For another model, a multiplier-only test (skipped: its requests are the multiplier's) is not listed among
    P-EVERY's tests; the test of any model that checked it is."""
    report = tmp_path / "report.json"
    code = main(["run", "--cmd", PREDICTOR, "--model", str(iris_model), "--oracle", "signature", "--profile", "dev",
                 "--report", str(report), "--workspace-dir", str(tmp_path / "ws"), "--",
                 "-k", "test_generated_batches or test_generated_from_the_signature"])
    assert code == 0
    rows = {row["id"]: row for row in json.loads(report.read_text())["requirements"]}
    for requirement in ("P-EVERY", "F-SCHEMA", "B-SIGNATURE"):
        tests = rows[requirement]["tests"]
        assert rows[requirement]["status"] == "passed", rows[requirement]
        assert [test.rsplit("::", 1)[1] for test in tests] == ["test_generated_from_the_signature"], tests
    assert rows["M-VALUE"]["status"] == "skipped" and rows["M-VALUE"]["tests"] == []


@pytest.fixture(scope="module")
def unsigned_iris(iris_model, tmp_path_factory) -> Path:
    """The iris model without its model-settings.json: a model known by its recorded goldens alone."""
    folder = tmp_path_factory.mktemp("iris-unsigned")
    for name in ("odahuflow.project.yaml", "weights.json"):
        shutil.copy(iris_model / name, folder / name)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("variant, failed", [("", set()), ("batch-mean", {"B-INDEPENDENT"})])
def test_a_model_known_by_its_goldens_alone(unsigned_iris, tmp_path, variant, failed):
    """No declared signature: the good requests are golden ones answered with values, and the crowd of the
    batch-independence test is the other golden requests, so an answer that depends on the batch still shows."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", PREDICTOR, "--model", str(unsigned_iris), "--oracle", "recorded", *FIXTURES,
         "--conformance-profile", "dev", "--hypothesis-seed", "1", "--conformance-report", str(report),
         "--workspace-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "IRIS_VARIANT": variant})
    statuses: dict[str, set[str]] = {}
    for row in json.loads(report.read_text())["requirements"]:
        statuses.setdefault(row["status"], set()).add(row["id"])
    assert statuses.get("failed", set()) == failed, (statuses, done.stdout[-2000:])
    assert statuses.get("skipped") == M_IDS | H_IDS | {"B-SIGNATURE"} and "not-checked" not in statuses, statuses


def test_record_refuses_responses_whose_request_is_a_guess(tmp_path):
    """Numbered responses that neither an id nor known content pairs with their requests: which request each
    answers is a guess, and a golden pair must not be one."""
    from conformance.record import RecordProblem, record

    mutant = f"{sys.executable} {ROOT / 'tests' / 'mutants' / 'mutant.py'} numbered-responses"
    candidate = from_options(cmd=mutant, model=ROOT / "model", oracle="recorded", workspace_base=tmp_path)
    requests = [(f"r{n}.json", dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [n]}]}))
                for n in range(3)]
    with pytest.raises(RecordProblem, match="which response answers r0.json is a guess"):
        record(candidate, requests, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_hung_candidate_leaves_what_cannot_apply_skipped(iris_model, tmp_path):
    """A candidate that never finishes: once the kit stops running it, the remaining tests are skipped as
    not-checked, but what cannot apply to the model (B-MATCH under --oracle signature, the M-* requirements)
    stays skipped, never a not-checked MUST."""
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import time\ntime.sleep(60)\n")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", f"{sys.executable} {sleeper}", "--model", str(iris_model), "--oracle", "signature",
         "--run-timeout", "1", "--conformance-profile", "dev", "--conformance-report", str(report),
         f"--workspace-dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    rows = {row["id"]: row for row in json.loads(report.read_text())["requirements"]}
    assert rows["P-TIMELY"]["status"] == "failed", done.stdout[-2000:]
    assert rows["B-MATCH"]["status"] == "skipped" and "no expected answers" in rows["B-MATCH"]["reason"], rows["B-MATCH"]
    assert all(rows[r]["status"] == "skipped" for r in M_IDS), {r: rows[r]["status"] for r in M_IDS}
    assert rows["B-DETERMINISTIC"]["status"] == "not-checked"
