"""The codec between V2 JSON documents and the gRPC messages: every datatype both ways, in typed contents and in
raw contents (little-endian, BYTES length-prefixed, FP16 raw only), float bits kept exactly, and raw contents
that cannot be read as the shape says are one line naming the tensor."""

from __future__ import annotations

import struct

import numpy as np
import pytest

pytest.importorskip("grpc", reason="the grpc extra is not installed (pip install -e '.[dev]')")

from conformance.transport.grpc_v2 import codec  # noqa: E402
from conformance.transport.grpc_v2 import open_inference_pb2 as pb  # noqa: E402
from conformance.v2.datatypes import DATATYPES  # noqa: E402
from conformance.v2.documents import RESPONSE, inspect  # noqa: E402

#: Elements of each datatype at its edges, as JSON holds them.
EDGES: dict[str, list] = {
    "BOOL": [True, False, True],
    "UINT8": [0, 1, 255], "UINT16": [0, 1, 65535], "UINT32": [0, 1, (1 << 32) - 1], "UINT64": [0, 1, (1 << 64) - 1],
    "INT8": [-128, 0, 127], "INT16": [-32768, 0, 32767], "INT32": [-(1 << 31), 0, (1 << 31) - 1],
    "INT64": [-(1 << 63), 0, (1 << 63) - 1],
    "FP16": [65504.0, -0.0, 5.960464477539063e-08],  # the largest, a negative zero, the smallest subnormal
    "FP32": [0.1, -0.0, 3.4028234663852886e38],  # 0.1 rounds to FP32 on the way
    "FP64": [0.1, -0.0, 5e-324],
    "BYTES": ["ab", "", "é"],
}

#: What each datatype's three edge elements are as raw little-endian bytes.
RAW: dict[str, bytes] = {
    "BOOL": b"\x01\x00\x01",
    "UINT16": b"\x00\x00\x01\x00\xff\xff",
    "INT32": b"\x00\x00\x00\x80\x00\x00\x00\x00\xff\xff\xff\x7f",
    "FP16": b"\xff\x7b\x00\x80\x01\x00",
    "BYTES": b"\x02\x00\x00\x00ab\x00\x00\x00\x00\x02\x00\x00\x00\xc3\xa9",
}


def _response(datatype: str, data: list, shape: list[int] | None = None) -> dict:
    return {"model_name": "m", "model_version": "1", "id": "r1",
            "outputs": [{"name": "out", "datatype": datatype, "shape": shape or [len(data)], "data": data}]}


def _wire(message):
    """``message`` after the wire: serialized and parsed back, as the other side gets it."""
    return type(message).FromString(message.SerializeToString())


