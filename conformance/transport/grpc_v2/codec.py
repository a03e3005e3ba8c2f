"""V2 documents (the JSON form the judge reads) <-> the gRPC messages ``ModelInferRequest`` / ``ModelInferResponse``.

A tensor's elements travel in one of two ways: the typed field of its datatype in ``contents`` (:data:`FIELD`;
FP16 has none), or one entry of ``raw_input_contents`` / ``raw_output_contents`` per tensor, in tensor order: the
flattened row-major elements little-endian, without padding (BOOL one byte, 0 or 1; BYTES each element a 4-byte
little-endian length, then its bytes). A message uses one way for all its tensors: a request holding FP16 is raw.

Decoding gives the document as the REST transport's JSON would: ``{model_name, model_version?, id?,
parameters?, outputs: [{name, datatype, shape, parameters?, data}]}`` with flat ``data`` of Python values, so the
judge's checks read it unchanged. Floats keep their exact value (an FP16 or FP32 element becomes the Python float
of the same value, which the judge casts back to the same bits); BYTES elements become strings (UTF-8, invalid
bytes kept as surrogate escapes). What cannot be read as tensors at all (a raw entry whose size is not what the
shape and datatype need, elements in another datatype's field, raw and typed contents mixed) is a
:class:`Malformed` problem: one line naming the tensor.

Encoding a JSON request can lose what makes it wrong (nesting that does not match the shape, ``2.0`` in an INT32
tensor, a value no protobuf field holds): :func:`request_message` raises :class:`Inexpressible` then, and
:func:`faithful` tells whether a request's message says what its JSON said (the suite does not send the others
over gRPC: they test the JSON reading, not the protocol).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from conformance.contract.problems import ConformanceProblem
from conformance.transport.grpc_v2 import open_inference_pb2 as pb
from conformance.v2.datatypes import DATATYPES
from conformance.v2.strictjson import JSONProblem, loads

#: The typed ``contents`` field of each datatype (FP16 travels raw only).
FIELD: dict[str, str | None] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP16": None, "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
#: The range of each integer field's values.
FIELD_RANGE = {"int_contents": (-(1 << 31), (1 << 31) - 1), "int64_contents": (-(1 << 63), (1 << 63) - 1),
               "uint_contents": (0, (1 << 32) - 1), "uint64_contents": (0, (1 << 64) - 1)}
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1


class Inexpressible(ConformanceProblem):
    """A JSON request that no ``ModelInferRequest`` says faithfully; one line."""


class Malformed(ConformanceProblem):
    """A message whose tensors cannot be read; one line naming the tensor."""


# ----------------------------------------------------------------------------------------------------------
# parameters


def _parameter(value: object, where: str) -> Any:
    made = pb.InferParameter()
    if isinstance(value, bool):
        made.bool_param = value
    elif isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            made.int64_param = value
        elif 0 <= value <= _UINT64_MAX:
            made.uint64_param = value
        else:
            raise Inexpressible(f"{where}: {value} fits no protobuf parameter (int64, uint64)")
    elif isinstance(value, float):
        made.double_param = value
    elif isinstance(value, str):
        made.string_param = value
    else:
        raise Inexpressible(f"{where}: a {type(value).__name__} parameter (gRPC parameters are booleans, "
                            f"numbers and strings)")
    return made


def _set_parameters(target: Any, parameters: object, where: str) -> None:
    if parameters is None:
        return
    if not isinstance(parameters, dict):
        raise Inexpressible(f"{where}: parameters are not an object")
    for key, value in parameters.items():
        target[key].CopyFrom(_parameter(value, f"{where}/{key}"))


def _parameters(source: Any) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, value in source.items():
        which = value.WhichOneof("parameter_choice")
        found[key] = getattr(value, which) if which is not None else None
    return found


# ----------------------------------------------------------------------------------------------------------
# tensor elements


def _flatten(data: object) -> list:
    """Nested lists flattened row-major (the shape is not looked at: gRPC's contents are flat)."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list = []
    stack: list[Iterable] = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _typed(values: list, datatype: str, field: str, where: str) -> list:
    """``values`` as the typed ``field`` holds them; Inexpressible when one does not fit it."""
    if field == "bool_contents":
        if any(type(v) is not bool for v in values):
            raise Inexpressible(f"{where}: a BOOL element that is not true or false")
        return values
    if field == "bytes_contents":
        try:
            return [v.encode("utf-8") for v in values]
        except (AttributeError, UnicodeEncodeError):
            raise Inexpressible(f"{where}: a BYTES element that is not a UTF-8 string") from None
    if field in FIELD_RANGE:
        low, high = FIELD_RANGE[field]
        for v in values:
            if type(v) is not int or not low <= v <= high:
                raise Inexpressible(f"{where}: {v!r} does not fit {field} ({datatype})")
        return values
    floats = []
    for v in values:  # fp32_contents, fp64_contents: numbers (a JSON integer is a number too)
        try:
            if type(v) not in (int, float):
                raise TypeError
            floats.append(float(v))
        except (TypeError, OverflowError):
            raise Inexpressible(f"{where}: {v!r} is not a number an FP64 holds ({datatype})") from None
    return floats


def _raw(values: list, datatype: str, where: str) -> bytes:
    """``values`` as one raw entry: little-endian elements; BYTES length-prefixed."""
    if datatype == "BYTES":
        parts = []
        for v in _typed(values, datatype, "bytes_contents", where):
            parts += [struct.pack("<I", len(v)), v]
        return b"".join(parts)
    dt = DATATYPES[datatype]
    if dt.kind == "bool":
        return bytes(int(v) for v in _typed(values, datatype, "bool_contents", where))
    if dt.kind == "int":
        for v in values:
            if type(v) is not int or not dt.minimum <= v <= dt.maximum:
                raise Inexpressible(f"{where}: {v!r} does not fit {datatype} (raw contents hold the datatype's bytes)")
        return np.array(values, dtype=dt.dtype.newbyteorder("<")).tobytes()
    floats = _typed(values, datatype, "fp64_contents", where)
    # the JSON number's nearest FP64, rounded to the datatype (SPEC decision 4)
    with np.errstate(over="ignore"):  # (beyond the type's range: inf, as a typed FP32 field rounds it)
        return np.array(floats, dtype="<f8").astype(dt.dtype.newbyteorder("<")).tobytes()


def _from_raw(raw: bytes, datatype: str, count: int, what: str) -> list:
    """The elements of one raw entry; Malformed when its size is not what ``count`` elements need."""
    if datatype == "BYTES":
        elements, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise Malformed(f"{what}: raw contents end inside a BYTES length prefix (at byte {at} of {len(raw)})")
            (size,) = struct.unpack_from("<I", raw, at)
            if at + 4 + size > len(raw):
                raise Malformed(f"{what}: a BYTES element of {size} bytes at byte {at} runs past the raw contents' "
                                f"{len(raw)} bytes")
            elements.append(raw[at + 4:at + 4 + size].decode("utf-8", "surrogateescape"))
            at += 4 + size
        if len(elements) != count:
            raise Malformed(f"{what}: raw contents hold {len(elements)} BYTES elements; the shape needs {count}")
        return elements
    dt = DATATYPES[datatype]
    width = dt.dtype.itemsize
    if len(raw) != count * width:
        raise Malformed(f"{what}: raw contents of {len(raw)} bytes; {count} {datatype} elements need {count * width}")
    if dt.kind == "bool":
        if any(b > 1 for b in raw):
            raise Malformed(f"{what}: a BOOL byte in the raw contents is neither 0 nor 1")
        return [b == 1 for b in raw]
    array = np.frombuffer(raw, dtype=dt.dtype.newbyteorder("<"))
    return (array.astype(np.float64) if dt.kind == "float" else array).tolist()


def _count(shape: list[int]) -> int | None:
    return math.prod(shape) if all(d >= 0 for d in shape) else None


# ----------------------------------------------------------------------------------------------------------
# messages


def _tensors_in(message: Any, tensors: object, raw: bool, tensor_list: Any, raw_list: Any, where: str) -> None:
    """Put the JSON ``tensors`` (inputs or outputs) into ``message``'s ``tensor_list`` (typed) or ``raw_list``."""
    if not isinstance(tensors, list):
        raise Inexpressible(f"{where}: not an array")
    for index, tensor in enumerate(tensors):
        at = f"{where}/{index}"
        if not isinstance(tensor, dict):
            raise Inexpressible(f"{at}: not an object")
        name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str) or datatype not in FIELD:
            raise Inexpressible(f"{at}: no name or no known datatype")
        if (not isinstance(shape, list)
                or any(type(d) is not int or not _INT64[0] <= d <= _INT64[1] for d in shape)):
            raise Inexpressible(f"{at}/shape: not a list of int64 values")
        if "data" not in tensor:
            raise Inexpressible(f"{at}: no data")
        values = _flatten(tensor["data"])
        made = tensor_list.add(name=name, datatype=datatype, shape=shape)
        _set_parameters(made.parameters, tensor.get("parameters"), f"{at}/parameters")
        if raw:
            raw_list.append(_raw(values, datatype, f"{at}/data"))
        else:
            field = FIELD[datatype]
            assert field is not None  # (a message holding FP16 is raw)
            getattr(made.contents, field).extend(_typed(values, datatype, field, f"{at}/data"))


