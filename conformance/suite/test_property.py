"""Generated requests (hypothesis) against the oracle. One example is a whole batch served in one predictor run,
so the default profile checks over a thousand requests in a handful of runs.

When a batch fails, its first failing request is run again on its own and shrunk (conformance/shrink.py), and the
failure shows the shrunk request, its findings and a command line that reproduces that run on its kept workspace.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conformance.generate import fromsignature, strategies
from conformance.generate.shrink import shrink
from conformance.run.candidate import Candidate
from conformance.suite.shared import (
    ANY_BEHAVIOUR_IDS,
    BEHAVIOUR_IDS,
    FORMAT_IDS,
    RUN_IDS,
    Batch,
    multiplier_dependent,
    multiplier_only,
    run_batch,
    set_aside,
)
from conformance.text import short_integer
from conformance.v2.strictjson import dumps

if TYPE_CHECKING:
    from conformance.plugin import Suite, Verdict

T = TypeVar("T")

#: Besides the model's own, generated batches run with these multipliers (staged copies of the model).
OTHER_MULTIPLIERS = (-3, 0, 7, 2**31 + 3)


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS)
def test_generated_batches(conformance, verdict):
    """Batches of generated requests over all 13 datatypes, scalar and zero-size shapes, nested and flat data,
    64-bit extremes, ids, parameters and output selections: every response equals the oracle's answer."""
    candidate = conformance.require_candidate()
    multiplier_only(verdict, candidate, (*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS))
    profile = conformance.profile
    multipliers = st.just(None) if candidate.model_is_fixed else st.sampled_from((None, None, *OTHER_MULTIPLIERS))
    generated = strategies.batches(min_size=profile.batch, max_size=profile.batch, allow_unknown_output=True,
                                   max_tensors=profile.max_tensors, max_elements=profile.max_elements)

    def one_run(batch: list[dict], multiplier: int | None) -> tuple[Batch, dict[str, bytes], int | None] | None:
        requests = [(f"gen-{i:03}.json", dumps(request)) for i, request in enumerate(batch)]
        result = run_batch(candidate, requests, multiplier)
        _record(conformance, verdict, result, len(requests))
        return (result, dict(requests), multiplier) if result.judgement.findings else None

    failure = first_failure(profile.runs, one_run, batch=generated, multiplier=multipliers)
    if failure is None:
        verdict.check([])
        return
    batch, requests, multiplier = failure
    findings = batch.judgement.findings
    if multiplier is not None:
        findings = multiplier_dependent(batch, candidate.multiplier_model, conformance)
    verdict.check(findings, _reproduction(candidate, batch, requests, multiplier))


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *ANY_BEHAVIOUR_IDS, *RUN_IDS)
def test_generated_from_the_signature(conformance, verdict):
    """For a model other than the multiplier: first the requests at the edges of its declared signature, the
    same every time (``fromsignature.edge_requests``: 0 rows, 1 row, a prime number of rows, the declared minimum
    and maximum, empty and non-ASCII BYTES) in one run, then batches of requests generated from it (every
    input, variable dimensions from 0 to 64, values in the declared range, flat or nested, ids, parameters,
    output selections). Every response is strict V2, follows the output signature (B-SIGNATURE) and, with a
    reference function, matches its answer within the tolerance (B-MATCH). A failing edge run is reported as it
    is (no generated batch runs after it), so what it shows never depends on the seed."""
    candidate = conformance.require_candidate()
    oracle = candidate.oracle
    if oracle is None:
        verdict.not_applicable([*ANY_BEHAVIOUR_IDS[2:]], "the multiplier model: test_generated_batches sends its requests")
        return  # (not_applicable skips)
    if oracle.signature is None:
        verdict.not_applicable([*FORMAT_IDS, *ANY_BEHAVIOUR_IDS, *RUN_IDS], "the model declares no signature "
                               "(model-settings.json in the model folder, or --signature): no requests can be generated")
        return
    ids = set_aside(verdict, candidate, (*FORMAT_IDS, *ANY_BEHAVIOUR_IDS, *RUN_IDS), expected_answers=oracle.reference is not None)
    signature = oracle.signature
    profile = conformance.profile

    def one_run(batch: list[dict]) -> Batch | None:
        requests = [(f"gen-{i:03}.json", dumps(request)) for i, request in enumerate(batch)]
        result = run_batch(candidate, requests)
        _record(conformance, verdict, result, len(requests), ids)
        return result if result.judgement.findings else None

    edges = fromsignature.edge_requests(signature)
    conformance.count("signature edges", len(edges))
    edge_batch = run_batch(candidate, edges)
    verdict.ran(*(r for r in edge_batch.judgement.checked_at() if r in ids))
    for requirement, reason in edge_batch.judgement.blocked_at().items():
        if requirement in ids:
            verdict.not_checked(requirement, reason)
    batch: Batch | None = edge_batch
    if not edge_batch.judgement.findings:
        batch = first_failure(profile.runs, one_run, batch=fromsignature.batches(signature, profile.batch))
    if batch is None:
        verdict.check([])
        return
    failing = sorted({f.file for f in batch.judgement.findings if f.file in batch.judgement.requests})
    # the kept workspace holds the failing requests (input/) beside the responses and expected/
    verdict.check(batch.judgement.findings, batch.evidence(failing[0] if failing else None))


