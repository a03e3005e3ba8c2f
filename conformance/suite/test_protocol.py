"""P-*: how the image is run. Each test stages its own small batch (or a bad model) and runs the candidate the
way an InferenceJob pod does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pytest

from conformance.contract.findings import Finding
from conformance.generate import fromsignature
from conformance.judge import (
    creates_output_folder,
    finishes_in_time,
    isolates_unservable_requests,
    leaves_inputs_alone,
    output_of,
    refuses_unusable_model,
    works_offline,
)
from conformance.odahu.model import PROJECT_FILES
from conformance.run.local import LocalRunner
from conformance.suite.shared import (
    DELIVERED,
    Batch,
    answers,
    good_batch,
    good_requests,
    request,
    run_batch,
)
from conformance.v2.strictjson import dumps

if TYPE_CHECKING:
    from conformance.plugin import Suite, Verdict

OUTPUT_FOLDER_CASES = {"P-OUTDIR-absent": "does not exist", "P-OUTDIR-present": "exists",
                       "P-OUTDIR-parents": "and its parents do not exist"}


@pytest.mark.protocol
@pytest.mark.requirement("P-ENV")
def test_reads_the_operator_variables(conformance, verdict):
    """Model, requests and output folder come from ODAHU_MODEL_PATH, ODAHU_INPUT_PATH, ODAHU_OUTPUT_PATH and
    only those. In this run alone, the names the platform's docs use (which a cluster does not set) point to
    decoys: a decoy request and a decoy output folder. Touching a decoy is the evidence of reading them."""
    candidate = conformance.require_candidate()
    batch = run_batch(candidate, good_requests(conformance), decoys=True)  # P-ENV is judged there (shared.run_batch)
    if "P-ENV" not in batch.judgement.checked_at():
        verdict.not_checked("P-ENV", "the batch was not answered and no decoy was touched: which variables the "
                                     f"candidate reads is unknown; output: {output_of(batch.result)}")
    verdict.judge(batch.judgement, batch.evidence())


@pytest.mark.protocol
@pytest.mark.requirement("P-OUTDIR")
@pytest.mark.parametrize("case", sorted(OUTPUT_FOLDER_CASES))
def test_output_folder(conformance, verdict, case):
    """The output folder is created, with its parents, when absent (as on the platform), and used when it
    already exists. Decided differentially: the same batch answered in one case and not in the other."""
    candidate = conformance.require_candidate()
    if case == "P-OUTDIR-parents" and candidate.kind != "cmd":
        pytest.skip("an image's output path is fixed by the pod layout (its parent exists); checked for commands")
    absent = good_batch(conformance)  # the platform's case: the folder does not exist beforehand
    present = run_batch(candidate, good_requests(conformance), output_exists=True)
    if case == "P-OUTDIR-absent":
        baseline, tried = present, absent
    elif case == "P-OUTDIR-present":
        baseline, tried = absent, present
    else:
        baseline, tried = present, run_batch(candidate, good_requests(conformance), output_parents_missing=True)
    found = []
    if not answers(baseline):
        verdict.not_checked("P-OUTDIR", "the batch is not answered in the comparison case either: the output "
                                        "folder is not what stops it")
    else:
        verdict.ran("P-OUTDIR")
        found = creates_output_folder(baseline.result, tried.result, OUTPUT_FOLDER_CASES[case])
    verdict.judge(tried.judgement, tried.evidence(), extra=found, explained=("P-EVERY", "P-EXIT"))


@pytest.mark.protocol
@pytest.mark.requirement("P-EVERY", "P-NAME")
def test_one_response_per_request_under_its_name(conformance, verdict):
    """Names with dots, spaces and non-ASCII letters: each request NAME.json gets exactly one NAME.json."""
    names = ["plain.json", "with.dots.v2.json", "with space.json", "ünïcødé-名前.json", "UPPER.JSON.json"]
    batch = run_batch(conformance.require_candidate(), [request(n) for n in names])
    verdict.judge(batch.judgement, batch.evidence())


@pytest.mark.protocol
@pytest.mark.requirement("P-READONLY")
def test_input_and_model_unchanged(conformance, verdict):
    """The input and model folders are byte-for-byte the same after the run (they may be read-only mounts)."""
    batch = good_batch(conformance)
    verdict.judge(batch.judgement, batch.evidence())


@pytest.mark.protocol
@pytest.mark.requirement("P-EXIT")
def test_empty_input_folder(conformance, verdict):
    """An empty batch: exit 0, no response files."""
    batch = run_batch(conformance.require_candidate(), [])
    written = [Finding("P-EXIT", f.file, "", "written for an empty input folder")
               for f in batch.judgement.findings if f.requirement == "P-EVERY"]
    verdict.judge(batch.judgement, batch.evidence(), extra=written)


PROJECT = "model:\n  name: multiplier\n  version: '1'\n"
BAD_MODELS = {
    "no-multiplier": {"odahuflow.project.yaml": PROJECT},
    "two": {"multiplier.txt": "two\n", "odahuflow.project.yaml": PROJECT},
    "fraction": {"multiplier.txt": "2.5\n", "odahuflow.project.yaml": PROJECT},
    "empty": {"multiplier.txt": "", "odahuflow.project.yaml": PROJECT},
    "underscore": {"multiplier.txt": "1_0\n", "odahuflow.project.yaml": PROJECT},
    "arabic-indic-digit": {"multiplier.txt": "\u0663\n", "odahuflow.project.yaml": PROJECT},
    "inner-space": {"multiplier.txt": "1 0\n", "odahuflow.project.yaml": PROJECT},
    "no-project-file": {"multiplier.txt": "2\n"},
}


@pytest.mark.protocol
@pytest.mark.requirement("P-CONFIG")
@pytest.mark.parametrize("model", sorted(BAD_MODELS), ids=[f"P-CONFIG-{m}" for m in sorted(BAD_MODELS)])
def test_unusable_model(conformance, verdict, model):
    """A model the kit refuses (no multiplier.txt, content that is not a base-10 integer of ASCII digits, no
    odahuflow.project.yaml): non-zero exit, no response files (SHOULD: a one-line reason). Only shown for a candidate
    that answers the same batch with a good model (else refusing says nothing)."""
    candidate = conformance.require_candidate()
    if candidate.oracle is not None:
        verdict.not_applicable(["P-CONFIG"], "not the multiplier model: test_unusable_other_model stages its broken models")
    _refuses(conformance, verdict, BAD_MODELS[model], model)


#: How a model other than the multiplier is broken: its files (all but the project file) left out, emptied, or
#: replaced by text that is no model.
OTHER_BAD_MODELS = ("model-files-missing", "model-files-emptied", "model-files-garbage")


@pytest.mark.protocol
@pytest.mark.requirement("P-CONFIG")
@pytest.mark.parametrize("model", OTHER_BAD_MODELS, ids=[f"P-CONFIG-{m}" for m in OTHER_BAD_MODELS])
def test_unusable_other_model(conformance, verdict, model):
    """For a model other than the multiplier: its folder with only the project file, or with every other file
    emptied or replaced by a line of text: non-zero exit, no response files, a one-line reason (SHOULD) (decided against
    the same good requests answered with the real model)."""
    candidate = conformance.require_candidate()
    if candidate.oracle is None:
        verdict.not_applicable(["P-CONFIG"], "the multiplier model: test_unusable_model stages its broken models")
    folder = candidate.model.folder if not candidate.is_multiplier else None
    if candidate.model_is_fixed or folder is None:
        verdict.not_applicable(["P-CONFIG"], f"{candidate.model_is_fixed or 'the model is inside the image'}: the suite "
                                             "cannot stage a broken one")
        return
    files: dict[str, str | bytes] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or path.is_symlink():
            continue
        if relative in PROJECT_FILES:
            files[relative] = path.read_bytes()
        elif model == "model-files-emptied":
            files[relative] = b""
        elif model == "model-files-garbage":
            files[relative] = b"this is not a model\n"
    _refuses(conformance, verdict, files, model)


def _refuses(conformance: Suite, verdict: Verdict, files: Mapping[str, str | bytes], model: str) -> None:
    """Run the good requests with the broken model ``files``: P-CONFIG, shown only for a candidate that answers
    them with its real model."""
    candidate = conformance.require_candidate()
    if candidate.model_is_fixed:
        verdict.not_applicable(["P-CONFIG"], f"{candidate.model_is_fixed}: the suite cannot stage a broken one")
    result = candidate.run(good_requests(conformance), model_files=dict(files))
    findings = finishes_in_time(result) + leaves_inputs_alone(result)
    verdict.ran("P-TIMELY", "P-READONLY")
    if result.start_error:
        verdict.not_checked("P-CONFIG", f"the candidate did not start: {result.start_error}")
    elif not result.timed_out:
        if answers(good_batch(conformance)):
            verdict.ran("P-CONFIG")
            findings += refuses_unusable_model(result, model)
        else:
            verdict.not_checked("P-CONFIG", "the candidate does not serve a batch with a good model either: "
                                            "refusing a bad one shows nothing")
    if findings:
        candidate.keep(result)
    else:
        candidate.discard(result)
    verdict.check(findings, f"workspace kept: {result.workspace.root}" if findings else "")


@pytest.mark.protocol
@pytest.mark.requirement("P-ISOLATE", "P-EVERY", "H-ERROR", "G-ERROR")
def test_unservable_requests_do_not_stop_the_batch(conformance, verdict):
    """Unservable requests sorted before and between good ones: every request gets its response (errors for the
    unservable ones), and the good ones are right. P-ISOLATE is decided differentially: good requests answered
    alone but not beside unservable ones."""
    bad = [
        ("0-bool.json", dumps({"inputs": [{"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]}]})),
        ("0-count.json", dumps({"inputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [1, 2]}]})),
        ("1-overflow.json", dumps({"inputs": [{"name": "f", "shape": [1], "datatype": "FP16", "data": [60000]}]})),
        ("1-unknown.json", dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [1]}],
                                  "outputs": [{"name": "nope"}]})),
        ("b-float-in-int.json", dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]})),
    ]
    conformance.count("unservable", len(bad))
    _judge_among_good(conformance, verdict, bad)


@pytest.mark.protocol
@pytest.mark.requirement("P-ISOLATE", "P-EVERY", "H-ERROR", "G-ERROR")
def test_requests_the_platform_delivers_get_error_responses(conformance, verdict):
    """Requests the platform's lax validator passes on although they are not valid V2 (``{}``, ``null``, no
    inputs, a tensor missing a field, null fields, keys in other letter case, a repeated key, an unknown
    datatype, data nested deeper than its shape, a string that is not UTF-8, a lone surrogate escape), among good ones: each gets an error response and the good
    ones their answers. A crash or an early exit shows as P-ISOLATE (decided against the good requests run
    alone) and P-EXIT."""
    conformance.count("platform-delivered, not V2", len(DELIVERED))
    _judge_among_good(conformance, verdict, DELIVERED)


@pytest.mark.protocol
@pytest.mark.requirement("P-ISOLATE", "P-EVERY", "H-ERROR", "G-ERROR")
def test_requests_off_the_signature_get_error_responses(conformance, verdict):
    """For a model that declares its signature: valid V2 requests it cannot serve (a declared input missing, an
    input of another rank, a fixed dimension one larger, rows of the wrong width), among good ones: each gets an
    error response, and the good ones their answers."""
    candidate = conformance.require_candidate()
    if candidate.oracle is None or candidate.oracle.signature is None:
        verdict.not_applicable(["P-ISOLATE", "P-EVERY"], "no declared signature (the multiplier's unservable "
                                                         "requests are test_unservable_requests_do_not_stop_the_batch's)")
        return
    off = fromsignature.off_signature(candidate.oracle.signature)
    conformance.count("off the signature", len(off))
    _judge_among_good(conformance, verdict, off)


def _judge_among_good(conformance: Suite, verdict: Verdict, requests: list[tuple[str, bytes]]) -> None:
    """Run ``requests`` among the good ones and judge the run: P-ISOLATE against the good requests run alone,
    P-EVERY (and the rest) on the mixed batch. A mixed run killed at its timeout is P-ISOLATE's only when a
    control run of as many good requests finishes (the unservable ones made it hang: its P-TIMELY finding is
    then that consequence); otherwise the hang is P-TIMELY's alone and P-ISOLATE is not-checked there."""
    candidate = conformance.require_candidate()
    alone = good_batch(conformance)
    good = good_requests(conformance)
    if candidate.online:
        from conformance.run.online import OnlineRunner
        from conformance.suite.test_server import health_now

        assert isinstance(candidate.runner, OnlineRunner)
        unhealthy = health_now(candidate.runner, "before")
    mixed = run_batch(candidate, requests + good)
    if candidate.online:  # a server: each refusal is H-ERROR's, and it must serve on (no P-ISOLATE, P-EVERY)
        _judge_refusals_online(conformance, verdict, alone, mixed, unhealthy)
        return
    found: list[Finding] = []
    explained: tuple[str, ...] = ("P-EVERY",)
    if not answers(alone):
        verdict.not_checked("P-ISOLATE", "the good requests are not answered even alone")
    elif mixed.result.timed_out:
        control = None if candidate.hung is not None else run_batch(candidate, same_size(good, len(requests) + len(good)))
        if control is None or control.result.timed_out:
            verdict.not_checked("P-ISOLATE", "the batch with unservable requests was killed at its timeout, and so "
                                             "is one of as many good requests: the hang is P-TIMELY's")
        else:
            verdict.ran("P-ISOLATE")
            found = isolates_unservable_requests(alone.result, mixed.result, [n for n, _ in good], control=control.result)
            explained = ("P-EVERY", "P-TIMELY")
    else:
        verdict.ran("P-ISOLATE")
        found = isolates_unservable_requests(alone.result, mixed.result, [n for n, _ in good],
                                             alone.judgement.pairing, mixed.judgement.pairing)
    verdict.judge(mixed.judgement, mixed.evidence(), extra=found, explained=explained)