def _tensors_out(tensors: Any, raw_list: Any, what: str) -> list[dict]:
    """The JSON form of ``tensors`` (their elements in typed contents, or in ``raw_list``)."""
    raws = len(raw_list)
    if raws and raws != len(tensors):
        raise Malformed(f"{raws} raw contents for {len(tensors)} {what}s; one per {what}")
    found = []
    for index, tensor in enumerate(tensors):
        datatype = tensor.datatype
        shape = list(tensor.shape)
        contents = tensor.contents
        # (an unset contents lists no field: reading it does not set it)
        held = [f.name for f, _ in contents.ListFields()]
        if raws:
            label = f"{what} {tensor.name!r} ({datatype}, shape {shape})"
            if held:
                raise Malformed(f"{label}: holds {held[0]} beside raw contents (a message uses one or the other)")
            if datatype not in FIELD:
                raise Malformed(f"{label}: an unknown datatype in raw contents")
            count = _count(shape)
            if count is None:
                raise Malformed(f"{label}: a negative dimension")
            data = _from_raw(raw_list[index], datatype, count, label)
        else:
            field = FIELD.get(datatype, "")
            if held and (len(held) > 1 or held[0] != field):
                wanted = field if field else "raw contents (FP16 has no typed field)"
                raise Malformed(f"{what} {tensor.name!r} ({datatype}, shape {shape}): its elements are in {held[0]}; "
                                f"{datatype} goes in {wanted}")
            data = list(getattr(contents, field)) if field else []
            if field == "bytes_contents":
                data = [v.decode("utf-8", "surrogateescape") for v in data]  # (fp32_contents: Python floats already)
        made: dict[str, object] = {"name": tensor.name, "datatype": datatype, "shape": shape}
        if len(tensor.parameters):
            made["parameters"] = _parameters(tensor.parameters)
        made["data"] = data
        found.append(made)
    return found


