"""Each semantic check rejects a crafted bad document with the right requirement ID and JSON pointer."""

import pytest
from helpers import DELETE, as_bytes, edited, request, response, tensor

from conformance.v2.documents import (
    ERROR,
    REQUEST,
    RESPONSE,
    inspect,
    load,
    parse,
    response_id_findings,
)

GOOD_REQUEST = request(tensor("a", "INT32", [2, 2], [[1, 2], [3, 4]]), tensor("b", "FP16", [], [0.5]), id="r1")
GOOD_RESPONSE = response(tensor("a", "INT32", [2, 2], [2, 4, 6, 8]), tensor("b", "FP16", [], [1.0]), id="r1")


def findings(document, kind):
    return [(f.requirement, f.pointer) for f in parse(as_bytes(document), kind, "doc.json").findings]


def test_good_documents_pass():
    assert findings(GOOD_REQUEST, REQUEST) == []
    assert findings(GOOD_RESPONSE, RESPONSE) == []
    assert findings({"error": "no such tensor", "id": "r1"}, RESPONSE) == []


BAD_RESPONSES = [
    # (what, path, value, expected requirement, expected pointer)
    ("model_name missing", ("model_name",), DELETE, "F-SCHEMA", ""),
    ("outputs missing", ("outputs",), DELETE, "F-SCHEMA", ""),
    ("model_name not a string", ("model_name",), 7, "F-SCHEMA", "/model_name"),
    ("id not a string", ("id",), 1, "F-SCHEMA", "/id"),
    ("name missing", ("outputs", 0, "name"), DELETE, "F-SCHEMA", "/outputs/0"),
    ("shape missing", ("outputs", 0, "shape"), DELETE, "F-SCHEMA", "/outputs/0"),
    ("data missing", ("outputs", 0, "data"), DELETE, "F-SCHEMA", "/outputs/0"),
    ("unknown datatype", ("outputs", 0, "datatype"), "INT128", "F-SCHEMA", "/outputs/0/datatype"),
    ("negative shape entry", ("outputs", 0, "shape"), [-2, 2], "F-SCHEMA", "/outputs/0/shape/0"),
    ("shape entry above 2**64-1", ("outputs", 0, "shape"), [2**64, 2], "F-SCHEMA", "/outputs/0/shape/0"),
    ("fractional shape entry", ("outputs", 0, "shape"), [2.5, 2], "F-SCHEMA", "/outputs/0/shape/0"),
    ("parameter value is an object", ("parameters",), {"a": {"b": 1}}, "F-SCHEMA", "/parameters/a"),
    ("repeated tensor name", ("outputs", 1, "name"), "a", "F-SCHEMA", "/outputs/1/name"),
    ("too few elements", ("outputs", 0, "data"), [2, 4, 6], "F-COUNT", "/outputs/0/data"),
    ("too many elements", ("outputs", 0, "data"), [2, 4, 6, 8, 10], "F-COUNT", "/outputs/0/data"),
    ("ragged nesting", ("outputs", 0, "data"), [[2, 4], [6]], "F-COUNT", "/outputs/0/data/1"),
    ("nesting deeper than shape", ("outputs", 0, "data"), [[2, [4]], [6, 8]], "F-COUNT", "/outputs/0/data/0/1"),
    ("scalar shape with two elements", ("outputs", 1, "data"), [1.0, 2.0], "F-COUNT", "/outputs/1/data"),
    ("huge shape, small data", ("outputs", 0, "shape"), [2**64 - 1], "F-COUNT", "/outputs/0/data"),
    ("2.0 in an integer tensor", ("outputs", 0, "data"), [2, 4.0, 6, 8], "F-TYPED", "/outputs/0/data/1"),
    ("true in an integer tensor", ("outputs", 0, "data"), [2, 4, True, 8], "F-TYPED", "/outputs/0/data/2"),
    ("string in an integer tensor", ("outputs", 0, "data"), [[2, 4], [6, "8"]], "F-TYPED", "/outputs/0/data/1/1"),
    ("above INT32 range", ("outputs", 0, "data"), [2, 4, 6, 2**31], "F-TYPED", "/outputs/0/data/3"),
    ("below INT32 range", ("outputs", 0, "data"), [2, -(2**31) - 1, 6, 8], "F-TYPED", "/outputs/0/data/1"),
    ("FP16 above its range", ("outputs", 1, "data"), [70000.0], "F-TYPED", "/outputs/1/data/0"),
    ("boolean in a float tensor", ("outputs", 1, "data"), [False], "F-TYPED", "/outputs/1/data/0"),
    ("null element", ("outputs", 1, "data"), [None], "F-TYPED", "/outputs/1/data/0"),
    ("error and outputs together", ("error",), "boom", "F-SCHEMA", ""),
]