def _judge_refusals_online(conformance: Suite, verdict: Verdict, alone: Batch, mixed: Batch,
                           unhealthy: list[Finding]) -> None:
    """A V2 server's mixed run: every answer judged (a refusal's status and body are H-ERROR's), and the server
    still serving afterwards (H-ERROR; :func:`conformance.suite.test_server.serves_on`). A server that stopped
    answering during the run is the refusals' doing: H-ERROR, not also H-HEALTH."""
    from conformance.run.online import OnlineRunner
    from conformance.suite.test_server import refusal_requirement, serves_on

    runner = conformance.require_candidate().runner
    assert isinstance(runner, OnlineRunner)  # (a server's run)
    owed = refusal_requirement(runner)
    down = mixed.result.server_down
    blamed = any(f.requirement == owed and "stopped answering" in f.message for f in mixed.judgement.findings)
    extra = ([] if blamed else [Finding(owed, "(run)", "", f"it stopped serving beside refusals: {down}")]) if down \
        else serves_on(conformance, alone, unhealthy, "after refusals")
    verdict.judge(mixed.judgement, mixed.evidence(), extra=extra, explained=("H-HEALTH", "G-HEALTH"))


def same_size(good: list[tuple[str, bytes]], count: int) -> list[tuple[str, bytes]]:
    """``count`` requests made of ``good`` in turn, each under its own name: a control batch as big as a mixed one."""
    return [(f"control-{i:03d}-{good[i % len(good)][0]}", good[i % len(good)][1]) for i in range(count)]


