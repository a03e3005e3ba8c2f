"""The binary tensor data codec (conformance/v2/binary.py): a request encoded and an answer decoded back into the
plain JSON form the kit's document reading takes unchanged, every datatype's bytes as the extension lays them out,
and each malformation of an answer one problem naming where it is."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from conformance.online.binary import every_datatype_request
from conformance.v2 import binary
from conformance.v2.documents import RESPONSE, inspect, parse
from conformance.v2.strictjson import dumps, loads


def test_every_datatypes_bytes_are_little_endian_row_major():
    assert binary.tensor_bytes([1, -2], "INT32") == struct.pack("<ii", 1, -2)
    assert binary.tensor_bytes([1.5], "FP16") == np.float16(1.5).tobytes() == b"\x00\x3e"
    assert binary.tensor_bytes([0.1], "FP32") == struct.pack("<f", 0.1)
    assert binary.tensor_bytes([True, False], "BOOL") == b"\x01\x00"
    assert binary.tensor_bytes(["ab", ""], "BYTES") == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"
    assert binary.tensor_bytes([2**64 - 1], "UINT64") == b"\xff" * 8
    assert binary.tensor_values(b"\x02\x00\x00\x00ab\x00\x00\x00\x00", "BYTES", 2, "") == ["ab", ""]
    assert binary.tensor_values(b"\x00\x3e", "FP16", 1, "") == [1.5]


def test_a_request_and_its_answer_round_trip():
    """The request every datatype: encoded, each input's bytes follow the JSON in order, sized; its outputs asked
    binary one by one. An answer made of the same tensors decodes to exactly the JSON form, read unchanged."""
    name, raw = every_datatype_request()
    request = loads(raw)
    body, length = binary.encode_request(request)
    head = json.loads(body[:length])
    assert "parameters" not in head and all(o["parameters"] == {"binary_data": True} for o in head["outputs"])
    sizes = [t["parameters"]["binary_data_size"] for t in head["inputs"]]
    assert sizes == [15 * (2 if t["datatype"] in ("FP16", "INT16", "UINT16") else
                           8 if t["datatype"].endswith("64") else 1 if t["datatype"].endswith("8") else 4)
                     for t in head["inputs"]]
    assert len(body) == length + sum(sizes) and all("data" not in t for t in head["inputs"])
    # an answer holding the request's inputs as its outputs, binary
    answer = {"model_name": "m", "outputs": [{**t, "parameters": {"binary_data_size": t["parameters"]["binary_data_size"]}}
                                             for t in head["inputs"]]}
    answer_head = dumps(answer).rstrip(b"\n")
    decoded = binary.decode_response(answer_head + body[length:], str(len(answer_head)))
    assert decoded.problems == [] and decoded.binary == [t["name"] for t in head["inputs"]]
    got = inspect(decoded.document, RESPONSE, name)
    want = parse(dumps({"model_name": "m", "outputs": request["inputs"]}), RESPONSE, name)
    assert got.findings == [] and "parameters" not in decoded.document["outputs"][0]
    for mine, theirs in zip(got.tensors, want.tensors):
        assert (mine.name, mine.datatype, mine.shape) == (theirs.name, theirs.datatype, theirs.shape)
        assert np.asarray(mine.values).tobytes() == np.asarray(theirs.values).tobytes()  # bit for bit


def test_a_request_without_a_selection_asks_every_output_binary():
    body, length = binary.encode_request({"id": "a", "parameters": {"k": 1},
                                          "inputs": [{"name": "x", "shape": [2, 1], "datatype": "BOOL",
                                                      "data": [[True], [False]]}]})
    assert json.loads(body[:length])["parameters"] == {"k": 1, "binary_data_output": True}
    assert body[length:] == b"\x01\x00"


def test_a_plain_json_answer_decodes_with_no_binary_output():
    plain = dumps({"model_name": "m", "outputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [1]}]})
    decoded = binary.decode_response(plain, None)
    assert decoded.problems == [] and decoded.binary == [] and decoded.document == json.loads(plain)


def _answer(outputs: list[dict], rest: bytes, header: str | None = "auto") -> tuple[bytes, str | None]:
    head = dumps({"model_name": "m", "outputs": outputs}).rstrip(b"\n")
    return head + rest, (str(len(head)) if header == "auto" else header)


INT32 = {"name": "x", "shape": [2], "datatype": "INT32", "parameters": {"binary_data_size": 8}}


@pytest.mark.parametrize("outputs, rest, header, pointer, message", [
    ([INT32], b"", None, "/outputs/0/parameters/binary_data_size", "a binary output, but the answer has no "
                                                                   "Inference-Header-Content-Length header"),
    ([INT32], b"\x00" * 8, None, "", "no Inference-Header-Content-Length header, and the body is not strict JSON"),
    ([INT32], b"\x00" * 8, "eight", "", "Inference-Header-Content-Length is 'eight', not a number of bytes"),
    ([INT32], b"\x00" * 8, "9999", "", "beyond the body's"),
    ([INT32], b"\x00" * 8, "3", "", "the JSON part is not strict JSON"),
    ([INT32], b"\x00" * 7, "auto", "/outputs/0/parameters/binary_data_size", "8 bytes from byte 0 run past the 7 bytes"),
    ([INT32], b"\x00" * 9, "auto", "", "the binary outputs' sizes add up to 8 bytes; 9 bytes follow the JSON part"),
    ([{**INT32, "parameters": {"binary_data_size": 6}}], b"\x00" * 6, "auto", "/outputs/0/parameters/binary_data_size",
     "is 6; shape [2] of INT32 takes 8 bytes"),
    ([{**INT32, "data": [1, 2]}], b"\x00" * 8, "auto", "/outputs/0/data", "data beside binary_data_size"),
    ([{**INT32, "parameters": {"binary_data_size": -8}}], b"", "auto", "/outputs/0/parameters/binary_data_size",
     "is -8, not a number of bytes"),
    ([{**INT32, "datatype": "BOOL", "parameters": {"binary_data_size": 2}}], b"\x01\x02", "auto", "/outputs/0",
     "BOOL element 1 is byte 2"),
    ([{**INT32, "datatype": "BYTES", "parameters": {"binary_data_size": 6}}], b"\x01\x00\x00\x00a\x09", "auto",
     "/outputs/0", "BYTES element 1: its 4-byte length runs past the tensor's 6 bytes"),
])
def test_every_malformed_answer_is_one_problem(outputs, rest, header, pointer, message):
    body, sent = _answer(outputs, rest, header)
    decoded = binary.decode_response(body, sent)
    assert decoded.document is None and len(decoded.problems) == 1, decoded
    assert decoded.problems[0][0] == pointer and message in decoded.problems[0][1], decoded.problems


def test_a_size_can_be_made_to_run_past_the_body():
    body, length = binary.encode_request({"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2]}]})
    longer, new_length = binary.with_size(body, length, 0, 16)
    assert json.loads(longer[:new_length])["inputs"][0]["parameters"]["binary_data_size"] == 16
    assert longer[new_length:] == body[length:]


# ------------------------------------------------------------------ H-BINARY's judgement of one binary answer

REQUEST = {"id": "a", "inputs": [{"name": "x", "shape": [3], "datatype": "FP16", "data": [0.1, 1.5, -2.0]}]}
JSON_ANSWER = {"model_name": "m", "id": "a", "outputs": [{"name": "x", "shape": [3], "datatype": "FP16",
                                                          "data": [0.2, 3.0, -4.0]}]}


def _judged(body: bytes, headers: dict | None = None, status: int = 200) -> list[tuple[str, str, str, str]]:
    from conformance.online.binary import _judge
    from conformance.transport.http import Answer

    served = parse(dumps(JSON_ANSWER), RESPONSE, "a.json")
    found = _judge("a.json", "POST /infer (binary)", Answer(status, headers or {}, body), served, REQUEST)
    return [(f.requirement, f.level, f.pointer, f.message) for f in found]


def _binary_answer(values: list[float]) -> tuple[bytes, dict]:
    head = dumps({**JSON_ANSWER, "outputs": [{"name": "x", "shape": [3], "datatype": "FP16",
                                              "parameters": {"binary_data_size": 6}}]}).rstrip(b"\n")
    return head + np.array(values, dtype="<f2").tobytes(), {binary.HEADER: str(len(head))}


def test_a_binary_answer_equal_to_the_json_one_has_no_finding():
    assert _judged(*_binary_answer([0.2, 3.0, -4.0])) == []


def test_the_first_differing_element_is_named():
    neighbour = float(np.nextafter(np.float16(0.2), np.float16(1)))  # one bit above 0.2's FP16
    found = _judged(*_binary_answer([neighbour, 3.0, -4.0]))
    assert found == [("H-BINARY", "MUST", "/outputs/0/data/0",
                      "POST /infer (binary): 1 of 3 elements of 'x' differ from the JSON answer's; the first is "
                      f"{neighbour!r}, the JSON answer's {float(np.float16(0.2))!r}")]


def test_outputs_not_binary_though_asked_are_a_should_finding_only():
    assert _judged(dumps(JSON_ANSWER)) == [
        ("H-BINARY", "SHOULD", "", "POST /infer (binary): outputs 'x' came as JSON data; binary data was asked")]


def test_a_refused_or_malformed_binary_answer_is_one_finding():
    assert _judged(b'{"error": "no"}', status=400) == [
        ("H-BINARY", "MUST", "", "POST /infer (binary): status 400, body '{\"error\": \"no\"}'; the same request in "
                                 "JSON got 200")]
    body, headers = _binary_answer([0.2, 3.0, -4.0])
    assert _judged(body + b"\x00", headers) == [
        ("H-BINARY", "MUST", "", "POST /infer (binary): the binary outputs' sizes add up to 6 bytes; 7 bytes follow "
                                 "the JSON part")]