@pytest.mark.parametrize("what, path, value, requirement, where", BAD_RESPONSES, ids=[c[0] for c in BAD_RESPONSES])
def test_each_check_names_the_requirement_and_place(what, path, value, requirement, where):
    assert (requirement, where) in findings(edited(GOOD_RESPONSE, path, value), RESPONSE)


@pytest.mark.parametrize(
    "datatype, bad",
    [("UINT8", 256), ("UINT8", -1), ("UINT16", 65536), ("UINT32", 2**32), ("UINT64", 2**64), ("UINT64", -1),
     ("INT8", 128), ("INT8", -129), ("INT16", 32768), ("INT16", -32769), ("INT32", 2**31), ("INT64", 2**63),
     ("INT64", -(2**63) - 1), ("FP32", 3.5e38), ("FP64", "1e400"), ("BOOL", 1), ("BYTES", 1), ("BOOL", "null"), ("FP64", "1.0")],
)
def test_every_datatype_has_its_range(datatype, bad):
    raw = as_bytes(response(tensor("t", datatype, [1], ["BAD"]))).replace(b'"BAD"', str(bad).encode() if bad != "1.0" else b'"1.0"')
    assert [(f.requirement, f.pointer) for f in parse(raw, RESPONSE, "x").findings] == [("F-TYPED", "/outputs/0/data/0")]


@pytest.mark.parametrize(
    "datatype, edge",
    [("UINT8", 255), ("UINT64", 2**64 - 1), ("INT8", -128), ("INT64", -(2**63)), ("INT64", 2**63 - 1),
     ("FP16", 65504.0), ("FP16", 65519.0), ("FP32", 3.4028234663852886e38), ("FP64", 5e-324), ("BOOL", True), ("BYTES", "")],
)
def test_range_edges_are_accepted(datatype, edge):
    assert findings(response(tensor("t", datatype, [1], [edge])), RESPONSE) == []


def test_request_checks():
    assert ("F-SCHEMA", "") in findings({"id": "x"}, REQUEST)
    assert ("F-SCHEMA", "/inputs") in findings({"inputs": []}, REQUEST)
    assert ("F-SCHEMA", "/outputs/1/name") in findings(edited(GOOD_REQUEST, ("outputs",), [{"name": "a"}, {"name": "a"}]), REQUEST)
    assert ("F-SCHEMA", "/inputs/1/name") in findings(edited(GOOD_REQUEST, ("inputs", 1, "name"), "a"), REQUEST)


def test_strict_json_problems_are_f_json():
    assert [f.requirement for f in parse(b'{"model_name": NaN}', RESPONSE, "x").findings] == ["F-JSON"]
    assert [f.requirement for f in parse(b"[]", RESPONSE, "x").findings] == ["F-JSON"]
    assert [f.requirement for f in parse(b'{"error": "a", "error": "b"}', RESPONSE, "x").findings] == ["F-JSON"]


def test_error_responses_are_recognised_and_checked():
    assert parse(b'{"error": "x"}', RESPONSE, "x").kind == ERROR
    assert [(f.requirement, f.pointer) for f in parse(b'{"error": ""}', RESPONSE, "x").findings] == [("F-SCHEMA", "/error")]
    assert [(f.requirement, f.pointer) for f in parse(b'{"error": 3}', RESPONSE, "x").findings] == [("F-SCHEMA", "/error")]