@pytest.mark.protocol
@pytest.mark.requirement("P-OFFLINE")
def test_needs_no_network(conformance, verdict):
    """The candidate works without any network. Containers always run with --network none, so any served batch
    shows it; a local command is run here in an empty network namespace and compared with the same batch run
    with the network (the shared baseline)."""
    candidate = conformance.require_candidate()
    online = good_batch(conformance)
    if candidate.kind != "cmd":
        if answers(online):
            verdict.ran("P-OFFLINE")
        else:
            verdict.not_checked("P-OFFLINE", "no batch was served (containers always run without network)")
        verdict.judge(online.judgement, online.evidence())
        return
    original = candidate.runner
    cut_off = LocalRunner(original.argv, cwd=original.cwd, isolation=original.isolation, offline=True)
    reason = cut_off.preflight()  # the runner makes the network namespace (with its PID one where it can)
    if reason is not None:
        verdict.not_checked("P-OFFLINE", f"cannot cut a local command off the network here: {reason}")
        pytest.skip(f"cannot cut a local command off the network: {reason}")
    candidate.runner = cut_off
    try:
        offline = run_batch(candidate, good_requests(conformance))
    finally:
        candidate.runner = original
    found = []
    if answers(online):
        verdict.ran("P-OFFLINE")
        found = works_offline(offline.result, online.result)
    else:
        verdict.not_checked("P-OFFLINE", "the batch is not served with the network either")
    verdict.judge(offline.judgement, offline.evidence(), extra=found, explained=("P-EVERY", "P-EXIT"))
