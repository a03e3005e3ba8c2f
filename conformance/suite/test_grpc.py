"""G-*: what a V2 server owes over gRPC besides its answers (health and readiness); its ModelInfer answers are
judged by the other tests (statuses G-INFER, G-ERROR, G-TIMELY; contents F-*, M-*, B-*) when the batches go over
gRPC. Every test here is skipped without a gRPC target (``--grpc``) and for a batch predictor. grpcio is imported
inside the tests, never when the suite is collected."""

from __future__ import annotations

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
