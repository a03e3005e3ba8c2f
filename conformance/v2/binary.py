"""The binary tensor data extension (Triton's ``binary_tensor_data``, adopted by KServe) of the V2 REST protocol.

A binary body is a JSON header followed by the tensors' raw bytes; the HTTP header ``Inference-Header-Content-Length``
gives the JSON part's length. A binary tensor carries ``"parameters": {"binary_data_size": S}`` and no ``data``;
its S bytes are the flattened tensor, little-endian, row-major, without padding (BOOL one byte each, 0 or 1; FP16
IEEE half; BYTES each element a 4-byte little-endian length and its bytes), in the order of the tensors.

:func:`encode_request` turns a JSON V2 request into that form and asks for binary outputs;
:func:`decode_response` turns a binary answer back into the plain JSON document form (``data`` lists), which
:func:`conformance.v2.documents.inspect` and the oracles read unchanged, with every malformation of the answer as
a one-line problem (a JSON pointer and what is wrong).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from conformance.contract.findings import join
from conformance.contract.problems import ConformanceProblem
from conformance.v2.datatypes import DATATYPES
from conformance.v2.strictjson import JSONProblem, dumps, loads
from conformance.v2.tensors import decode

#: What a server lists in ``GET /v2`` ``extensions`` when it serves binary tensors.
EXTENSION = "binary_tensor_data"
#: The HTTP header giving the JSON part's length (looked up case-insensitively).
HEADER = "Inference-Header-Content-Length"
SIZE, ASK_ONE, ASK_ALL = "binary_data_size", "binary_data", "binary_data_output"
CONTENT_TYPE = "application/octet-stream"


def tensor_bytes(values: np.ndarray | list, datatype: str) -> bytes:
    """A tensor's flat ``values`` (as :func:`conformance.v2.tensors.decode` gives them) as binary data."""
    dt = DATATYPES[datatype]
    if dt.kind == "bytes":
        encoded = [str(v).encode("utf-8") for v in values]
        return b"".join(struct.pack("<I", len(item)) + item for item in encoded)
    if dt.kind == "bool":
        return np.asarray(values, dtype=bool).astype(np.uint8).tobytes()
    return np.asarray(values, dtype=dt.dtype).astype(dt.dtype.newbyteorder("<")).tobytes()


def byte_size(datatype: str, count: int) -> int | None:
    """How many bytes ``count`` elements of ``datatype`` take (None for BYTES, whose elements vary)."""
    dt = DATATYPES[datatype]
    if dt.kind == "bytes":
        return None
    return count * (1 if dt.kind == "bool" else dt.dtype.itemsize)


class BinaryProblem(ConformanceProblem):
    """A malformed binary answer: ``pointer`` (a JSON pointer into the answer's JSON part, "" for the whole) and
    one line saying what is wrong."""

    def __init__(self, pointer: str, message: str):
        super().__init__(message)
        self.pointer, self.message = pointer, message


def tensor_values(raw: bytes, datatype: str, count: int, where: str) -> list:
    """The ``count`` elements of ``datatype`` that ``raw`` holds, as JSON values (numbers, booleans, strings);
    :class:`BinaryProblem` when they do not fit (a BOOL byte other than 0 and 1, a BYTES element running past
    the end or not UTF-8, bytes left over)."""
    dt = DATATYPES[datatype]
    if dt.kind == "bytes":
        values, at = [], 0
        for index in range(count):
            if at + 4 > len(raw):
                raise BinaryProblem(where, f"BYTES element {index}: its 4-byte length runs past the tensor's {len(raw)} bytes")
            (length,) = struct.unpack_from("<I", raw, at)
            if at + 4 + length > len(raw):
                raise BinaryProblem(where, f"BYTES element {index}: {length} bytes run past the tensor's {len(raw)} bytes")
            try:
                values.append(raw[at + 4:at + 4 + length].decode("utf-8"))
            except UnicodeDecodeError:
                raise BinaryProblem(where, f"BYTES element {index} is not UTF-8 (the kit reads BYTES as text)") from None
            at += 4 + length
        if at != len(raw):
            raise BinaryProblem(where, f"{len(raw) - at} bytes left after the {count} BYTES elements")
        return values
    if dt.kind == "bool":
        array = np.frombuffer(raw, dtype=np.uint8)
        bad = np.flatnonzero(array > 1)
        if bad.size:
            raise BinaryProblem(where, f"BOOL element {int(bad[0])} is byte {int(array[bad[0]])}; BOOL is 0 or 1")
        return array.astype(bool).tolist()
    return np.frombuffer(raw, dtype=dt.dtype.newbyteorder("<")).astype(dt.dtype).tolist()


def encode_request(request: dict) -> tuple[bytes, int]:
    """``(body, JSON part's length)``: the V2 ``request`` (a parsed document whose inputs hold valid ``data``,
    flat or nested) with every input sent as binary data, and binary outputs asked for: per output
    (``"binary_data": true``) where the request selects its ``outputs``, else for all
    (``"binary_data_output": true``). ValueError (a :class:`~conformance.v2.tensors.DataProblem`) for data that
    does not fit its shape and datatype."""
    inputs, chunks = [], []
    for tensor in request["inputs"]:
        values = decode(tensor["data"], tensor["shape"], tensor["datatype"]).values
        raw = tensor_bytes(values, tensor["datatype"])
        chunks.append(raw)
        header = {key: value for key, value in tensor.items() if key != "data"}
        header["parameters"] = {**tensor.get("parameters", {}), SIZE: len(raw)}
        inputs.append(header)
    document = {**request, "inputs": inputs}
    if isinstance(request.get("outputs"), list):
        document["outputs"] = [{**wanted, "parameters": {**wanted.get("parameters", {}), ASK_ONE: True}}
                               for wanted in request["outputs"]]
    else:
        document["parameters"] = {**request.get("parameters", {}), ASK_ALL: True}
    head = dumps(document).rstrip(b"\n")
    return head + b"".join(chunks), len(head)