def test_response_id_must_echo_the_request_id():
    ok = inspect(GOOD_RESPONSE, RESPONSE, "x")
    assert response_id_findings(ok, "r1") == []
    assert [f.requirement for f in response_id_findings(ok, "other")] == ["F-ID"]
    assert [f.requirement for f in response_id_findings(ok, None)] == ["F-ID"]
    missing = inspect(edited(GOOD_RESPONSE, ("id",), DELETE), RESPONSE, "x")
    assert [(f.requirement, f.pointer) for f in response_id_findings(missing, "r1")] == [("F-ID", "/id")]
    error_without_id = inspect({"error": "boom"}, RESPONSE, "x")
    assert response_id_findings(error_without_id, "r1") == []
    assert [f.requirement for f in response_id_findings(inspect({"error": "boom", "id": "zz"}, RESPONSE, "x"), "r1")] == ["F-ID"]


def test_decoded_tensors_are_flat_and_typed():
    document = inspect(GOOD_RESPONSE, RESPONSE, "x")
    a, b = document.tensors
    assert a.values.tolist() == [2, 4, 6, 8] and str(a.values.dtype) == "int32" and not a.nested
    assert str(b.values.dtype) == "float16" and b.shape == []


def test_unreadable_entries_get_one_line(tmp_path):
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "big.json").write_bytes(b"{}" + b" " * 100)
    assert "is a folder" in load(tmp_path / "folder.json", RESPONSE).findings[0].line()
    assert "over the limit" in load(tmp_path / "big.json", RESPONSE, max_bytes=50).findings[0].line()
    assert "does not exist" in load(tmp_path / "nope.json", RESPONSE).findings[0].line()


@pytest.mark.parametrize("raw", [b'{"outputs": 5}', b'{"model_name": "m", "outputs": {"a": 1}}', b'{"inputs": "x"}',
                                 b'{"model_name": "m", "outputs": [5, "x", null]}'])
@pytest.mark.parametrize("kind", ["request", "response"])
def test_tensor_lists_of_the_wrong_type_are_findings_not_crashes(raw, kind):
    document = parse(raw, kind, "f.json")
    assert document.findings and all(f.requirement == "F-SCHEMA" for f in document.findings)


# ------------------------------------------------------------------------------------ no input crashes the reader

_BIG = "1" * 5000
_HOSTILE = {"5000-digit integer": _BIG, "negative 5000-digit integer": "-" + _BIG,
            "5000-digit float": _BIG + ".5", "100,000 deep arrays": "[" * 100_000 + "1" + "]" * 100_000,
            "100,000 deep objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
            "990 deep arrays": "[" * 990 + "]" * 990, "300 deep arrays": "[" * 300 + "]" * 300}
_PLACES = {
    "top level": "{V}",
    "unknown key": '{"model_name": "m", "outputs": [], "x": {V}}',
    "model_name": '{"model_name": {V}, "outputs": []}',
    "parameters": '{"model_name": "m", "outputs": [], "parameters": {"p": {V}}}',
    "shape": '{"model_name": "m", "outputs": [{"name": "a", "shape": [{V}], "datatype": "FP64", "data": [1]}]}',
    "data": '{"model_name": "m", "outputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [{V}]}]}',
    "data itself": '{"model_name": "m", "outputs": [{"name": "a", "shape": [1], "datatype": "INT8", "data": {V}}]}',
    "tensor key": '{"model_name": "m", "outputs": [{"name": "a", "shape": [1], "datatype": "INT8", "data": [1], "z": {V}}]}',
    "repeated key": '{"model_name": "m", "outputs": [], "x": {V}, "x": 1}',
}


@pytest.mark.parametrize("place", _PLACES)
@pytest.mark.parametrize("what", _HOSTILE)
@pytest.mark.parametrize("kind", [REQUEST, RESPONSE])
def test_no_document_makes_the_reader_crash(tmp_path, what, place, kind):
    text = _PLACES[place].replace("{V}", _HOSTILE[what])
    if kind == REQUEST:
        text = text.replace('"outputs": [{', '"inputs": [{')
    path = tmp_path / "d.json"
    path.write_text(text)
    for document in (load(path, kind), parse(text.encode(), kind, str(path))):
        for finding in document.findings:
            assert finding.requirement in ("F-JSON", "F-SCHEMA", "F-TYPED", "F-COUNT")
            assert "\n" not in finding.line()
        if "deep" in what and place != "repeated key":
            # deeper than the kit reads (strictjson.MAX_DEPTH): F-JSON pointing at where it gets too deep
            assert document.findings[0].requirement == "F-JSON" and document.findings[0].pointer.startswith("/")
