"""H-BINARY: a server that lists the ``binary_tensor_data`` extension answers a request sent with binary inputs
and binary outputs asked exactly as it answers the same request in JSON (:mod:`conformance.v2.binary` is the
codec), and refuses a binary request whose sizes run past its body with a 4xx.

Every finding here is H-BINARY's: a server that botches only binary tensors fails nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.contract.findings import Finding, join
from conformance.contract.requirements import SHOULD
from conformance.oracle.compare import differing_elements
from conformance.text import quote
from conformance.transport.http import Answer, HttpClient
from conformance.v2 import binary as codec
from conformance.v2.datatypes import DATATYPES
from conformance.v2.documents import RESPONSE, Document, inspect, parse
from conformance.v2.strictjson import dumps, loads

REQUIREMENT = "H-BINARY"
NOT_LISTED = f"the server does not list {codec.EXTENSION} in GET /v2 extensions"


#: 15 float values: fractions (0.1 rounds differently in each precision), a negative zero, a power of two below
#: FP16's normal range; products by any moderate multiplier stay finite in FP16.
FLOATS = [0.1, -0.7, 1 / 3, -0.0, 0.0, 1.5, -2.25, 1e-3, 3.140625, -100.0, 0.2, 7.0, -0.3, 65.5, 2.0 ** -20]


def _values(datatype: str) -> list:
    """15 values of the numeric ``datatype``: for an integer one its extremes, zero, one and values between."""
    dt = DATATYPES[datatype]
    if dt.kind == "float":
        return list(FLOATS)
    step = (dt.maximum - dt.minimum) // 13
    return [dt.minimum, dt.maximum, 0, 1] + [dt.minimum + step * i for i in range(1, 12)]


def every_datatype_request() -> tuple[str, bytes]:
    """One request with an input of each of the multiplier's 11 datatypes, each of shape [3, 5] (15 elements:
    an odd count, so FP16, INT16 and UINT16 leave the next tensor's bytes unaligned), every output selected in
    reverse order: per output binary data asked, offsets that depend on every size before them, and an order
    of outputs that is not the order of inputs."""
    numeric = [name for name, dt in DATATYPES.items() if dt.numeric]
    inputs = [{"name": f"x-{name.lower()}", "shape": [3, 5], "datatype": name,
               "data": _values(name)} for name in numeric]
    request = {"id": "binary-every-datatype", "inputs": inputs,
               "outputs": [{"name": tensor["name"]} for tensor in reversed(inputs)]}
    return "binary-every-datatype.json", dumps(request)


@dataclass
class Outcome:
    """What the binary checks found, and how many requests' binary answers were compared with JSON ones."""

    findings: list[Finding] = field(default_factory=list)
    compared: int = 0
    refusal_seen: bool = False


def _said(answer: Answer) -> str:
    if answer.status is None:
        return answer.error or "no answer"
    body = answer.body.decode("utf-8", "replace")
    return f"status {answer.status}" + (f", body {quote(body, 100)}" if body.strip() else "")


def _post_binary(client: HttpClient, route: str, body: bytes, length: int) -> Answer:
    return client.request("POST", route, body, headers={"Content-Type": codec.CONTENT_TYPE,
                                                        codec.HEADER: str(length)})


