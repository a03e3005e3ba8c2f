"""Generated requests (hypothesis) against the oracle. One example is a whole batch served in one predictor run,
so the default profile checks over a thousand requests in a handful of runs.

When a batch fails, its first failing request is run again on its own and shrunk (conformance/shrink.py), and the
failure shows the shrunk request, its findings and a command line that reproduces that run on its kept workspace.
"""

from __future__ import annotations

import json

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
    multipliers = st.just(None) if candidate.model_is_embedded else st.sampled_from((None, None, *OTHER_MULTIPLIERS))
    failures = []

    @settings(max_examples=profile.runs, deadline=None, database=None, derandomize=False,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(batch=strategies.batches(min_size=profile.batch, max_size=profile.batch, allow_unknown_output=True,
                                    max_tensors=profile.max_tensors, max_elements=profile.max_elements),
           multiplier=multipliers)
    def one_run(batch, multiplier):
        requests = [(f"gen-{i:03}.json", dumps(request)) for i, request in enumerate(batch)]
        result = run_batch(candidate, requests, multiplier)
        conformance.generated_requests += len(requests)
        conformance.count("generated", len(requests))
        verdict.ran(*result.judgement.checked_at())
        for requirement, reason in result.judgement.blocked_at().items():
            verdict.not_checked(requirement, reason)
        if result.judgement.findings:
            failures.append((result, dict(requests), multiplier))
            raise AssertionError("found")  # ends the search; the report is made below, outside hypothesis

    try:
        one_run()
    except AssertionError:
        pass
    if not failures:
        verdict.check([])
        return
    batch, requests, multiplier = failures[0]
    findings = batch.judgement.findings
    if multiplier is not None:
        findings = multiplier_dependent(batch, candidate.model, conformance)
    verdict.check(findings, _reproduction(candidate, batch, requests, multiplier))


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *ANY_BEHAVIOUR_IDS, *RUN_IDS)
def test_generated_from_the_signature(conformance, verdict):
    """For a model other than the multiplier: batches of requests generated from its declared signature (every
    input, variable dimensions from 0 to 64, values in the declared range, flat or nested, ids, parameters,
    output selections). Every response is strict V2, follows the output signature (B-SIGNATURE) and, with a
    reference function, matches its answer within the tolerance (B-MATCH)."""
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
    failures = []

    @settings(max_examples=profile.runs, deadline=None, database=None, derandomize=False,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(batch=fromsignature.batches(signature, profile.batch))
    def one_run(batch):
        requests = [(f"gen-{i:03}.json", dumps(request)) for i, request in enumerate(batch)]
        result = run_batch(candidate, requests)
        conformance.generated_requests += len(requests)
        conformance.count("generated", len(requests))
        verdict.ran(*(r for r in result.judgement.checked_at() if r in ids))
        for requirement, reason in result.judgement.blocked_at().items():
            if requirement in ids:
                verdict.not_checked(requirement, reason)
        if result.judgement.findings:
            failures.append(result)
            raise AssertionError("found")

    try:
        one_run()
    except AssertionError:
        pass
    if not failures:
        verdict.check([])
        return
    batch = failures[0]
    failing = sorted({f.file for f in batch.judgement.findings if f.file in batch.judgement.requests})
    # the kept workspace holds the failing requests (input/) beside the responses and expected/
    verdict.check(batch.judgement.findings, batch.evidence(failing[0] if failing else None))


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
            candidate.discard(superseded.result)
            candidate.kept.remove(superseded.kept)
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