def _wants_raw(tensors: object, raw: bool | None) -> bool:
    """Raw when asked, and for a message holding FP16 (which has no typed field) unless raw=False is forced."""
    if raw is not None:
        return raw
    return isinstance(tensors, list) and any(isinstance(t, dict) and t.get("datatype") == "FP16" for t in tensors)


def request_message(document: bytes | Mapping, model_name: str, model_version: str | None = None,
                    raw: bool | None = None) -> Any:
    """The ``ModelInferRequest`` for a JSON request (its bytes, or parsed) to ``model_name`` (and version):
    typed contents, or raw when ``raw`` is True or a tensor is FP16 (``raw`` False and FP16: Inexpressible).
    Inexpressible (one line) for what no message holds: not a JSON object, tensors without name or known
    datatype, elements that fit no field, parameters that are not booleans, numbers or strings."""
    body = _parsed(document)
    message = pb.ModelInferRequest(model_name=model_name, model_version=model_version or "")
    if "id" in body:
        if not isinstance(body["id"], str):
            raise Inexpressible("/id: not a string")
        if not body["id"]:  # proto3 strings have no presence: the answer's id could not say it was echoed
            raise Inexpressible("/id: an empty id is no id in protobuf")
        message.id = body["id"]
    _set_parameters(message.parameters, body.get("parameters"), "/parameters")
    inputs = body.get("inputs")
    as_raw = _wants_raw(inputs, raw)
    if not as_raw and isinstance(inputs, list) and any(isinstance(t, dict) and t.get("datatype") == "FP16"
                                                       for t in inputs):
        raise Inexpressible("/inputs: FP16 travels in raw contents only")
    _tensors_in(message, inputs, as_raw, message.inputs, message.raw_input_contents, "/inputs")
    outputs = body.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list):
            raise Inexpressible("/outputs: not an array")
        for index, wanted in enumerate(outputs):
            if not isinstance(wanted, dict) or not isinstance(wanted.get("name"), str):
                raise Inexpressible(f"/outputs/{index}: no name")
            made = message.outputs.add(name=wanted["name"])
            _set_parameters(made.parameters, wanted.get("parameters"), f"/outputs/{index}/parameters")
    return message