def check(client: HttpClient, route: str, requests: list[tuple[str, bytes]]) -> Outcome:
    """Send each of ``requests`` (``(name, JSON bytes)``, requests the model serves) in JSON and in binary form
    to ``route``; where the JSON answer is an inference response, the binary answer must be 200, decode cleanly
    and hold the same outputs (names, datatypes, shapes, and values bit for bit), with each output asked binary
    coming binary (SHOULD). Then the first request with its last input's ``binary_data_size`` 8 bytes beyond
    the body must get a 4xx."""
    outcome = Outcome()
    where = f"POST {route} (binary)"
    for name, raw in requests:
        request = loads(raw)
        assert isinstance(request, dict)
        body, length = codec.encode_request(request)
        plain = client.post(route, raw)
        answer = _post_binary(client, route, body, length)
        served = parse(plain.body, RESPONSE, name) if plain.status == 200 else None
        if served is None or served.kind != RESPONSE or served.findings:
            continue  # nothing to compare with (the JSON answer's faults are the other requirements')
        outcome.compared += 1
        outcome.findings += _judge(name, where, answer, served, request)
    if requests:
        name, raw = requests[0]
        request = loads(raw)
        assert isinstance(request, dict)
        body, length = codec.encode_request(request)
        last = len(request["inputs"]) - 1
        size = loads(body[:length])["inputs"][last]["parameters"][codec.SIZE]  # type: ignore[index]
        body, length = codec.with_size(body, length, last, size + 8)
        answer = _post_binary(client, route, body, length)
        outcome.refusal_seen = answer.status is not None
        if answer.status is None or not 400 <= answer.status < 500:
            outcome.findings.append(Finding(REQUIREMENT, name, join("", "inputs", last, "parameters", codec.SIZE),
                                            f"{where}: {size + 8}, 8 bytes beyond the body: {_said(answer)}; "
                                            f"expected a 4xx"))
    return outcome


def _judge(name: str, where: str, answer: Answer, served: Document, request: dict) -> list[Finding]:
    """The findings of one binary ``answer`` against the JSON answer ``served`` to the same ``request``."""
    if answer.status != 200:
        return [Finding(REQUIREMENT, name, "", f"{where}: {_said(answer)}; the same request in JSON got 200")]
    decoded = codec.decode_response(answer.body, answer.headers.get(codec.HEADER))
    if decoded.document is None or decoded.problems:
        pointer, message = decoded.problems[0]
        return [Finding(REQUIREMENT, name, pointer, f"{where}: {message}")]
    document = inspect(decoded.document, RESPONSE, name)
    if document.findings:
        first = document.findings[0]
        return [Finding(REQUIREMENT, name, first.pointer, f"{where}: the decoded answer: {first.message}")]
    findings = _differences(name, where, document, served)
    asked = _asked_binary(request, document)
    missing = [output for output in asked if output not in decoded.binary]
    if missing:
        findings.append(Finding(REQUIREMENT, name, "", f"{where}: outputs {', '.join(map(quote, missing))} came as "
                                                       f"JSON data; binary data was asked", level=SHOULD))
    return findings


def _asked_binary(request: dict, answer: Document) -> list[str]:
    """The names of the answer's outputs the (JSON) ``request`` asked as binary data (as encode_request asks)."""
    if isinstance(request.get("outputs"), list):
        return [wanted["name"] for wanted in request["outputs"]]
    return [tensor.name for tensor in answer.tensors]


def _differences(name: str, where: str, got: Document, want: Document) -> list[Finding]:
    """The first difference between the decoded binary answer ``got`` and the JSON answer ``want``, as one
    finding (none when they hold the same outputs)."""
    shape = [(t.name, t.datatype, t.shape) for t in got.tensors]
    wanted = [(t.name, t.datatype, t.shape) for t in want.tensors]
    if shape != wanted:
        return [Finding(REQUIREMENT, name, "/outputs", f"{where}: outputs {_listed(shape)}; the JSON answer's are "
                                                       f"{_listed(wanted)}")]
    for index, (mine, theirs) in enumerate(zip(got.tensors, want.tensors)):
        differing = differing_elements(mine.values, theirs.values, mine.datatype)
        if differing.size:
            first = int(differing[0])
            return [Finding(REQUIREMENT, name, join("", "outputs", index, "data", first),
                            f"{where}: {differing.size} of {len(theirs.values)} elements of {quote(mine.name)} "
                            f"differ from the JSON answer's; the first is {_show(mine.values[first])}, the JSON "
                            f"answer's {_show(theirs.values[first])}")]
    return []


def _listed(tensors: list[tuple[str, str, list[int]]]) -> str:
    return "[" + ", ".join(f"{quote(n)} {d} {s}" for n, d, s in tensors) + "]"


def _show(value: object) -> str:
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)