def with_size(body: bytes, length: int, index: int, size: int) -> tuple[bytes, int]:
    """A binary request (``body``, JSON part ``length``) with input ``index``'s ``binary_data_size`` made
    ``size`` and the bytes left as they are: ``(body, new JSON part's length)``."""
    document = loads(body[:length])
    assert isinstance(document, dict)
    document["inputs"][index]["parameters"][SIZE] = size
    head = dumps(document).rstrip(b"\n")
    return head + body[length:], len(head)


@dataclass
class Decoded:
    """A decoded answer: ``document`` in the plain JSON form (None when the answer could not be decoded),
    ``binary`` the names of the outputs that came as binary data, ``problems`` ``(pointer, message)``."""

    document: dict | None
    binary: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def decode_response(body: bytes, header: str | None) -> Decoded:
    """A V2 answer ``body`` with the ``Inference-Header-Content-Length`` ``header`` it came with (None: none),
    in the plain JSON form: each binary output's bytes read into ``data`` (flat) and its ``binary_data_size``
    taken out of its ``parameters`` (which go when nothing else is left in them). Without the header the body is
    plain JSON and no output may be binary. Every malformation is a problem: a header that is not a length within
    the body, a JSON part that is not a JSON object, ``data`` beside ``binary_data_size``, a size that is not a
    non-negative integer or does not fit the output's shape and datatype, sizes that do not add up to the bytes
    after the JSON."""
    if header is None:
        length = len(body)
    else:
        text = header.strip()
        if not text.isdigit() or not text.isascii():
            return Decoded(None, problems=[("", f"{HEADER} is {text[:40]!r}, not a number of bytes")])
        length = int(text)
        if length > len(body):
            return Decoded(None, problems=[("", f"{HEADER} is {length}, beyond the body's {len(body)} bytes")])
    try:
        document = loads(body[:length])
    except JSONProblem as problem:
        what = "the JSON part" if header is not None else f"no {HEADER} header, and the body"
        return Decoded(None, problems=[(problem.pointer, f"{what} is not strict JSON: {problem}")])
    if not isinstance(document, dict):
        return Decoded(None, problems=[("", "the JSON part is not a JSON object")])
    rest = memoryview(body)[length:]
    outputs = document.get("outputs")
    decoded = Decoded(document)
    at = 0
    plain = []
    for index, tensor in enumerate(outputs if isinstance(outputs, list) else []):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or SIZE not in parameters:
            plain.append(tensor)
            continue
        where = join("", "outputs", index)
        try:
            size = _size_of(tensor, parameters[SIZE], where, header is not None)
            if at + size > len(rest):
                raise BinaryProblem(join(where, "parameters", SIZE), f"{size} bytes from byte {at} run past the "
                                                                     f"{len(rest)} bytes after the JSON")
            values = tensor_values(bytes(rest[at:at + size]), tensor["datatype"], math.prod(tensor["shape"]), where)
        except BinaryProblem as problem:
            decoded.problems.append((problem.pointer, problem.message))
            decoded.document = None
            return decoded
        at += size
        kept = {key: value for key, value in parameters.items() if key != SIZE}
        plain.append({**{key: value for key, value in tensor.items() if key != "parameters"},
                      **({"parameters": kept} if kept else {}), "data": values})
        decoded.binary.append(str(tensor.get("name")))
    if at != len(rest):
        decoded.problems.append(("", f"the binary outputs' sizes add up to {at} bytes; {len(rest)} bytes follow "
                                     f"the JSON part"))
        decoded.document = None
        return decoded
    if isinstance(outputs, list):
        decoded.document = {**document, "outputs": plain}
    return decoded


def _size_of(tensor: dict, size: object, where: str, has_header: bool) -> int:
    """The ``binary_data_size`` of output ``tensor`` once it is known to fit; :class:`BinaryProblem` otherwise."""
    pointer = join(where, "parameters", SIZE)
    if not has_header:
        raise BinaryProblem(pointer, f"a binary output, but the answer has no {HEADER} header")
    if "data" in tensor:
        raise BinaryProblem(join(where, "data"), f"data beside {SIZE} (a binary output holds no data)")
    if type(size) is not int or size < 0:
        raise BinaryProblem(pointer, f"is {str(size)[:40]}, not a number of bytes")
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if datatype not in DATATYPES:
        raise BinaryProblem(join(where, "datatype"), f"{str(datatype)[:40]} is no V2 datatype")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise BinaryProblem(join(where, "shape"), "is not a list of non-negative integers")
    needed = byte_size(datatype, math.prod(shape))
    if needed is not None and size != needed:
        raise BinaryProblem(pointer, f"is {size}; shape {shape} of {datatype} takes {needed} bytes")
    return size