def request_document(message: Any) -> dict:
    """The JSON form of a ``ModelInferRequest`` (what a server reads): ``{id?, parameters?, inputs, outputs?}``;
    Malformed (one line) when its tensors cannot be read."""
    made: dict[str, object] = {}
    if message.id:
        made["id"] = message.id
    if len(message.parameters):
        made["parameters"] = _parameters(message.parameters)
    made["inputs"] = _tensors_out(message.inputs, message.raw_input_contents, "input")
    if len(message.outputs):
        made["outputs"] = [{"name": o.name, **({"parameters": _parameters(o.parameters)} if len(o.parameters) else {})}
                           for o in message.outputs]
    return made


def response_message(document: Mapping, raw: bool | None = None) -> Any:
    """The ``ModelInferResponse`` for a JSON inference response (parsed): typed contents, or raw when ``raw`` is
    True or an output is FP16. Inexpressible for what no message holds."""
    message = pb.ModelInferResponse(model_name=str(document.get("model_name", "")),
                                    model_version=str(document.get("model_version") or ""))
    if isinstance(document.get("id"), str):
        message.id = document["id"]
    _set_parameters(message.parameters, document.get("parameters"), "/parameters")
    outputs = document.get("outputs")
    _tensors_in(message, outputs, _wants_raw(outputs, raw), message.outputs, message.raw_output_contents, "/outputs")
    return message


def response_document(message: Any) -> dict:
    """The JSON form of a ``ModelInferResponse``, as the judge reads a REST answer: ``{model_name,
    model_version?, id?, parameters?, outputs}`` (empty strings, which proto3 cannot tell from absent ones, left
    out, but for ``model_name``); Malformed (one line, naming the output) when its tensors cannot be read."""
    made: dict[str, object] = {"model_name": message.model_name}
    if message.model_version:
        made["model_version"] = message.model_version
    if message.id:
        made["id"] = message.id
    if len(message.parameters):
        made["parameters"] = _parameters(message.parameters)
    made["outputs"] = _tensors_out(message.outputs, message.raw_output_contents, "output")
    return made


def _parsed(document: bytes | Mapping) -> dict:
    if type(document) is dict:
        return document  # (read only: no copy needed)
    if isinstance(document, Mapping):
        return dict(document)
    try:
        body = loads(document)
    except JSONProblem as problem:
        raise Inexpressible(f"not JSON: {problem}") from None
    if not isinstance(body, dict):
        raise Inexpressible("not a JSON object")
    return body


def faithful(document: bytes, message: Any, parsed: object = None) -> str | None:
    """Why ``message`` (made from the JSON request ``document``) does not say what the JSON said, or None: the
    kit's strict reading finds the JSON request valid and the message's not, or the other way round (nesting
    that does not match the shape is flat in a message; ``2.0`` in an INT32 tensor is ``2``). Both invalid is
    faithful: the server owes a refusal either way. ``parsed``: ``document`` already parsed (strict JSON)."""
    try:
        if _same_request(loads(document) if parsed is None else parsed, request_document(message)):
            return None  # (the message says what the JSON says, value for value: both are read alike)
    except (JSONProblem, Malformed):
        pass
    from conformance.v2.documents import REQUEST, inspect, parse  # (the strict readings: the slow path only)

    before = parse(document, REQUEST, "request")
    try:
        after = inspect(request_document(message), REQUEST, "request")
    except Malformed as problem:
        return str(problem)
    if bool(before.findings) == bool(after.findings):
        return None
    if before.findings:
        first = before.findings[0]
        return f"its fault ({first.requirement} {first.pointer}: {first.message}) does not survive in protobuf"
    first = after.findings[0]
    return f"its message is not valid V2 ({first.requirement} {first.pointer}: {first.message})"