def _bits(datatype: str, values: list) -> list:
    """Floats as the integers of their bits in ``datatype``; other values as they are."""
    dt = DATATYPES[datatype]
    if dt.kind != "float":
        return values
    return np.array(values, dtype=np.float64).astype(dt.dtype).view(f"u{dt.dtype.itemsize}").tolist()


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
@pytest.mark.parametrize("datatype", list(EDGES))
def test_every_datatype_both_ways(datatype, raw):
    """A response goes into a message and comes back as the same document: names, datatype, shape, and every
    element bit for bit in its datatype; the judge reads the document without a finding. FP16 is raw either way."""
    sent = _response(datatype, EDGES[datatype])
    message = _wire(codec.response_message(sent, raw=raw or None))
    travelled_raw = raw or datatype == "FP16"
    assert len(message.raw_output_contents) == (1 if travelled_raw else 0)
    assert message.outputs[0].HasField("contents") == (not travelled_raw)
    if travelled_raw and datatype in RAW:
        assert message.raw_output_contents[0] == RAW[datatype]
    if not travelled_raw:
        held = [f.name for f, _ in message.outputs[0].contents.ListFields()]
        assert held == [codec.FIELD[datatype]]
    back = codec.response_document(message)
    assert {k: v for k, v in back.items() if k != "outputs"} == {"model_name": "m", "model_version": "1", "id": "r1"}
    (tensor,) = back["outputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("out", datatype, [3])
    assert _bits(datatype, tensor["data"]) == _bits(datatype, EDGES[datatype])
    document = inspect(back, RESPONSE, "answer")
    assert document.findings == []


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
@pytest.mark.parametrize("datatype", list(EDGES))
def test_every_datatype_in_a_request_both_ways(datatype, raw):
    """A JSON request (nested data) becomes a message a server reads back as the same request, flat."""
    values = EDGES[datatype]
    body = {"id": "q", "parameters": {"flag": True, "n": -3, "big": (1 << 64) - 1, "x": 0.5, "s": "t"},
            "inputs": [{"name": "in", "datatype": datatype, "shape": [3, 1], "data": [[v] for v in values]}],
            "outputs": [{"name": "in"}]}
    message = _wire(codec.request_message(body, "model", "2", raw=raw or None))
    assert (message.model_name, message.model_version) == ("model", "2")
    read = codec.request_document(message)
    assert read["id"] == "q" and read["outputs"] == [{"name": "in"}]
    assert read["parameters"] == body["parameters"]
    (tensor,) = read["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("in", datatype, [3, 1])
    assert _bits(datatype, tensor["data"]) == _bits(datatype, values)


def test_raw_contents_are_little_endian_and_fp32_keeps_its_bits():
    """FP32 0.1 travels as the four bytes of its FP32 value, least significant first, and comes back as the
    Python float of exactly that value."""
    message = codec.response_message(_response("FP32", [0.1]), raw=True)
    assert message.raw_output_contents[0] == struct.pack("<f", 0.1) == b"\xcd\xcc\xcc\x3d"
    (tensor,) = codec.response_document(_wire(message))["outputs"]
    assert tensor["data"] == [0.10000000149011612]


def test_fp16_has_no_typed_field():
    body = {"inputs": [{"name": "h", "datatype": "FP16", "shape": [1], "data": [1.0]},
                       {"name": "i", "datatype": "INT32", "shape": [1], "data": [1]}]}
    message = codec.request_message(body, "m")  # FP16 makes the whole message raw
    assert len(message.raw_input_contents) == 2 and not message.inputs[1].HasField("contents")
    with pytest.raises(codec.Inexpressible, match="FP16 travels in raw contents only"):
        codec.request_message(body, "m", raw=False)


def _raw_response(datatype: str, shape: list[int], raw: bytes):
    message = pb.ModelInferResponse(model_name="m")
    message.outputs.add(name="out", datatype=datatype, shape=shape)
    message.raw_output_contents.append(raw)
    return message


@pytest.mark.parametrize("datatype, shape, raw, said", [
    ("FP16", [2, 3], b"\x00" * 11,
     "output 'out' (FP16, shape [2, 3]): raw contents of 11 bytes; 6 FP16 elements need 12"),
    ("INT64", [2], b"\x00" * 24, "output 'out' (INT64, shape [2]): raw contents of 24 bytes; 2 INT64 elements need 16"),
    ("BOOL", [2], b"\x01\x02", "output 'out' (BOOL, shape [2]): a BOOL byte in the raw contents is neither 0 nor 1"),
    ("BYTES", [1], b"\x05\x00\x00\x00ab",
     "output 'out' (BYTES, shape [1]): a BYTES element of 5 bytes at byte 0 runs past the raw contents' 6 bytes"),
    ("BYTES", [2], b"\x01\x00\x00\x00a\x01\x00",
     "output 'out' (BYTES, shape [2]): raw contents end inside a BYTES length prefix (at byte 5 of 7)"),
    ("BYTES", [2], b"\x01\x00\x00\x00a", "output 'out' (BYTES, shape [2]): raw contents hold 1 BYTES elements; the "
                                         "shape needs 2"),
])
def test_raw_contents_that_do_not_fit_the_shape_are_one_line(datatype, shape, raw, said):
    with pytest.raises(codec.Malformed) as caught:
        codec.response_document(_wire(_raw_response(datatype, shape, raw)))
    assert str(caught.value) == said


def test_contents_a_reader_cannot_place_are_one_line():
    message = _raw_response("FP32", [1], b"\x00" * 4)
    message.outputs.add(name="two", datatype="FP32", shape=[1])
    with pytest.raises(codec.Malformed, match=r"^1 raw contents for 2 outputs; one per output$"):
        codec.response_document(message)
    message = _raw_response("FP32", [1], b"\x00" * 4)
    message.outputs[0].contents.fp32_contents.append(1.0)
    with pytest.raises(codec.Malformed, match=r"holds fp32_contents beside raw contents"):
        codec.response_document(message)
    message = pb.ModelInferResponse(model_name="m")
    message.outputs.add(name="out", datatype="FP32", shape=[1]).contents.fp64_contents.append(1.0)
    with pytest.raises(codec.Malformed) as caught:
        codec.response_document(message)
    assert str(caught.value) == "output 'out' (FP32, shape [1]): its elements are in fp64_contents; FP32 goes in fp32_contents"


def test_typed_contents_of_the_wrong_count_are_the_judges_to_count():
    """Typed contents with too few elements decode as they are: F-COUNT then says so, as for a REST answer."""
    message = pb.ModelInferResponse(model_name="m")
    message.outputs.add(name="out", datatype="INT32", shape=[3]).contents.int_contents.extend([1, 2])
    document = inspect(codec.response_document(message), RESPONSE, "answer")
    assert [(f.requirement, f.pointer) for f in document.findings] == [("F-COUNT", "/outputs/0/data")]


@pytest.mark.parametrize("body, said", [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2.0]}]}', "2.0 does not fit int_contents"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]}', None),  # int_contents holds it
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "UINT32", "data": [-1]}]}', "-1 does not fit uint_contents"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}', "no known datatype"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]}', "not true or false"),
    (b'{"id": 3, "inputs": []}', "/id: not a string"),
    (b'{"id": "", "inputs": []}', "/id: an empty id is no id in protobuf"),
    (b'{"parameters": {"p": [1]}, "inputs": []}', "a list parameter"),
])
def test_what_no_request_message_holds_is_inexpressible(body, said):
    if said is None:
        codec.request_message(body, "m")
        with pytest.raises(codec.Inexpressible, match="does not fit INT8"):
            codec.request_message(body, "m", raw=True)  # raw holds the datatype's bytes: 300 is no INT8
        return
    with pytest.raises(codec.Inexpressible, match=said):
        codec.request_message(body, "m")


