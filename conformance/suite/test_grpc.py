"""G-*: what a V2 server owes over gRPC besides its answers (health and readiness); its ModelInfer answers are
judged by the other tests (statuses G-INFER, G-ERROR, G-TIMELY; contents F-*, M-*, B-*) when the batches go over
gRPC. Every test here is skipped without a gRPC target (``--grpc``) and for a batch predictor. grpcio is imported
inside the tests, never when the suite is collected."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.run.online import OnlineRunner
from conformance.suite.shared import good_batch


@pytest.mark.online
@pytest.mark.requirement("G-HEALTH")
def test_grpc_live_and_ready(conformance, verdict):
    """``ServerLive`` and ``ServerReady`` answer OK with ``true`` while the server serves: here, with its good
    requests answered."""
    from conformance.online import grpc_endpoints

    candidate = conformance.require_candidate()
    runner = candidate.runner
    assert isinstance(runner, OnlineRunner) and runner.grpc is not None  # (skipped otherwise: plugin.verdict)
    if candidate.hung is not None:
        pytest.skip("not checked: " + candidate.hung)
    good_batch(conformance)
    verdict.ran("G-HEALTH")
    verdict.check(grpc_endpoints.health(runner.main_grpc(), "while serving"))


def _grpc_server(suite):
    """The candidate's runner, its gRPC client, and its REST client when it has a REST target (else None)."""
    candidate = suite.require_candidate()
    runner = candidate.runner
    assert isinstance(runner, OnlineRunner) and runner.grpc is not None  # (skipped otherwise: plugin.verdict)
    if candidate.hung is not None:
        pytest.skip("not checked: " + candidate.hung)
    rest = runner.main_client() if runner.transport != "grpc" else None
    return runner, runner.main_grpc(), rest


def _rest_json(rest: Any, path: str) -> dict | None:
    """A REST route's JSON object when it answers 200 with one (what the gRPC answer must agree with), else None
    (its own fault is the H-* requirements')."""
    import json

    answer = rest.get(path)
    try:
        body = json.loads(answer.body) if answer.status == 200 else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@pytest.mark.online
@pytest.mark.requirement("G-READY")
def test_grpc_model_ready(conformance, verdict):
    """``ModelReady`` answers OK with ``ready: true`` for the served model, and says what REST's
    ``GET /v2/models/NAME[/versions/V]/ready`` says when the server has a REST target too."""
    from conformance.online import grpc_endpoints
    from conformance.run.online import model_path

    runner, client, rest = _grpc_server(conformance)
    rest_ready = None
    if rest is not None:
        rest_ready = rest.get(model_path(runner.model_name, runner.model_version) + "/ready").status
    verdict.ran("G-READY")
    verdict.check(grpc_endpoints.model_ready(client, runner.model_name, runner.model_version, rest_ready))


@pytest.mark.online
@pytest.mark.requirement("G-METADATA")
def test_grpc_metadata(conformance, verdict):
    """``ServerMetadata`` and ``ModelMetadata`` answer OK, name the model, and say what REST's ``GET /v2`` and
    ``GET /v2/models/NAME[/versions/V]`` say when the server has a REST target too; SHOULD: ``versions`` holds
    the model's version."""
    from conformance.online import grpc_endpoints
    from conformance.run.online import model_path

    runner, client, rest = _grpc_server(conformance)
    candidate = conformance.require_candidate()
    rest_server = _rest_json(rest, "/v2") if rest is not None else None
    rest_model = _rest_json(rest, model_path(runner.model_name, runner.model_version)) if rest is not None else None
    verdict.ran("G-METADATA")
    verdict.check(grpc_endpoints.metadata(client, runner.model_name, runner.model_version, candidate.model.version,
                                          rest_server, rest_model))


@pytest.mark.online
@pytest.mark.requirement("G-UNKNOWN")
def test_grpc_unknown_model_and_version(conformance, verdict):
    """A good request sent over gRPC to a model the server does not serve, and to a version of the model it does
    not have, gets NOT_FOUND (or INVALID_ARGUMENT) with a message."""
    from conformance.online import grpc_endpoints
    from conformance.suite.shared import good_requests
    from conformance.transport.grpc_v2 import codec

    runner, client, _ = _grpc_server(conformance)
    try:
        request = codec.request_message(good_requests(conformance)[0][1], runner.model_name, runner.model_version)
    except codec.Inexpressible as problem:
        verdict.not_checked("G-UNKNOWN", f"the good request cannot go over gRPC: {problem}")
        return
    verdict.ran("G-UNKNOWN")
    verdict.check(grpc_endpoints.unknown_targets(client, runner.model_name, request))
