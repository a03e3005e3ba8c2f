"""P-*: how the image is run. Each test stages its own small batch (or a bad model) and runs the candidate the
way an InferenceJob pod does."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conformance.contract.findings import Finding
from conformance.judge import tail
from conformance.run.local import LocalRunner
from conformance.suite.shared import run_batch
from conformance.v2.strictjson import dumps


def request(name: str, datatype: str = "INT32", data=(10, 20), **extra) -> tuple[str, bytes]:
    body = {"inputs": [{"name": "x", "shape": [len(data)], "datatype": datatype, "data": list(data)}], **extra}
    return name, dumps(body)


GOOD = [request("a.json", id="a"), request("b.json", "FP64", (1.5, -2.25)), request("c.json", "UINT8", (200, 7))]


@pytest.mark.protocol
@pytest.mark.requirement("P-ENV")
def test_reads_the_operator_variables(conformance, verdict):
    """Model, requests and output folder come from ODAHU_MODEL_PATH, ODAHU_INPUT_PATH, ODAHU_OUTPUT_PATH (and
    only those: the names in the platform's docs are not set)."""
    batch = run_batch(conformance.require_candidate(), GOOD)
    findings = batch.judgement.findings
    if not batch.result.output_exists or any(f.requirement == "P-EVERY" for f in findings):
        findings = findings + [Finding("P-ENV", "(run)", "", "no responses at ODAHU_OUTPUT_PATH; output: "
                                       + tail(batch.result.stderr or batch.result.stdout))]
    verdict.check(findings, batch.evidence())


OUTPUT_FOLDER_CASES = {"P-OUTDIR-absent": "does not exist", "P-OUTDIR-present": "exists",
                       "P-OUTDIR-parents": "and its parents do not exist"}


@pytest.mark.protocol
@pytest.mark.requirement("P-OUTDIR")
@pytest.mark.parametrize("case", sorted(OUTPUT_FOLDER_CASES))
def test_output_folder(conformance, verdict, case):
    """The output folder is created, with its parents, when absent (as on the platform), and used when it
    already exists."""
    candidate = conformance.require_candidate()
    if case == "P-OUTDIR-parents" and candidate.kind != "cmd":
        pytest.skip("an image's output path is fixed by the pod layout (its parent exists); checked for commands")
    batch = run_batch(candidate, GOOD, output_exists=case == "P-OUTDIR-present",
                      output_parents_missing=case == "P-OUTDIR-parents")
    findings = batch.judgement.findings
    if not batch.result.output_exists or not batch.result.json_files():
        findings = findings + [Finding("P-OUTDIR", "(run)", "", f"no responses written when the output folder "
                                       f"{OUTPUT_FOLDER_CASES[case]} beforehand; output: "
                                       + tail(batch.result.stderr or batch.result.stdout))]
    verdict.check(findings, batch.evidence())


@pytest.mark.protocol
@pytest.mark.requirement("P-EVERY", "P-NAME")
def test_one_response_per_request_under_its_name(conformance, verdict):
    """Names with dots, spaces and non-ASCII letters: each request NAME.json gets exactly one NAME.json."""
    names = ["plain.json", "with.dots.v2.json", "with space.json", "ünïcødé-名前.json", "UPPER.JSON.json"]
    batch = run_batch(conformance.require_candidate(), [request(n) for n in names])
    verdict.check(batch.judgement.findings, batch.evidence())


@pytest.mark.protocol
@pytest.mark.requirement("P-READONLY")
def test_input_and_model_unchanged(conformance, verdict):
    """The input and model folders are byte-for-byte the same after the run (they may be read-only mounts)."""
    batch = run_batch(conformance.require_candidate(), GOOD)
    verdict.check(batch.judgement.run_level(), batch.evidence())  # P-READONLY and the run's other findings


@pytest.mark.protocol
@pytest.mark.requirement("P-EXIT")
def test_empty_input_folder(conformance, verdict):
    """An empty batch: exit 0, no response files."""
    batch = run_batch(conformance.require_candidate(), [])
    findings = list(batch.judgement.findings)
    for entry in batch.result.entries:
        if entry.kind == "file":
            findings.append(Finding("P-EXIT", entry.path, "", "written for an empty input folder"))
    verdict.check(findings, batch.evidence())


BAD_MODELS = {
    "no-multiplier": {"odahuflow.project.yaml": "model:\n  name: multiplier\n  version: '1'\n"},
    "two": {"multiplier.txt": "two\n", "odahuflow.project.yaml": "model:\n  name: multiplier\n  version: '1'\n"},
    "fraction": {"multiplier.txt": "2.5\n", "odahuflow.project.yaml": "model:\n  name: multiplier\n  version: '1'\n"},
    "empty": {"multiplier.txt": "", "odahuflow.project.yaml": "model:\n  name: multiplier\n  version: '1'\n"},
}


@pytest.mark.protocol
@pytest.mark.requirement("P-CONFIG")
@pytest.mark.parametrize("model", sorted(BAD_MODELS), ids=[f"P-CONFIG-{m}" for m in sorted(BAD_MODELS)])
def test_unusable_model(conformance, verdict, model):
    """No multiplier.txt, or one that is not a base-10 integer: non-zero exit, a reason, no response files."""
    candidate = conformance.require_candidate()
    if candidate.model_is_embedded:
        pytest.skip("the model is inside the image: the suite cannot stage a broken one")
    result = candidate.run(GOOD, model_files=BAD_MODELS[model])
    findings = []
    if result.timed_out:
        findings.append(Finding("P-TIMELY", "(run)", "", f"killed after {result.duration:.1f} s"))
    elif result.start_error:
        findings.append(Finding("P-CONFIG", "(run)", "", f"the candidate did not run: {result.start_error}"))
    else:
        if result.exit_code == 0:
            findings.append(Finding("P-CONFIG", "(run)", "", f"exit status 0 with an unusable model ({model})"))
        if not (result.stderr.strip() or result.stdout.strip()):
            findings.append(Finding("P-CONFIG", "(run)", "", "no reason given on stderr or stdout"))
        for name in sorted(result.json_files()):
            findings.append(Finding("P-CONFIG", name, "", "response written although the model is unusable"))
    if findings:
        candidate.keep(result)
    else:
        candidate.discard(result)
    verdict.check(findings, f"workspace kept: {result.workspace.root}" if findings else "")


@pytest.mark.protocol
@pytest.mark.requirement("P-ISOLATE", "P-EVERY")
def test_unservable_requests_do_not_stop_the_batch(conformance, verdict):
    """Unservable requests sorted before and between good ones: every request gets its response (errors for the
    unservable ones), and the good ones are right."""
    bad = [
        ("0-bool.json", dumps({"inputs": [{"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]}]})),
        ("0-count.json", dumps({"inputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [1, 2]}]})),
        ("1-overflow.json", dumps({"inputs": [{"name": "f", "shape": [1], "datatype": "FP16", "data": [60000]}]})),
        ("1-unknown.json", dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [1]}],
                                  "outputs": [{"name": "nope"}]})),
        ("b-float-in-int.json", dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]})),
    ]
    batch = run_batch(conformance.require_candidate(), bad + GOOD)
    findings = list(batch.judgement.findings)
    answered = batch.result.json_files()
    good_missing = [name for name, _ in GOOD if name not in answered]
    if good_missing:
        findings.append(Finding("P-ISOLATE", "(run)", "", f"good requests left unanswered after unservable ones: "
                                f"{', '.join(good_missing)}"))
    verdict.check(findings, batch.evidence())


def _network_isolation() -> tuple[list[str] | None, str]:
    """A command prefix that runs a program without network (``unshare``), or None and why not."""
    if shutil.which("unshare") is None:
        return None, "unshare is not installed"
    for prefix in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"unshare failed: {exc}"
        if done.returncode == 0:
            return prefix, ""
    return None, f"unshare cannot make a network namespace here: {done.stderr.decode(errors='replace').strip()}"


@pytest.mark.protocol
@pytest.mark.requirement("P-OFFLINE")
def test_needs_no_network(conformance, verdict):
    """The candidate works without any network. Containers always run with --network none; a local command is
    run here in an empty network namespace and, if it fails there, again with the network to tell the two apart."""
    candidate = conformance.require_candidate()
    if candidate.kind != "cmd":
        batch = run_batch(candidate, GOOD)
        offline_failure = _failed_outright(batch)
    else:
        prefix, reason = _network_isolation()
        if prefix is None:
            pytest.skip(f"cannot cut a local command off the network: {reason}")
        original = candidate.runner
        candidate.runner = LocalRunner([*prefix, "--", *original.argv], cwd=original.cwd)
        try:
            batch = run_batch(candidate, GOOD)
        finally:
            candidate.runner = original
        offline_failure = _failed_outright(batch) and not _failed_outright(run_batch(candidate, GOOD))
    findings = batch.judgement.findings
    if offline_failure:
        findings = findings + [Finding("P-OFFLINE", "(run)", "", "without network the batch is not served (exit "
                                       f"status {batch.result.exit_code}, {len(batch.result.json_files())} responses)"
                                       f"; output: {tail(batch.result.stderr or batch.result.stdout)}")]
    verdict.check(findings, batch.evidence())


def _failed_outright(batch) -> bool:
    """The run served nothing: it did not exit 0, or wrote no response."""
    return batch.result.exit_code != 0 or not batch.result.json_files()
