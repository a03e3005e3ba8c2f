"""The ``G-*`` checks of one ModelInfer exchange with a V2 server over gRPC: what its status code and message say
about the protocol, apart from what the answer holds (the F-*, M-* and B-* checks judge that, unchanged).

:func:`answer_document` gives the judge the document a gRPC answer stands for: an ``OK`` answer's message decoded
into the JSON form (:mod:`conformance.transport.grpc_v2.codec`); any other code is a refusal, an error response
whose message is the status message. Nothing here imports grpcio or protobuf (the exchange holds the decoded
answer already).
"""

from __future__ import annotations

from conformance.contract.findings import Finding
from conformance.contract.requirements import SHOULD
from conformance.oracle.expect import Expected
from conformance.transport.exchange import Exchange
from conformance.v2.documents import ERROR, Document

#: The G-* requirements every run over gRPC shows, run-level and per exchange.
GRPC_RUN_IDS = ("G-INFER", "G-ERROR", "G-TIMELY", "G-HEALTH")
#: Status codes that say the server failed, not the request: never the answer to a request it cannot serve.
SERVER_FAULTS = ("UNKNOWN", "INTERNAL", "DATA_LOSS", "UNIMPLEMENTED", "UNAVAILABLE", "DEADLINE_EXCEEDED")


def answered_in_time(exchange: Exchange) -> list[Finding]:
    """G-TIMELY: the call was answered before its deadline (what was left of the run's timeout)."""
    if exchange.timed_out:
        return [Finding("G-TIMELY", exchange.name, "", f"{exchange.where}: {exchange.error} (the run's timeout, "
                                                       f"sent as the call's deadline)")]
    return []


def readable(exchange: Exchange) -> list[Finding]:
    """G-INFER: an ``OK`` answer holds a response whose tensors can be read (raw contents of the size the shape
    and datatype need, elements in their datatype's field, one way for all tensors)."""
    if exchange.code == "OK" and exchange.malformed is not None:
        return [Finding("G-INFER", exchange.name, "", f"{exchange.where}: OK with a response that cannot be read: "
                                                      f"{exchange.malformed}")]
    return []


def refused_well(exchange: Exchange, expected: Expected) -> list[Finding]:
    """G-ERROR: a refusal comes with a code that blames the request and a message that says why (SHOULD:
    ``INVALID_ARGUMENT``, the protocol's words leave the code open); never a server-fault code
    (:data:`SERVER_FAULTS`) for a request the model cannot serve. A request the model serves that is refused
    is not judged here: the behaviour checks blame the refusal."""
    code, name, where = exchange.code, exchange.name, exchange.where
    if code is None or code == "OK":
        return []
    details = exchange.details
    if code in SERVER_FAULTS:
        if expected.is_error or not expected.is_known:
            return [Finding("G-ERROR", name, "", f"{where}: status {code} (a server fault) for a request the model "
                                                 f"cannot serve; expected INVALID_ARGUMENT; message: {details!r}")]
        return []
    findings = []
    if not details.strip():
        findings.append(Finding("G-ERROR", name, "", f"{where}: status {code} with no message saying why"))
    if code != "INVALID_ARGUMENT":
        findings.append(Finding("G-ERROR", name, "", f"{where}: status {code}; a request the model cannot serve "
                                                     f"gets INVALID_ARGUMENT", level=SHOULD))
    return findings


def answer_document(exchange: Exchange) -> Document:
    """The document a gRPC answer stands for, its findings filed under the request's name: an ``OK`` answer
    decoded (checked as any V2 response); any other code a refusal, ``{"error": its message}`` (the code's name
    when the message is empty: the message is G-ERROR's to judge)."""
    if exchange.code == "OK":
        return exchange.document(exchange.name)
    details = exchange.details
    return Document(exchange.name, ERROR, {"error": details if details.strip() else f"(status {exchange.code})"})

