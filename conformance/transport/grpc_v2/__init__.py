"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``): the kit's stubs, the codec between
its messages and the V2 JSON documents the judge reads, and the client.

The stubs (``open_inference_pb2``, ``open_inference_pb2_grpc``) are generated from ``open_inference.proto``, the
protocol's published interface written field for field, by ``regenerate.py`` (pinned generator and why: its
docstring). They are committed rather than taken from a peer's package (``tritonclient``, ``mlserver``,
``kserve``): any of those would pull a server framework or a client library of its own into the kit, pin
protobuf and grpcio versions of its own, and could change its copy of the interface with its releases.

Nothing here imports ``grpc`` or ``google.protobuf`` at import time: they are the optional ``grpc`` extra, loaded
when a gRPC target is given (:func:`require`). The plugin and the CLI import this package only then.
"""

from __future__ import annotations

from conformance.contract.problems import ConformanceProblem

#: What to install for a gRPC target: the extra, and what it holds (the generated code's lower bounds).
INSTALL = "pip install 'odahu-conformance[grpc]' (grpcio>=1.51.3, protobuf>=4.21.12)"


class GrpcUnavailable(ConformanceProblem):
    """grpcio or protobuf cannot be imported; one line saying what to install."""


def require() -> None:
    """Import grpcio, protobuf and the stubs once; :class:`GrpcUnavailable` (one line, what to install) when they
    cannot be imported."""
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401

        from conformance.transport.grpc_v2 import open_inference_pb2, open_inference_pb2_grpc  # noqa: F401
    except ImportError as exc:
        raise GrpcUnavailable(f"a gRPC target needs grpcio and protobuf ({exc.name or exc} cannot be imported): "
                              f"{INSTALL}") from None
