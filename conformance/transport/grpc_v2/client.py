"""The kit's gRPC client for V2 servers (``inference.GRPCInferenceService``): one channel, bounded deadlines, never
an exception for network trouble (a :class:`GrpcAnswer` says what happened).

A call's answer is its status code (its name: ``OK``, ``INVALID_ARGUMENT``...), the status message and, for
``OK``, the response message. Two codes are no answer from the server: ``DEADLINE_EXCEEDED`` (the wait ran out:
``timed_out``) and ``UNAVAILABLE`` (nothing listens, the connection failed or was reset: ``error`` says how);
a server that answers UNAVAILABLE itself is taken at its word, as down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import grpc

from conformance.contract.problems import ConformanceProblem
from conformance.transport.grpc_v2 import open_inference_pb2 as pb
from conformance.transport.grpc_v2 import open_inference_pb2_grpc as pb_grpc

#: The largest message the client sends or takes (as the HTTP client's body limit).
MAX_MESSAGE = 1 << 30
#: The service's full name, as in the RPC paths.
SERVICE = "inference.GRPCInferenceService"


class GrpcTargetProblem(ConformanceProblem):
    """A ``HOST:PORT`` the client cannot use; one line."""


def parse_target(target: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` (``[::1]:PORT`` for IPv6); :class:`GrpcTargetProblem` otherwise."""
    text = target.strip()
    if "://" in text:
        raise GrpcTargetProblem(f"{target!r}: expected HOST:PORT (no scheme: gRPC is not a URL)")
    host, sep, port = text.rpartition(":")
    if not sep or not host or host in ("[]",):
        raise GrpcTargetProblem(f"{target!r}: expected HOST:PORT")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise GrpcTargetProblem(f"{target!r}: the port is not a number from 1 to 65535")
    return host.strip("[]"), int(port)


@dataclass
class GrpcAnswer:
    """What one call got: ``code`` (the status code's name; None when no answer came, then ``error`` says why in
    one line), the status ``details``, the ``response`` message (``OK`` only), how many ``seconds`` it took;
    ``timed_out`` when the deadline passed."""

    code: str | None
    details: str = ""
    response: Any = None
    seconds: float = 0.0
    error: str | None = None
    timed_out: bool = False


class GrpcClient:
    """Calls to one V2 gRPC server at ``target`` (``HOST:PORT``), each bounded by ``timeout`` seconds (or the
    ``timeout`` given to the call). One channel for every thread (gRPC multiplexes calls on it)."""

    def __init__(self, target: str, timeout: float = 60.0):
        self.host, self.port = parse_target(target)
        self.target = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.timeout = timeout
        self._channel = grpc.insecure_channel(self.target, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.enable_http_proxy", 0),  # a proxy from the environment is not the server under test
        ])
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    def call(self, method: str, request: Any, timeout: float | None = None) -> GrpcAnswer:
        """Call ``method`` (``ModelInfer``, ``ServerLive``...) with ``request``; never raises for what the network
        or the server did."""
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            response = getattr(self._stub, method)(request, timeout=max(limit, 0.001))
        except grpc.RpcError as exc:
            waited = time.monotonic() - started
            code = exc.code() if hasattr(exc, "code") else None
            details = (exc.details() if hasattr(exc, "details") else "") or ""
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return GrpcAnswer(None, details, seconds=waited, error=f"no answer within {waited:.1f} s",
                                  timed_out=True)
            if code is None or code == grpc.StatusCode.UNAVAILABLE:
                return GrpcAnswer(None, details, seconds=waited, error=_why(details))
            return GrpcAnswer(code.name, details, seconds=waited)
        return GrpcAnswer("OK", "", response, time.monotonic() - started)

    def infer(self, request: Any, timeout: float | None = None) -> GrpcAnswer:
        """``ModelInfer`` with the ``ModelInferRequest`` ``request``."""
        return self.call("ModelInfer", request, timeout)

    def live(self, timeout: float | None = None) -> GrpcAnswer:
        """``ServerLive``."""
        return self.call("ServerLive", pb.ServerLiveRequest(), timeout)

    def close(self) -> None:
        """Close the channel (idempotent)."""
        self._channel.close()


def _why(details: str) -> str:
    """One line for a call that reached no server: ``connection refused``, or gRPC's own words, shortened."""
    text = " ".join(details.split())
    if "Connection refused" in text or "connection refused" in text:
        return "connection refused"
    if "Connection reset" in text or "Socket closed" in text:
        return "the server closed the connection without an answer"
    return f"unavailable: {text[:200]}" if text else "unavailable"
