"""H-*: what a V2 REST server owes besides its answers: health, readiness, metadata, refusals of what it cannot
read, unknown models and versions. Every test here is skipped for a batch predictor (the H-* requirements apply
online only); the answers themselves are judged by the other tests, whatever the transport."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from conformance.contract.findings import Finding
from conformance.online import binary, endpoints
from conformance.online.checks import is_error_body
from conformance.run.online import OnlineRunner
from conformance.report import NOT_CHECKED_SKIP
from conformance.suite.shared import Batch, good_batch, good_requests
from conformance.text import quote
from conformance.transport.exchange import GRPC
from conformance.transport.http import HttpClient

if TYPE_CHECKING:
    from conformance.plugin import Suite, Verdict

#: Bodies no V2 server can read as a request: each gets a 4xx with {"error": string}, and the server serves on.
UNREADABLE: list[tuple[str, bytes]] = [
    ("not JSON", b"this is not JSON"),
    ("empty", b""),
    ("cut short", b'{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1,'),
    ("an array", b"[]"),
    ("a number", b"3"),
]


def server(suite: Suite) -> tuple[OnlineRunner, HttpClient]:
    """The candidate's runner and a client of its server (started by now: the suite's preflight started it)."""
    candidate = suite.require_candidate()
    runner = candidate.runner
    assert isinstance(runner, OnlineRunner)  # the H-* tests are skipped for a batch candidate (plugin.verdict)
    if candidate.hung is not None:
        pytest.skip("not checked: " + candidate.hung)
    return runner, runner.main_client()


@pytest.mark.online
@pytest.mark.requirement("H-HEALTH")
def test_live_and_ready(conformance, verdict):
    """``GET /v2/health/live`` and ``/v2/health/ready`` are 200 while the server serves: here, with its good
    requests answered."""
    _, client = server(conformance)
    good_batch(conformance)
    verdict.ran("H-HEALTH")
    verdict.check(endpoints.health(client, "while serving"))


@pytest.mark.online
@pytest.mark.requirement("H-READY")
def test_model_ready(conformance, verdict):
    """``GET /v2/models/NAME[/versions/V]/ready`` is 200 for the served model; a server the kit started
    (``--serve``) answered no inference with 200 while its ready route said it was not ready (kserve#2775)."""
    runner, client = server(conformance)
    verdict.ran("H-READY")
    found = endpoints.model_ready(client, runner.model_name, runner.model_version)
    early = runner.served.served_before_ready if runner.served is not None else None
    if early:  # (--serve: the kit sent a request it serves while the server said it was not ready)
        found.append(Finding("H-READY", "(start)", "", f"{early}: inference served before the server is ready"))
    verdict.check(found)


@pytest.mark.online
@pytest.mark.requirement("H-METADATA")
def test_metadata(conformance, verdict):
    """``GET /v2`` and ``GET /v2/models/NAME[/versions/V]`` are valid metadata naming the model; the model's
    version is among its ``versions`` (SHOULD); the inputs and outputs it lists agree with the model's declared
    signature (SHOULD), and every output an answer to a good request holds is among the listed outputs, when it
    lists any (SHOULD)."""
    runner, client = server(conformance)
    candidate = conformance.require_candidate()
    signature = candidate.oracle.signature if candidate.oracle is not None else None
    verdict.ran("H-METADATA")
    _, found = endpoints.server_metadata(client)
    model, more = endpoints.model_metadata(client, runner.model_name, runner.model_version, candidate.model.version,
                                           signature)
    found += more
    listed = {t["name"] for t in (model or {}).get("outputs") or []}
    if listed:
        good = good_batch(conformance)
        for name, response in good.judgement.responses.items():
            for tensor in response.tensors:
                if tensor.name not in listed:
                    found.append(Finding("H-METADATA", f"GET {endpoints.model_path(runner.model_name, runner.model_version)}",
                                         "/outputs", f"does not list {quote(tensor.name)}, which the answer to {name} "
                                                     f"holds", level="SHOULD"))
    verdict.check(found)


@pytest.mark.online
@pytest.mark.requirement("H-UNKNOWN")
def test_unknown_model_and_version(conformance, verdict):
    """A good request sent to a model the server does not serve, and to a version of the model it does not have,
    gets a 4xx with ``{"error": string}``."""
    runner, client = server(conformance)
    body = good_requests(conformance)[0][1]
    verdict.ran("H-UNKNOWN")
    verdict.check(endpoints.unknown_targets(client, runner.model_name, body))


@pytest.mark.online
@pytest.mark.requirement("H-ERROR")
def test_unreadable_bodies(conformance, verdict):
    """Bodies that are no request at all (not JSON, empty, cut short, not an object) each get a 4xx (SHOULD: 400)
    with ``{"error": string}``, never a 5xx; afterwards the server is ready and answers its good requests as it
    did before."""
    runner, client = server(conformance)
    before = good_batch(conformance)
    unhealthy = endpoints.health(client, "before")
    found = []
    for what, body in UNREADABLE:
        answer = client.post(runner.infer_route, body)
        where = f"POST {runner.infer_route} ({what})"
        if answer.status is None or not 400 <= answer.status < 500:
            said = answer.error if answer.status is None else f"status {answer.status}"
            found.append(Finding("H-ERROR", where, "", f"{said}; a body that is no request gets a 4xx (typically 400)"))
        else:
            if not is_error_body(answer.body):
                found.append(Finding("H-ERROR", where, "", f"status {answer.status} with a body that is not "
                                                           f"{{\"error\": string}}: {quote(answer.body.decode('utf-8', 'replace'), 100)}"))
            if answer.status != 400:
                found.append(Finding("H-ERROR", where, "", f"status {answer.status}; typically 400", level="SHOULD"))
    verdict.ran("H-ERROR")
    found += serves_on(conformance, before, unhealthy, "after bodies that are no request")
    verdict.check(found)


def health_now(runner: OnlineRunner, when: str) -> list[Finding]:
    """The server's health findings now, over the transport that carries the batches (H-HEALTH's REST routes,
    or G-HEALTH's ServerLive and ServerReady for a server given by its gRPC endpoint alone)."""
    if runner.transport == GRPC:
        from conformance.online import grpc_endpoints

        return grpc_endpoints.health(runner.main_grpc(), when)
    return endpoints.health(runner.main_client(), when)


def refusal_requirement(runner: OnlineRunner) -> str:
    """Whose a refusal is over the transport that carries the batches: H-ERROR (REST) or G-ERROR (gRPC)."""
    return "G-ERROR" if runner.transport == GRPC else "H-ERROR"


def serves_on(suite: Suite, before: Batch, unhealthy_before: list[Finding], when: str) -> list[Finding]:
    """H-ERROR (G-ERROR over gRPC): after refusals, the server answers its good requests again where it answered
    them ``before``, and its health routes that answered 200 before the refusals (those without a finding in
    ``unhealthy_before``: a route that was never healthy is H-HEALTH's alone) still do."""
    from conformance.suite.shared import run_batch

    candidate = suite.require_candidate()
    runner = candidate.runner
    assert isinstance(runner, OnlineRunner)
    if not before.judgement.pairing or candidate.hung is not None:
        return []
    was_unhealthy = {f.file for f in unhealthy_before}
    health = [f for f in health_now(runner, when) if f.file not in was_unhealthy]
    after = run_batch(candidate, good_requests(suite))
    owed = refusal_requirement(runner)
    found = [Finding(owed, f.file, f.pointer, f"{f.message} (it answered before the refusals)") for f in health]
    if after.result.server_down:
        found.append(Finding(owed, "(run)", "", f"{when}: {after.result.server_down}"))
    elif not after.judgement.pairing:
        found.append(Finding(owed, "(run)", "", f"{when}: the good requests are no longer answered"))
    return found


@pytest.mark.online
@pytest.mark.requirement("H-BINARY")
def test_binary_tensors(conformance, verdict):
    """Where ``GET /v2`` lists the ``binary_tensor_data`` extension: each good request (for the multiplier also
    one holding each of its 11 datatypes, shape [3, 5], its outputs selected in reverse order) sent with binary
    inputs and binary outputs asked gets 200, decodes cleanly and holds exactly the outputs of the JSON answer
    to the same request (values bit for bit), each output asked binary coming binary (SHOULD); a binary request
    whose ``binary_data_size`` runs past its body gets a 4xx. Skipped where the extension is not listed."""
    runner, client = server(conformance)
    metadata, _ = endpoints.server_metadata(client)  # (its faults are H-METADATA's)
    if metadata is None:
        pytest.skip(NOT_CHECKED_SKIP + "GET /v2 gave no valid server metadata (H-METADATA): whether the server "
                                       "lists binary_tensor_data is not known")
    if binary.codec.EXTENSION not in metadata["extensions"]:
        verdict.not_applicable(["H-BINARY"], binary.NOT_LISTED)
    candidate = conformance.require_candidate()
    requests = list(good_requests(conformance))
    if candidate.oracle is None:
        requests.append(binary.every_datatype_request())
    outcome = binary.check(client, runner.infer_route, requests)
    if outcome.compared or outcome.refusal_seen:
        verdict.ran("H-BINARY")
    if not outcome.compared:
        verdict.not_checked("H-BINARY", "no good request was served in JSON: no answer to compare binary ones with")
    verdict.check(outcome.findings)
