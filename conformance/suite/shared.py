"""What the suite's tests share: reading golden pairs, running a batch and judging it, keeping the evidence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.contract.findings import Finding
from conformance.generate import fromsignature
from conformance.generate.goldens import model_for
from conformance.judge import (
    BATCH_RUN_IDS,
    RUN,
    Judgement,
    judge_batch,
    reads_operator_variables,
)
from conformance.online.checks import ONLINE_RUN_IDS
from conformance.online.grpc_checks import GRPC_RUN_IDS
from conformance.odahu.model import Model, ModelProblem, OtherModel
from conformance.oracle.compare import differing_elements
from conformance.oracle.expect import expect
from conformance.report import NOT_CHECKED_SKIP
from conformance.run.candidate import Candidate
from conformance.run.workspace import RunResult
from conformance.text import short_integer
from conformance.v2.strictjson import dumps

if TYPE_CHECKING:
    from conformance.plugin import Suite, Verdict

#: Requirements every golden comparison checks (the response's format and the multiplier behaviour).
FORMAT_IDS = ("F-JSON", "F-SCHEMA", "F-COUNT", "F-TYPED")
BEHAVIOUR_IDS = ("F-ID", "F-MODEL", "M-EVERY", "M-SELECT", "M-SHAPE", "M-DTYPE", "M-VALUE", "M-LAYOUT",
                 "M-EMPTY", "M-FINITE", "M-UNSUPPORTED")
#: What a response to a golden or generated request shows for a model other than the multiplier.
ANY_BEHAVIOUR_IDS = ("F-ID", "F-MODEL", "B-SIGNATURE", "B-MATCH")


def inapplicable(candidate: Candidate, ids: tuple[str, ...], expected_answers: bool = True) -> dict[str, str]:
    """Which of ``ids`` cannot apply to ``candidate``'s model, with why: the M-* requirements to a model other
    than the multiplier; B-MATCH and B-SIGNATURE to the multiplier (whose answers the M-* requirements check
    exactly, and which declares no signature); B-SIGNATURE to a model without a declared signature; B-MATCH where
    no expected answers exist (``--oracle signature``, or requests without recorded answers:
    ``expected_answers`` False)."""
    reasons: dict[str, str] = {}
    oracle = candidate.oracle
    for requirement in ids:
        if oracle is None and requirement in ("B-MATCH", "B-SIGNATURE"):
            reasons[requirement] = ("the multiplier model: its answers are checked exactly (M-*)" if requirement == "B-MATCH"
                                    else "the multiplier model declares no signature (its outputs follow its inputs: M-*)")
        elif oracle is not None and requirement.startswith("M-"):
            reasons[requirement] = f"not the multiplier model (--oracle {oracle.spec})"
        elif oracle is not None and requirement == "B-SIGNATURE" and oracle.signature is None:
            reasons[requirement] = "the model declares no signature (model-settings.json in the model folder, or --signature)"
        elif oracle is not None and requirement == "B-MATCH" and (oracle.kind == "signature" or not expected_answers):
            reasons[requirement] = ("--oracle signature: no expected answers" if oracle.kind == "signature"
                                    else "no expected answers for these requests (recorded goldens only)")
    return reasons


def set_aside(verdict: Verdict, candidate: Candidate, ids: tuple[str, ...], expected_answers: bool = True) -> tuple[str, ...]:
    """Record the requirements of ``ids`` that cannot apply to ``candidate`` (:func:`inapplicable`) and return
    the rest, the ones the test goes on to check."""
    reasons = inapplicable(candidate, ids, expected_answers)
    for requirement, reason in reasons.items():
        verdict.not_applicable([requirement], reason, skip=False)
    return tuple(r for r in ids if r not in reasons)


def multiplier_only(verdict: Verdict, candidate: Candidate, ids: tuple[str, ...] | list[str]) -> None:
    """Skip a test made of the multiplier model's requests for another model, recording why for ``ids`` (the M-*
    ones cannot apply; the others are shown by the tests of any model)."""
    if candidate.oracle is not None:
        verdict.not_applicable(list(ids), f"not the multiplier model (--oracle {candidate.oracle.spec}): this test's "
                                          "requests and expected answers are the multiplier's")


#: Requirements every run shows: a batch run's (timeout, read-only input and model, names in the output folder,
#: exit, one response per request), or an online run's (statuses, timeouts, the server staying up; over gRPC too).
RUN_IDS = (*BATCH_RUN_IDS, *ONLINE_RUN_IDS, *GRPC_RUN_IDS)


def golden_names(fixtures: Path) -> list[str]:
    """The golden request names (``*.json`` in ``fixtures/input``), sorted; empty when the folder is missing."""
    folder = fixtures / "input"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def read_requests(folder: Path, names: list[str] | None = None) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the ``*.json`` files in ``folder`` (or just ``names``), sorted by name."""
    names = names if names is not None else sorted(p.name for p in folder.glob("*.json"))
    return [(name, (folder / name).read_bytes()) for name in names]


