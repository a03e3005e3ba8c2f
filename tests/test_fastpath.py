"""The fast path (simdjson + numpy buffers) never changes a verdict: on every document it either agrees with the
precise path (orjson/stdlib + per-element checks) or declines."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.generate import strategies
from conformance.v2 import fastpath
from conformance.v2.documents import REQUEST, RESPONSE, load, parse

pytestmark = pytest.mark.skipif(fastpath.simdjson is None, reason="pysimdjson not installed")


def _summary(document):
    return (
        document.kind,
        sorted((f.requirement, f.pointer, f.message) for f in document.findings),
        [(t.name, t.datatype, t.shape, t.nested, str(getattr(t.values, "dtype", "list")),
          t.values.view(f"u{t.values.itemsize}").tolist() if isinstance(t.values, np.ndarray) and t.values.dtype.kind == "f"
          else (t.values.tolist() if isinstance(t.values, np.ndarray) else t.values)) for t in document.tensors],
    )


def _agree(tmp_path, raw: bytes, kind: str):
    path = tmp_path / "doc.json"
    path.write_bytes(raw)
    precise = parse(raw, kind, str(path))
    assert _summary(load(path, kind)) == _summary(precise)
    fast = fastpath.load(path, kind, str(path))
    if fast is not None:  # valid, or one of the faults it names itself: exactly the precise path's findings
        assert _summary(fast) == _summary(precise)
        assert precise.ok or {f.requirement for f in precise.findings} <= {"F-COUNT", "F-TYPED"}
    return fast


ADVERSARIAL = [
    ('{"model_name":"m","outputs":[{"name":"a","shape":[4],"datatype":"INT32","data":[1,[2],3,4]}]}', "hidden array, flat"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2,2],"datatype":"INT32","data":[[1,[2]],[3,4]]}]}', "hidden array, nested"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2,2],"datatype":"INT32","data":[[1,2],3,4]}]}', "mixed nesting"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2],"datatype":"INT32","data":[1,true]}]}', "bool in ints"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1,false]}]}', "bool in floats"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2],"datatype":"INT32","data":[1,2.0]}]}', "fraction in ints"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2],"datatype":"INT8","data":[1,128]}]}', "out of range"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2],"datatype":"UINT64","data":[1,-1]}]}', "negative uint64"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"INT64","data":[9223372036854775808]}]}', "above int64"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"UINT64","data":[18446744073709551616]}]}', "above uint64"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"FP16","data":[70000]}]}', "fp16 overflow"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1e400]}]}', "1e400"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[null]}]}', "null"),
    ('{"model_name":"m","outputs":[{"name":"a","name":"b","shape":[1],"datatype":"FP64","data":[1]}]}', "duplicate key in tensor"),
    ('{"model_name":"m","model_name":"m","outputs":[]}', "duplicate top-level key"),
    ('{"model_name":"m","parameters":{"k":1,"k":2},"outputs":[]}', "duplicate parameter key"),
    ('{"model_name":"m[","outputs":[{"name":"a[","shape":[1],"datatype":"FP64","data":[1]}]}', "bracket in strings"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[3],"datatype":"FP64","data":[1,2]}]}', "count"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"BOOL","data":[true]}]}', "bool tensor"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[NaN]}]}', "NaN"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"a","shape":[0],"datatype":"FP64","data":[]}]}', "repeated name"),
    ('{"model_name":"m","parameters":{"k\\u0000x":1,"k":2},"outputs":[]}', "NUL inside a key"),
    ('{"model_name":"m","id\\u0000":5,"id":"a","outputs":[]}', "NUL key beside a real one"),
    ('{"model_name":"m","parameters":{"\\u0000":1},"outputs":[]}', "key that is a NUL"),
    ('\ufeff{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]}]}', "byte order mark"),
    ('{"error":"x","outputs":[]}', "error with outputs"),
    ('{"error":"bad: [1]"}', "error response with a bracket"),
    ('[{"model_name":"m","outputs":[]}]', "top-level array"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2,2],"datatype":"UINT8","data":[[1,2],[3,-4]]}]}', "nested out of range"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[3,2],"datatype":"INT32","data":[[1,2],[3,4]]}]}', "nested count, first level"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2],"datatype":"INT32","data":[1,2,3]},{"name":"b","shape":[1],"datatype":"INT8","data":[300]},{"name":"c","shape":[1],"datatype":"FP32","data":[1.5]}]}', "two faults, a good tensor"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[3],"datatype":"INT32","data":[1,[2]]}]}', "count with a hidden array"),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[0,3],"datatype":"INT8","data":[]},{"name":"b","shape":[2,0],"datatype":"INT8","data":[[],[]]}]}', "zero-size"),
]


@pytest.mark.parametrize("raw, what", ADVERSARIAL, ids=[a[1] for a in ADVERSARIAL])
def test_adversarial_documents(tmp_path, raw, what):
    _agree(tmp_path, raw.encode(), RESPONSE)


@pytest.mark.parametrize("raw, finding", [
    ('{"model_name":"m","outputs":[{"name":"a","shape":[3],"datatype":"FP64","data":[1,2]}]}',
     ("F-COUNT", "/outputs/0/data", "2 elements, but shape [3] needs 3")),
    ('{"model_name":"m","outputs":[{"name":"a","shape":[2,2],"datatype":"UINT8","data":[[1,2],[3,-4]]}]}',
     ("F-TYPED", "/outputs/0/data/1/1", "-4: out of UINT8's range [0, 255]")),
])
def test_the_fast_path_names_count_and_range_faults_itself(tmp_path, raw, finding):
    """A failing big file is not turned into Python objects for these two faults (issue 10: memory)."""
    fast = _agree(tmp_path, raw.encode(), RESPONSE)
    assert fast is not None and [(f.requirement, f.pointer, f.message) for f in fast.findings] == [finding]


def test_the_fast_path_is_taken_for_large_valid_data(tmp_path):
    rng = np.random.default_rng(1)
    body = {"model_name": "m", "outputs": [
        {"name": "i", "shape": [300, 300], "datatype": "INT32", "data": rng.integers(-(2**31), 2**31, (300, 300)).tolist()},
        {"name": "u", "shape": [1000], "datatype": "UINT64", "data": rng.integers(0, 2**64 - 1, 1000, dtype=np.uint64).tolist()},
        {"name": "f", "shape": [10, 10, 10], "datatype": "FP16", "data": rng.standard_normal((10, 10, 10)).astype(np.float16).tolist()},
    ]}
    assert _agree(tmp_path, json.dumps(body).encode(), RESPONSE) is not None


def _mutations(document: dict) -> st.SearchStrategy:
    text = json.dumps(document)
    return st.sampled_from([
        text,
        text.replace("]", ",1]", 1),
        text.replace("[", "[[", 1).replace("]", "]]", 1),
        text.replace(", ", ", true, ", 1),
        text.replace('"data": [', '"data": [0.5, ', 1),
        text.replace('"shape": [', '"shape": [1, ', 1),
        text.replace('"name"', '"name": "x", "name"', 1),
        text[:-3],
    ])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data(), strategies.requests(max_tensors=3))
def test_fast_and_precise_paths_agree(tmp_path, data, request):
    raw = data.draw(_mutations(request)).encode()
    _agree(tmp_path, raw, REQUEST)


def test_fastpath_builds_on_envelope_not_documents():
    """No import cycle: fastpath needs only the shared envelope checks; documents builds on both."""
    import ast
    import inspect as source

    from conformance.v2 import documents, envelope

    imported = {node.module for node in ast.walk(ast.parse(source.getsource(fastpath))) if isinstance(node, ast.ImportFrom)}
    assert "conformance.v2.envelope" in imported and "conformance.v2.documents" not in imported
    assert documents.Document is envelope.Document and documents.envelope_findings is envelope.envelope_findings


@pytest.mark.parametrize("text", [
    '{"model_name": "m", "outputs": [], "x": ' + "[" * 1000 + "]" * 1000 + "}",
    '{"model_name": "m", "outputs": [], "parameters": {"p": ' + "[" * 300 + "]" * 300 + "}}",
    '{"model_name": "m", "outputs": [{"name": "a", "shape": [' + ", ".join(["1"] * 300) + '], "datatype": "INT8", "data": '
    + "[" * 300 + "1" + "]" * 300 + "}]}",
])
def test_fastpath_leaves_documents_deeper_than_the_kit_reads_to_the_precise_path(tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text)
    assert fastpath.load(path, RESPONSE, str(path)) is None
    document = load(path, RESPONSE)
    assert document.findings[0].requirement == "F-JSON" and "nested more than" in document.findings[0].message