@pytest.mark.parametrize("body, faithful", [
    (b'{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}]}', True),
    (b'{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3]}]}', True),  # both wrong
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [true]}]}', True),  # the model refuses
    (b'{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2, 3, 4]]}]}', False),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}], "extra": {"k": 1}}', True),
])
def test_a_request_is_sent_over_grpc_only_when_its_message_says_what_its_json_said(body, faithful):
    why = codec.faithful(body, codec.request_message(body, "m"))
    assert (why is None) == faithful, why
    if not faithful:
        assert why == ("its fault (F-COUNT /inputs/0/data: 1 entries, but the shape needs 2 at this level) does not "
                       "survive in protobuf")


TRICKY = [
    b'{"parameters": null, "inputs": [{"name": "a", "shape": [1], "datatype": "INT32", "data": [1]}]}',
    b'{"outputs": null, "inputs": [{"name": "a", "shape": [1], "datatype": "INT32", "data": [1]}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "INT32", "data": [1], "parameters": null}]}',
    b'{"inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 0.1, 3e38, 1e300]}]}',
    b'{"inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP16", "data": [[1, 0.1], [3e38, 1e300]]}]}',
    b'{"inputs": [{"name": "a", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2, 3, 4]]}]}',
    b'{"inputs": [{"name": "a", "shape": [-1], "datatype": "INT32", "data": [1]}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "INT32", "data": [1]}], "outputs": [{"name": "a", '
    b'"parameters": null}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "INT32", "data": [1], "extra": 1}]}',
]


def test_the_fast_path_of_faithful_never_says_same_where_the_readings_differ():
    """faithful() skips the strict readings when the message is the JSON value for value (most requests); over the
    kit's goldens and requests made to trip it, it says so only where the two strict readings agree."""
    import json

    from conformance.paths import kit_fixtures
    from conformance.v2.documents import REQUEST, parse

    bodies = [path.read_bytes() for path in sorted((kit_fixtures() / "input").glob("*.json"))] + TRICKY
    fast = 0
    for body in bodies:
        try:
            message = codec.request_message(body, "m")
        except codec.Inexpressible:
            continue
        same = codec._same_request(json.loads(body), codec.request_document(message))
        agree = bool(parse(body, REQUEST, "r").findings) == bool(inspect(codec.request_document(message), REQUEST,
                                                                         "r").findings)
        assert agree or not same, body
        fast += same
    assert fast >= 40