def staged(result: RunResult, requests: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """The requests the platform's input filter let through to the candidate."""
    skipped = {line.split(": ", 1)[0] for line in result.workspace.skipped}
    return {name: raw for name, raw in requests if name not in skipped}


class Batch:
    """One run of the candidate over a batch, judged; ``evidence()`` says where to look when it failed. A failed
    run's workspace is kept (within the candidate's limits) with ``expected/`` beside ``raw-output/``: the
    answers the kit expected, one file per request, so ``diff -r expected raw-output`` shows the problem."""

    def __init__(self, candidate: Candidate, result: RunResult, judgement: Judgement, model: Model | OtherModel):
        self.candidate, self.result, self.judgement, self.model = candidate, result, judgement, model
        self.kept: Path | None = None
        self.expected_written = False
        if judgement.findings:
            self.kept = candidate.keep(result)
            if self.kept is not None:
                self.expected_written = _write_expected(self.kept / "expected", judgement)
        else:
            candidate.discard(result)

    def evidence(self, name: str | None = None) -> str:
        """Diff for ``name`` (when there is one), the kept workspace and the command to reproduce the run."""
        lines = []
        if name and name in self.judgement.diffs:
            lines.append(self.judgement.diffs[name])
        if self.kept is not None:
            compare = (f" (diff -r {self.kept}/expected {self.result.workspace.output})" if self.expected_written
                       else " (the expected answers could not be written beside it)")
            lines.append(f"workspace kept: {self.kept}{compare}")
            lines.append(f"reproduce: {self.candidate.reproduce(self.result)}")
        elif self.judgement.findings:
            why = self.candidate.not_kept_reasons.get(self.result.workspace.root, "")
            lines.append(f"workspace not kept: {why}" if why else "workspace not kept")
        return "\n".join(lines)


def _write_expected(folder: Path, judgement: Judgement) -> bool:
    """Write the expected answers into ``folder`` of a kept workspace; False when the workspace refuses them (a
    candidate may have made it read-only or immutable): the run's findings stand, only this aid is missing."""
    try:
        folder.mkdir(exist_ok=True)
        for name, expected in judgement.expected.items():
            if expected.is_known:
                (folder / name).write_bytes(dumps(expected.document()) + b"\n")
    except OSError:
        return False
    return True


def run_batch(
    candidate: Candidate,
    requests: list[tuple[str, bytes]],
    multiplier: int | None = None,
    golden: dict[str, Path] | None = None,
    model: Model | OtherModel | None = None,
    **run_options: Any,
) -> Batch:
    """Run the candidate once over ``requests`` and judge every response (against ``golden`` responses where
    given, else the oracle) for the model with ``multiplier`` (None: the candidate's own), or for ``model``
    when given (a synthetic model staged with ``model_files=``, whose name and version are its own). A model
    other than the multiplier is judged with the candidate's oracle (B-* instead of M-*), as ``model`` when given
    (its copy staged under another name and version with ``model_changes=``).

    Fail fast where nothing can be learnt: once a run has timed out and the candidate also times out on the
    three small :data:`GOOD` requests, every later run is skipped as not-checked with the reason, instead of
    waiting out the timeout again and again."""
    if candidate.hung is not None:
        pytest.skip(NOT_CHECKED_SKIP + candidate.hung)
    result = candidate.run(requests, multiplier=multiplier, **run_options)
    if result.server_down:  # every later run would find nothing to talk to
        candidate.hung = result.server_down
    elif result.timed_out:
        good = good_for(candidate)
        small = len(requests) <= len(good)
        probe = result if small else candidate.run(good)
        if probe.timed_out:
            candidate.hung = (f"the candidate did not finish {len(good)} small requests within the run's timeout "
                              f"({probe.duration:.0f} s): further runs are not made")
        if probe is not result:
            candidate.discard(probe)
    judged: Model | OtherModel
    if candidate.oracle is None:
        judged = model if model is not None else candidate.model_with(multiplier)
        judgement = judge_batch(result, staged(result, requests), judged, golden)
    else:
        other = model if isinstance(model, OtherModel) else None
        oracle = candidate.oracle if other is None else replace(candidate.oracle, model=other)
        judged = other or candidate.model
        judgement = judge_batch(result, staged(result, requests), judged, golden, oracle=oracle)
    if result.workspace.decoys:  # read now: a workspace that is not kept is gone once the Batch exists
        env = reads_operator_variables(result, result.workspace.decoys)
        if env or judgement.pairing:
            judgement.ran("P-ENV", RUN, env)
    return Batch(candidate, result, judgement, judged)


def request(name: str, datatype: str = "INT32", data: tuple = (10, 20), **extra: object) -> tuple[str, bytes]:
    """A small one-tensor request file."""
    body = {"inputs": [{"name": "x", "shape": [len(data)], "datatype": datatype, "data": list(data)}], **extra}
    return name, dumps(body)


#: Three good requests the protocol tests run (alone, and beside others).
GOOD = [request("a.json", id="a"), request("b.json", "FP64", (1.5, -2.25)), request("c.json", "UINT8", (200, 7))]


def _tensor(**fields: object) -> dict:
    return {"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2], **fields}


def _without(key: str) -> dict:
    tensor = _tensor()
    del tensor[key]
    return tensor


#: Requests the platform's input step keeps (its Go unmarshal is lax) but that are not valid V2 requests: each
#: must get an error response (P-EVERY), and none may stop the batch (P-ISOLATE, P-EXIT). Names sort before,
#: between and after :data:`GOOD`.
DELIVERED: list[tuple[str, bytes]] = [
    ("0-empty-object.json", b"{}"),
    ("0-null.json", b"null"),
    ("0-no-inputs.json", b'{"inputs": []}'),
    ("0-tensor-without-data.json", dumps({"inputs": [_without("data")]})),
    ("0-tensor-without-shape.json", dumps({"inputs": [_without("shape")]})),
    ("bb-tensor-without-datatype.json", dumps({"inputs": [_without("datatype")]})),
    ("bb-tensor-without-name.json", dumps({"inputs": [_without("name")]})),
    ("bb-null-fields.json", b'{"id": null, "inputs": [{"name": null, "shape": null, "datatype": null, "data": null}]}'),
    ("d-keys-in-other-case.json", b'{"INPUTS": [{"Name": "x", "SHAPE": [1], "DataType": "INT32", "DATA": [1]}]}'),
    ("d-repeated-key.json", b'{"inputs": [], "inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]}'),
    ("d-unknown-datatype.json", dumps({"inputs": [_tensor(datatype="FP8")]})),
    ("d-nested-deeper-than-shape.json", dumps({"inputs": [_tensor(data=[[1], [2]])]})),
    # Not UTF-8 (a Latin-1 note) and a lone surrogate escape: Go's unmarshal makes them U+FFFD and keeps the file
    # byte for byte; not JSON text for the strict reading (RFC 8259 8.1, 8.2), so an error response is owed.
    ("d-not-utf8-in-a-string.json", b'{"note": "caf\xe9", "inputs": [' + dumps(_tensor()).strip() + b"]}"),
    ("d-lone-surrogate-id.json", b'{"id": "\\ud800", "inputs": [' + dumps(_tensor()).strip() + b"]}"),
]


def good_for(candidate: Candidate) -> list[tuple[str, bytes]]:
    """Three small requests the candidate's model serves: :data:`GOOD` for the multiplier; for another model,
    three made from its declared signature, else three of its golden requests answered with values, else
    :data:`GOOD` (a model that declares nothing: then they may well get error responses)."""
    oracle = candidate.oracle
    if oracle is None:
        return GOOD
    if oracle.signature is not None:
        return fromsignature.good_requests(oracle.signature)
    return oracle.golden_requests[:3] or GOOD


def good_requests(suite: Suite) -> list[tuple[str, bytes]]:
    """:func:`good_for` the suite's candidate."""
    return good_for(suite.require_candidate())


def good_batch(suite: Suite) -> Batch:
    """The one run of the candidate over its good requests (:func:`good_requests`) alone, as the platform runs
    it: the baseline the differential protocol checks compare with."""
    if "good" not in suite.cache:
        suite.cache["good"] = run_batch(suite.require_candidate(), good_requests(suite))
    return suite.cache["good"]


def answers(batch: Batch) -> bool:
    """Whether the run answered at least one request of its batch (a baseline the differential checks can
    compare with: "answered here, not there")."""
    return bool(batch.judgement.pairing)


def golden_batch(suite: Suite) -> Batch:
    """The one run of the candidate over every golden request, shared by the golden and schema tests."""
    if "golden" not in suite.cache:
        candidate = suite.require_candidate()
        fixtures = suite.fixtures
        if fixtures is None:
            pytest.skip("no golden pairs for this model: record some (fixtures record) and give --fixtures-dir")
        names = golden_names(fixtures)
        if not candidate.is_multiplier:  # recorded answers, compared within the tolerance
            golden = {name: fixtures / "output" / name for name in names if (fixtures / "output" / name).is_file()}
            suite.cache["golden"] = run_batch(candidate, read_requests(fixtures / "input", names), golden=golden)
            return suite.cache["golden"]
        try:
            fixture_model = model_for(fixtures)
        except ModelProblem as problem:
            raise RuntimeError(f"--fixtures {fixtures}: {problem}") from None
        multiplier = None
        if fixture_model.multiplier != candidate.multiplier_model.multiplier:
            if candidate.model_is_fixed:
                pytest.skip(f"the fixtures need multiplier {short_integer(fixture_model.multiplier)}; "
                            f"{candidate.model_is_fixed}: it cannot be changed")
            multiplier = fixture_model.multiplier
        golden = {name: fixtures / "output" / name for name in names if (fixtures / "output" / name).is_file()}
        suite.cache["golden"] = run_batch(candidate, read_requests(fixtures / "input", names), multiplier, golden)
    return suite.cache["golden"]


def multiplier_dependent(batch: Batch, own: Model, suite: Suite) -> list[Finding]:
    """``batch``'s findings (a run with another multiplier staged), with each M-* finding turned into
    M-MULTIPLIER when the candidate demonstrably does not read the multiplier (:func:`ignores_multiplier`) and
    the response is exactly what the model's ``own`` multiplier gives. Any other difference keeps its own ID: a
    multiplier read wrongly (off by one, wrapped) is M-VALUE or M-FINITE, even where it happens to coincide
    with the model's own."""
    judgement = batch.judgement
    if not any(f.requirement.startswith("M-") for f in judgement.findings) or not ignores_multiplier(suite):
        return list(judgement.findings)
    stale = {name for name in judgement.responses if _answers_with(judgement, name, own)}
    assert isinstance(batch.model, Model)  # a run with another multiplier staged: the multiplier model
    # a response that is exactly the own multiplier's answer owes every M-* difference to the multiplier: a
    # value, an overflow refused (blamed on M-EMPTY or M-LAYOUT by the tensor it was in) or one not refused
    return [
        Finding("M-MULTIPLIER", f.file, f.pointer, f"with multiplier {short_integer(batch.model.multiplier)} the response is what "
                f"multiplier {short_integer(own.multiplier)} gives ({f.requirement}: {f.message})")
        if f.requirement.startswith("M-") and f.file in stale else f
        for f in judgement.findings
    ]


#: The staged multipliers of the probe: two, so that a multiplier read wrongly cannot match the model's own at both.
PROBE_MULTIPLIERS = (-3, 5)


def ignores_multiplier(suite: Suite) -> bool:
    """Whether the candidate answers the good requests (which hold non-zero values) with what the model's own
    multiplier gives under two different staged multipliers: the evidence that it does not read the multiplier
    at run time. Two probe runs, made once per session and only when a value difference needs explaining."""
    if "ignores-multiplier" not in suite.cache:
        candidate = suite.require_candidate()
        verdicts = []
        for multiplier in PROBE_MULTIPLIERS:
            probe = run_batch(candidate, GOOD, multiplier)
            answered = list(probe.judgement.responses)
            verdicts.append(bool(answered) and all(_answers_with(probe.judgement, name, candidate.multiplier_model)
                                                   for name in answered))
        suite.cache["ignores-multiplier"] = all(verdicts)
    return bool(suite.cache["ignores-multiplier"])


def _answers_with(judgement: Judgement, name: str, model: Model) -> bool:
    """Whether the response to ``name`` holds exactly the outputs ``model`` would give."""
    response = judgement.responses[name]
    request = judgement.requests.get(name)
    if request is None:
        return False
    other = expect(request, model, name)
    if response.kind == "error" or other.is_error:
        return response.kind == "error" and other.is_error
    if other.outputs is None or len(other.outputs) != len(response.tensors):
        return False
    return all(got.name == want.name and got.datatype == want.datatype and list(got.shape) == list(want.shape)
               and not differing_elements(got.values, want.values, got.datatype).size
               for got, want in zip(response.tensors, other.outputs))
