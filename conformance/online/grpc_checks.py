"""The ``G-*`` checks of one ModelInfer exchange with a V2 server over gRPC: what its status code and message say
about the protocol, apart from what the answer holds (the F-*, M-* and B-* checks judge that, unchanged).

:func:`answer_document` gives the judge the document a gRPC answer stands for: an ``OK`` answer's message decoded
into the JSON form (:mod:`conformance.transport.grpc_v2.codec`); any other code is a refusal, an error response
whose message is the status message. Nothing here imports grpcio or protobuf (the exchange holds the decoded
answer already).
"""

from __future__ import annotations

import numpy as np

from conformance.contract.findings import Finding
from conformance.contract.requirements import SHOULD
from conformance.oracle.expect import Expected
from conformance.text import quote
from conformance.transport.exchange import Exchange
from conformance.v2.datatypes import DATATYPES, unsigned_view
from conformance.v2.documents import ERROR, RESPONSE, Document, Tensor

#: The G-* requirements every run over gRPC shows, run-level and per exchange (G-AGREE: over both transports).
GRPC_RUN_IDS = ("G-INFER", "G-ERROR", "G-TIMELY", "G-HEALTH", "G-AGREE")
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



#: Findings of a document that leave its tensors unread or partly read: no agreement can be judged on it.
UNREAD = ("F-JSON", "F-SCHEMA", "F-COUNT", "F-TYPED")


def unreadable(document: Document) -> str | None:
    """Why ``document``'s tensors cannot be compared (its first format finding), or None."""
    found = next((f for f in document.findings if f.requirement in UNREAD), None)
    return None if found is None else f"{found.requirement} {found.pointer}: {found.message}"


def as_decoded(exchange: Exchange) -> Document:
    """A gRPC answer as the agreement compares it: a refusal's error document, or the decoded response with every
    tensor's elements cast to its datatype as they came (not checked: a non-finite FP16 is compared as its bits,
    not refused as F-TYPED would)."""
    if exchange.code != "OK" or exchange.decoded is None:
        return answer_document(exchange)
    tensors = []
    for index, tensor in enumerate(exchange.decoded.get("outputs", [])):
        data, datatype = tensor["data"], tensor["datatype"]
        values: object = data
        dt = DATATYPES.get(datatype)
        if dt is not None and dt.numpy is not None:
            try:
                values = (np.array(data, dtype=np.float64).astype(dt.dtype) if dt.kind == "float"
                          else np.array(data, dtype=dt.dtype))
            except (OverflowError, ValueError, TypeError):
                values = list(data)
        tensors.append(Tensor(tensor["name"], datatype, list(tensor["shape"]), values, False,  # type: ignore[arg-type]
                              f"/outputs/{index}"))
    return Document(exchange.name, RESPONSE, exchange.decoded, tensors)


def agree(name: str, rest: Document, grpc: Document, request_id: str | None = None) -> list[Finding]:
    """G-AGREE: the REST answer and the gRPC answer to request ``name`` are one answer: both refusals (their
    messages aside), or both responses with the same model name and version, the same id where the request has
    one (``request_id``: an id a server makes up for a request without one is F-ID's SHOULD part, not an answer),
    and the same outputs in the same order (names, datatypes, shapes, every element bit for bit in its datatype). The first difference is one
    finding naming the output and the element. The REST document must be readable (:func:`unreadable`); the gRPC
    one is as :func:`as_decoded` makes it."""
    def differ(pointer: str, message: str) -> list[Finding]:
        return [Finding("G-AGREE", name, pointer, message)]

    if rest.kind == ERROR or grpc.kind == ERROR:
        if rest.kind == grpc.kind:
            return []
        said = (rest if rest.kind == ERROR else grpc).body
        refusal = quote(str(said.get("error", "")) if isinstance(said, dict) else "", 100)
        if rest.kind == ERROR:
            return differ("", f"refused over REST ({refusal}), answered with values over gRPC")
        return differ("", f"answered with values over REST, refused over gRPC ({refusal})")
    rest_body, grpc_body = (d.body if isinstance(d.body, dict) else {} for d in (rest, grpc))
    for key in ("model_name", "model_version", "id") if request_id is not None else ("model_name", "model_version"):
        if rest_body.get(key) != grpc_body.get(key):
            return differ(f"/{key}", f"{grpc_body.get(key)!r} over gRPC, {rest_body.get(key)!r} over REST")
    if len(rest.tensors) != len(grpc.tensors):
        return differ("/outputs", f"{len(grpc.tensors)} outputs over gRPC, {len(rest.tensors)} over REST")
    for index, (a, b) in enumerate(zip(grpc.tensors, rest.tensors)):
        where = f"/outputs/{index}"
        for key in ("name", "datatype", "shape"):
            if getattr(a, key) != getattr(b, key):
                return differ(f"{where}/{key}", f"{getattr(a, key)!r} over gRPC, {getattr(b, key)!r} over REST")
        first = _first_difference(a.values, b.values, a.datatype)
        if first is not None:
            at = [int(i) for i in np.unravel_index(first, a.shape)] if a.shape and len(a.values) == np.prod(a.shape) \
                else [first]
            return differ(f"{where}/data/{first}", f"output {quote(a.name)} element {at}: "
                                                   f"{_element(a.values, first, a.datatype)} over gRPC, "
                                                   f"{_element(b.values, first, a.datatype)} over REST")
    return []


def _first_difference(a: object, b: object, datatype: str) -> int | None:
    """The flat index of the first element where ``a`` and ``b`` differ (bit for bit for floats), or None."""
    if isinstance(a, list) or isinstance(b, list):
        left, right = list(a), list(b)  # type: ignore[call-overload]
    else:
        dt = DATATYPES[datatype]
        left_array, right_array = np.asarray(a), np.asarray(b)
        if dt.kind == "float":
            left_array = left_array.view(unsigned_view(left_array.dtype))
            right_array = right_array.view(unsigned_view(right_array.dtype))
        if left_array.shape == right_array.shape:
            found = np.flatnonzero(left_array != right_array)
            return int(found[0]) if found.size else None
        left, right = left_array.tolist(), right_array.tolist()
    for index, (x, y) in enumerate(zip(left, right)):
        if x != y:
            return index
    return None if len(left) == len(right) else min(len(left), len(right))


def _element(values: object, index: int, datatype: str) -> str:
    """One element for a message: its value, and its bits for a float (``1.0 (0x3c00)``)."""
    if isinstance(values, list):
        return repr(values[index]) if index < len(values) else "(none)"
    array = np.asarray(values)
    if index >= array.size:
        return "(none)"
    value = array.reshape(-1)[index]
    if DATATYPES[datatype].kind == "float":
        bits = int(np.asarray(value).view(unsigned_view(array.dtype)))
        return f"{float(value)!r} (0x{bits:0{array.dtype.itemsize * 2}x})"
    return repr(value.item())