def first_failure(examples: int, run: Callable[..., T | None], **drawn: st.SearchStrategy) -> T | None:
    """Let hypothesis draw ``examples`` sets of arguments from the ``drawn`` strategies and call ``run`` with
    each (one predictor run); return the first thing ``run`` returns that is not None (a failing batch, which
    ends the search), or None. Each example is a whole batch, so there is no shrinking here: the failing
    request is shrunk on its own afterwards."""
    found: list[T] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(**drawn)
    def one(**arguments: object) -> None:
        failure = run(**arguments)
        if failure is not None:
            found.append(failure)
            raise AssertionError("found")  # ends the search; the report is made by the caller, outside hypothesis

    try:
        one()
    except AssertionError:
        if not found:
            raise
    return found[0] if found else None


def _record(conformance: Suite, verdict: Verdict, batch: Batch, sent: int, ids: tuple[str, ...] | None = None) -> None:
    """Count a generated batch and record what its judgement checked and could not check (of ``ids``, when
    given)."""
    conformance.generated_requests += sent
    conformance.count("generated", sent)
    verdict.ran(*(r for r in batch.judgement.checked_at() if ids is None or r in ids))
    for requirement, reason in batch.judgement.blocked_at().items():
        if ids is None or requirement in ids:
            verdict.not_checked(requirement, reason)


def _reproduction(candidate: Candidate, batch: Batch, requests: dict[str, bytes], multiplier: int | None) -> str:
    """The first failing request shrunk (run alone, cut down while it still fails with the same requirement),
    and the command that reproduces the smallest failing run on its kept workspace."""
    failing = sorted({f.file for f in batch.judgement.findings if f.file in requests})
    lines = [f"multiplier: {short_integer(candidate.model_with(multiplier).multiplier)}"]
    if not failing:
        lines.append(batch.evidence())
        return "\n".join(lines)
    name = failing[0]
    requirement = next(f.requirement for f in batch.judgement.findings if f.file == name)
    smallest: dict = {}

    def still_fails(request: dict) -> bool:
        alone = run_batch(candidate, [(name, dumps(request))], multiplier)
        fails = any(f.requirement == requirement for f in alone.judgement.findings)
        superseded = smallest.get("batch") if fails else alone
        if fails:
            smallest["batch"] = alone
        if superseded is not None and superseded.kept is not None:  # keep one workspace: the smallest failure
            candidate.release(superseded.result)
        return fails

    original = json.loads(requests[name])
    if not still_fails(original):
        lines.append(f"first failing request {name} (passes alone: the failure needs the rest of the batch): "
                     f"{_short(requests[name])}")
        lines.append(batch.evidence(name))
        return "\n".join(lines)
    shrunk, runs = shrink(original, still_fails)
    alone = smallest["batch"]
    lines.append(f"first failing request {name}, shrunk in {runs} runs, still failing {requirement}: "
                 f"{_short(dumps(shrunk))}")
    lines.append("its findings: " + "; ".join(f.line() for f in alone.judgement.findings[:3]))
    lines.append(alone.evidence(name))
    return "\n".join(lines)


def _short(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text if len(text) <= 2000 else text[:2000] + "..."
