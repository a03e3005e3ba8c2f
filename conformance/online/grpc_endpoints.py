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


#: A model name and a version no server serves (as the REST checks' :mod:`conformance.online.endpoints`).
NOT_SERVED = "odahu-conformance-no-such-model"
NO_VERSION = "odahu-conformance-no-such-version"
#: The codes an unknown model or version may get: the protocol names none; KServe and MLServer say NOT_FOUND,
#: Triton INVALID_ARGUMENT ("Request for unknown model"), and both blame the request.
UNKNOWN_CODES = ("NOT_FOUND", "INVALID_ARGUMENT")


def unknown_targets(client: Any, name: str, request: Any) -> list[Finding]:
    """G-UNKNOWN: a good ``ModelInferRequest`` (``request``) sent to a model the server does not serve, and to
    a version of the model it does not have, gets NOT_FOUND or INVALID_ARGUMENT with a message (never OK, never a
    server fault)."""
    findings = []
    for model, version in ((NOT_SERVED, ""), (name, NO_VERSION)):
        sent = type(request)()
        sent.CopyFrom(request)
        sent.model_name, sent.model_version = model, version
        where = f"gRPC ModelInfer {model}" + (f" version {version}" if version else "")
        answer = client.infer(sent)
        if answer.code not in UNKNOWN_CODES:
            findings.append(Finding("G-UNKNOWN", where, "", f"{_said(answer)}; expected NOT_FOUND (or "
                                                            f"INVALID_ARGUMENT) for a model or version the server "
                                                            f"does not have"))
        elif not answer.details.strip():
            findings.append(Finding("G-UNKNOWN", where, "", f"status {answer.code} with no message saying why"))
    return findings


def model_ready(client: Any, name: str, version: str | None, rest_ready: int | None) -> list[Finding]:
    """G-READY: ``ModelReady`` answers OK with ``ready: true`` for the served model, and says what REST's ready
    route says when one was asked (``rest_ready``: its status; 200 is ready, any other answer not)."""
    from conformance.transport.grpc_v2 import open_inference_pb2 as pb

    where = f"gRPC ModelReady {name}" + (f" version {version}" if version else "")
    answer = client.call("ModelReady", pb.ModelReadyRequest(name=name, version=version or ""))
    if answer.code != "OK":
        return [Finding("G-READY", where, "", f"{_said(answer)}; the served model's readiness is OK, ready: true")]
    if not answer.response.ready:
        said = f" (REST's ready route answers {rest_ready})" if rest_ready is not None else ""
        return [Finding("G-READY", where, "/ready", f"false for the served model{said}")]
    if rest_ready is not None and rest_ready != 200:
        return [Finding("G-READY", where, "/ready", f"true, while REST's ready route answers {rest_ready}: the two "
                                                    f"transports disagree")]
    return []


def metadata(client: Any, name: str, version: str | None, model_version: str | None,
             rest_server: dict | None, rest_model: dict | None) -> list[Finding]:
    """G-METADATA: ``ServerMetadata`` answers OK with a name and a version, ``ModelMetadata`` OK naming the model
    (its tensors with a name and a datatype); both say what REST's ``GET /v2`` and ``GET /v2/models/NAME`` say
    when those were read (``rest_server``, ``rest_model``: the same name, version and extensions, those of one
    transport only left out (:data:`ONE_TRANSPORT_EXTENSIONS`); the same name, versions, platform and tensors).
    SHOULD: ``versions``, when given, holds the model's version."""
    from conformance.transport.grpc_v2 import open_inference_pb2 as pb

    findings = []
    server = client.call("ServerMetadata", pb.ServerMetadataRequest())
    if server.code != "OK":
        findings.append(Finding("G-METADATA", "gRPC ServerMetadata", "", f"{_said(server)}; expected OK"))
    else:
        said = {"name": server.response.name, "version": server.response.version,
                "extensions": _transport_free(server.response.extensions)}
        for key in ("name", "version"):
            if not said[key]:
                findings.append(Finding("G-METADATA", "gRPC ServerMetadata", f"/{key}", "is empty"))
        rest_said = None if rest_server is None else {
            **rest_server, "extensions": _transport_free(rest_server.get("extensions") or [])}
        findings += _agrees("gRPC ServerMetadata", said, rest_said, ("name", "version", "extensions"))
    where = f"gRPC ModelMetadata {name}" + (f" version {version}" if version else "")
    model = client.call("ModelMetadata", pb.ModelMetadataRequest(name=name, version=version or ""))
    if model.code != "OK":
        return findings + [Finding("G-METADATA", where, "", f"{_said(model)}; expected OK and the model's metadata")]
    got = model.response
    said = {"name": got.name, "versions": list(got.versions), "platform": got.platform,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in got.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in got.outputs]}
    if got.name != name:
        findings.append(Finding("G-METADATA", where, "/name", f"is {got.name!r}; the model is {name!r}"))
    if model_version is not None and said["versions"] and model_version not in said["versions"]:
        findings.append(Finding("G-METADATA", where, "/versions", f"{said['versions']!r} does not hold the model's "
                                                                  f"version {model_version!r}", level="SHOULD"))
    if rest_model is not None:  # (REST may leave out what proto3 cannot: versions, inputs, outputs as [])
        rest = {**rest_model, "versions": rest_model.get("versions") or [],
                **{side: [{"name": t.get("name"), "datatype": t.get("datatype"), "shape": t.get("shape")}
                          for t in rest_model.get(side) or []] for side in ("inputs", "outputs")}}
        findings += _agrees(where, said, rest, ("name", "versions", "platform", "inputs", "outputs"))
    return findings


#: Extensions of one transport only: HTTP's binary tensor data (gRPC carries raw contents natively). A server may
#: list it over REST alone (the kit's reference) or over both (Triton).
ONE_TRANSPORT_EXTENSIONS = frozenset({"binary_tensor_data"})


def _transport_free(extensions: Any) -> list:
    """``extensions`` without those of one transport only, in their order."""
    return [name for name in extensions if name not in ONE_TRANSPORT_EXTENSIONS]


def _agrees(where: str, grpc_said: dict, rest_said: dict | None, keys: tuple[str, ...]) -> list[Finding]:
    """A finding for each of ``keys`` whose value differs between the gRPC answer and the REST one."""
    if rest_said is None:
        return []
    return [Finding("G-METADATA", where, f"/{key}", f"{grpc_said[key]!r} over gRPC, {rest_said.get(key)!r} over REST")
            for key in keys if grpc_said[key] != rest_said.get(key)]
