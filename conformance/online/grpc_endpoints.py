"""The ``G-*`` checks of a V2 server's own gRPC calls besides ModelInfer: health and readiness. Each asks the
server through a :class:`~conformance.transport.grpc_v2.client.GrpcClient` and returns findings (empty: checked,
nothing found). grpcio and protobuf are imported when a check runs (a gRPC target was given), not before."""

from __future__ import annotations

from typing import Any

from conformance.contract.findings import Finding


def _said(answer: Any) -> str:
    """What a call got, for a finding: ``status NOT_FOUND: message`` or why no answer came."""
    if answer.code is None:
        return answer.error or "no answer"
    return f"status {answer.code}" + (f": {answer.details}" if answer.details else "")


def health(client: Any, when: str) -> list[Finding]:
    """G-HEALTH: ``ServerLive`` answers OK with ``live: true`` and ``ServerReady`` OK with ``ready: true`` (``when``
    says at which point of the run)."""
    from conformance.transport.grpc_v2 import open_inference_pb2 as pb

    findings = []
    for method, request, field in (("ServerLive", pb.ServerLiveRequest(), "live"),
                                   ("ServerReady", pb.ServerReadyRequest(), "ready")):
        answer = client.call(method, request)
        if answer.code != "OK":
            findings.append(Finding("G-HEALTH", f"gRPC {method}", "", f"{when}: {_said(answer)}; a serving server "
                                                                       f"answers OK"))
        elif not getattr(answer.response, field):
            findings.append(Finding("G-HEALTH", f"gRPC {method}", f"/{field}", f"{when}: {field} is false while the "
                                                                              f"server serves"))
    return findings