def _same_request(body: object, read: dict) -> bool:
    """Whether the JSON request ``body`` and a message's JSON form ``read`` say the same, so that the kit reads
    them alike without reading either (the fast path of :func:`faithful`): the same keys, id, parameters and
    requested outputs (types too: ``1`` is not ``true`` nor ``1.0``), and per tensor the same name, datatype, shape
    and elements, its data flat or nested exactly as its shape, no key the message drops, FP32 elements equal once
    rounded to FP32 (as the reading rounds them). False means: not shown equal (the slow path decides)."""
    if not isinstance(body, dict) or set(body) - {"id", "parameters", "inputs", "outputs"}:
        return False
    if not _optional_keys_typed(body, {"id": str, "parameters": dict, "outputs": list}):
        return False  # ("parameters": null and the like: the JSON reading refuses what the message cannot say)
    if body.get("id") != read.get("id") or not _same_values(body.get("parameters"), read.get("parameters")):
        return False
    outputs = body.get("outputs")
    if outputs is not None:
        if outputs == [] or any(not isinstance(o, dict) or set(o) - {"name", "parameters"}
                                or not _optional_keys_typed(o, {"parameters": dict}) for o in outputs):
            return False
        if [(o.get("name"), o.get("parameters")) for o in outputs] != [(o["name"], o.get("parameters"))
                                                                        for o in read.get("outputs", [])]:
            return False
        if not all(_same_values(o.get("parameters"), r.get("parameters")) for o, r in zip(outputs, read["outputs"])):
            return False
    elif "outputs" in read:
        return False
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != len(read["inputs"]):
        return False
    for tensor, got in zip(inputs, read["inputs"]):
        if not isinstance(tensor, dict) or set(tensor) - {"name", "datatype", "shape", "data", "parameters"}:
            return False
        if not _optional_keys_typed(tensor, {"parameters": dict}):
            return False
        if (tensor.get("name"), tensor.get("datatype"), tensor.get("shape")) != (got["name"], got["datatype"], got["shape"]):
            return False
        if not _same_values(tensor.get("parameters"), got.get("parameters")):
            return False
        if not _nested_as(tensor["data"], got["shape"]) or not _same_elements(_flatten(tensor["data"]), got["data"],
                                                                              got["datatype"]):
            return False
    return True


def _optional_keys_typed(value: dict, types: dict[str, type]) -> bool:
    """Whether each of ``types``' keys that ``value`` holds is of its type."""
    return all(isinstance(value[key], kind) for key, kind in types.items() if key in value)


def _same_values(a: object, b: object) -> bool:
    """Equal parameters, types too (``1`` is neither ``true`` nor ``1.0``); absent and empty alike."""
    a, b = a or None, b or None
    if a is None or b is None:
        return a is b
    if not isinstance(a, dict) or not isinstance(b, dict) or set(a) != set(b):
        return False
    return all(type(a[key]) is type(b[key]) and a[key] == b[key] for key in a)


def _nested_as(data: object, shape: list[int]) -> bool:
    """Whether ``data`` is flat (no list inside), or nested exactly as ``shape`` (every level its length)."""
    if not isinstance(data, list):
        return False
    if not any(isinstance(item, list) for item in data):
        return True  # flat data is read as it is, whatever the shape
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        part, depth = stack.pop()
        if depth == len(shape):
            if isinstance(part, list):
                return False
            continue
        if not isinstance(part, list) or len(part) != shape[depth]:
            return False
        stack.extend((item, depth + 1) for item in part)
    return True


def _same_elements(sent: list, read: list, datatype: str) -> bool:
    """Equal elements, types too; FP32 ones once rounded to FP32, FP64 and FP16 ones as FP64 (a JSON integer in
    a float tensor is that number)."""
    if len(sent) != len(read):
        return False
    if datatype in ("FP16", "FP32", "FP64"):
        if any(type(v) not in (int, float) for v in sent):
            return False
        try:
            wanted = np.array(sent, dtype=np.float64)
        except OverflowError:
            return False
        if datatype != "FP64":
            with np.errstate(over="ignore"):  # (beyond the type's range: inf, as the reading rounds it)
                wanted = wanted.astype(np.float32 if datatype == "FP32" else np.float16).astype(np.float64)
        got = np.array(read, dtype=np.float64)
        return bool(np.array_equal(wanted.view(np.uint64), got.view(np.uint64)))
    return all(type(a) is type(b) and a == b for a, b in zip(sent, read))
