"""B-DETERMINISTIC and B-INDEPENDENT, for every model (the multiplier too): the same request gets the same
response twice in one batch and in two runs (small requests and large ones: a predictor may jitter only on big
batches), and a request's response does not depend on the other files in its batch. Decided by comparing responses with each other, not with an oracle, so they hold where no expected
answer exists (``--oracle signature``) and catch a difference that stays inside a tolerance.

One root cause, one requirement: a difference explained by findings on both responses (a wrong value against the
oracle in each run, a malformed response) is those findings' and is not counted again here. Where only one of
the two has a finding (right alone, wrong beside others or under concurrent requests), the difference is the
root cause and is this requirement's finding; the runs made here report nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from conformance.contract.findings import Finding
from conformance.generate import fromsignature, strategies
from conformance.oracle.match import response_difference
from conformance.suite.shared import (
    Batch,
    golden_names,
    good_batch,
    good_requests,
    read_requests,
    run_batch,
)
from conformance.v2.documents import ERROR, Document
from conformance.v2.strictjson import dumps

if TYPE_CHECKING:
    from conformance.plugin import Suite, Verdict

#: Requests beside the good ones in the batch-independence run.
CROWD = 40
#: Connections a V2 server gets them over at once.
CONCURRENCY = 8


def comparable(response: Document) -> bool:
    """Whether a response can be compared with another: strict JSON, an error response or one whose every
    output was decoded (a response missing only ``model_name`` still is; one whose data does not fit its shape
    is not)."""
    if any(f.requirement == "F-JSON" for f in response.findings) or not isinstance(response.body, dict):
        return False
    if response.kind == ERROR:
        return True
    outputs = response.body.get("outputs")
    return isinstance(outputs, list) and len(outputs) == len(response.tensors)


def compare(verdict: Verdict, requirement: str, pairs: list[tuple[str, Batch, str, Batch, str]]) -> list[Finding]:
    """Compare each ``(request, batch, its file there, other batch, its file there)``; record what could be
    compared; return the findings (the request named, the way it differs, and where)."""
    findings, compared = [], 0
    for name, one, here, other, there in pairs:
        first, second = one.judgement.responses.get(here), other.judgement.responses.get(there)
        if first is None or second is None or not comparable(first) or not comparable(second):
            continue  # no response, or one too malformed to compare: its own finding says so
        differs = response_difference(first, second)
        compared += 1
        if differs is None:
            continue
        if one.judgement.for_file(here) and other.judgement.for_file(there):
            continue  # explained by findings on both (e.g. a wrong value against the oracle in each run)
        findings.append(Finding(requirement, name, "/outputs", f"{differs} ({where(one, here)} vs {where(other, there)})"))
    if compared:
        verdict.ran(requirement)
    else:
        verdict.not_checked(requirement, "no two responses to the same request could be compared")
    return findings


def where(batch: Batch, name: str) -> str:
    return f"{name} in a run of {len(batch.judgement.requests)}"


def good_batch_again(suite: Suite) -> Batch:
    """A second run of the good requests alone (the first is :func:`good_batch`), made once for both tests."""
    if "good-again" not in suite.cache:
        suite.cache["good-again"] = run_batch(suite.require_candidate(), good_requests(suite))
    return suite.cache["good-again"]


def _again(name: str) -> str:
    return name[: -len(".json")] + "-again.json"


#: Rows (the first dimension, a prime) of the multiplier's large requests in the determinism test.
LARGE_ROWS = 101
#: The seed of their values.
SEED = 20240613


def large_requests(suite: Suite) -> list[tuple[str, bytes]]:
    """Larger requests of the candidate's model, the same every time, for the determinism test: for the
    multiplier, one request per float and 64-bit datatype of :data:`LARGE_ROWS` x 3 elements (nested and flat);
    for a model with a declared signature, its edge requests (``fromsignature.edge_requests``: 0, 1 and a prime
    number of rows, the declared extremes, BYTES edges); else its three largest other golden requests."""
    candidate = suite.require_candidate()
    if candidate.oracle is None:
        rng = np.random.default_rng(SEED)
        m = candidate.multiplier_model.multiplier
        made = []
        for i, datatype in enumerate(("FP32", "FP64", "FP16", "INT64", "UINT64")):
            values = strategies.random_values(datatype, LARGE_ROWS * 3, rng, m)
            body = {"id": f"large-{datatype}", "inputs": [strategies.tensor("x", datatype, [LARGE_ROWS, 3], values, nested=i % 2 == 0)]}
            made.append((f"large-{datatype}.json", dumps(body)))
        return made
    if candidate.oracle.signature is not None:
        return fromsignature.edge_requests(candidate.oracle.signature)
    fixtures = suite.fixtures
    chosen = {name for name, _ in good_requests(suite)}
    others = [n for n in golden_names(fixtures) if n not in chosen] if fixtures is not None else []
    return sorted(read_requests(fixtures / "input", others), key=lambda r: -len(r[1]))[:3] if fixtures and others else []


@pytest.mark.protocol
@pytest.mark.requirement("B-DETERMINISTIC")
def test_same_request_same_response(conformance: Suite, verdict: Verdict) -> None:
    """The good requests run alone twice; then the good and the large requests (:func:`large_requests`) beside a
    copy of each (another file name, the same bytes), that batch run twice: every pair of responses to the same
    request (in one batch, and across runs of the same batch) holds the same outputs (bit for bit). The batches
    compared across runs are the same files, so an answer that depends on the batch is not counted here."""
    good = good_requests(conformance)
    large = large_requests(conformance)
    conformance.count("large, repeated", len(large))
    first = good_batch(conformance)
    second = good_batch_again(conformance)
    both = good + large
    doubled_files = both + [(_again(name), raw) for name, raw in both]
    doubled = run_batch(conformance.require_candidate(), doubled_files)
    doubled_again = run_batch(conformance.require_candidate(), doubled_files)
    pairs = [(name, first, name, second, name) for name, _ in good]
    pairs += [(name, run, name, run, _again(name)) for run in (doubled, doubled_again) for name, _ in both]
    pairs += [(name, doubled, name, doubled_again, name) for name, _ in large]
    evidence = second.evidence() or doubled.evidence() or doubled_again.evidence()
    verdict.check(compare(verdict, "B-DETERMINISTIC", pairs), evidence)


@pytest.mark.protocol
@pytest.mark.requirement("B-INDEPENDENT")
def test_response_does_not_depend_on_the_batch(conformance: Suite, verdict: Verdict) -> None:
    """The good requests beside many others of the same model (named to sort before and after them) and its
    large requests (:func:`large_requests`): each response equals the one the request got in a batch of its own. Only requests answered the same in two runs
    alone are compared (a request whose answer changes from run to run is B-DETERMINISTIC's)."""
    candidate = conformance.require_candidate()
    good = good_requests(conformance)
    alone = good_batch(conformance)
    crowd: list[tuple[str, bytes]]
    if candidate.oracle is None:
        crowd = [(f"{'0z'[i % 2]}-crowd-{i:03}.json", dumps(body))
                 for i, (_, body) in enumerate(strategies.many_small_requests(CROWD))]
    elif candidate.oracle.signature is not None:
        crowd = fromsignature.crowd(candidate.oracle.signature, CROWD)
    else:  # the model's other recorded requests
        fixtures = conformance.fixtures
        chosen = {name for name, _ in good}
        names = [n for n in golden_names(fixtures) if n not in chosen][:CROWD] if fixtures is not None else []
        crowd = [(f"{'0z'[i % 2]}-crowd-{name}", raw)
                 for i, (name, raw) in enumerate(read_requests(fixtures / "input", names))] if fixtures and names else []
        if not crowd:
            verdict.not_checked("B-INDEPENDENT", "no other requests of this model to put beside the good ones "
                                                 "(no declared signature, no other golden requests)")
            return
    crowd += large_requests(conformance)
    conformance.count("crowd", len(crowd))
    # Online, "the rest of the batch" is the requests in flight at the same time: sent over several connections.
    mixed = run_batch(candidate, crowd + good, concurrency=CONCURRENCY if candidate.online else 1)
    again = good_batch_again(conformance)
    steady = {name for name, _ in good
              if name in alone.judgement.responses and name in again.judgement.responses
              and response_difference(alone.judgement.responses[name], again.judgement.responses[name]) is None}
    pairs = [(name, alone, name, mixed, name) for name, _ in good if name in steady]
    if not pairs and any(name in alone.judgement.responses and name in again.judgement.responses for name, _ in good):
        verdict.not_checked("B-INDEPENDENT", "the good requests are answered differently in two runs alone "
                                             "(B-DETERMINISTIC): whether the batch matters cannot be told")
        return
    verdict.check(compare(verdict, "B-INDEPENDENT", pairs), mixed.evidence())
