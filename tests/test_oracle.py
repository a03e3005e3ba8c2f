"""The oracle implements M-* exactly (checked against an independent element-by-element computation), and the
comparator agrees with it on thousands of generated requests while rejecting every kind of wrong answer."""

from fractions import Fraction

import numpy as np
import pytest
from helpers import request, tensor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.generate import strategies
from conformance.odahu.model import Model
from conformance.oracle.arithmetic import multiply
from conformance.oracle.compare import compare, explain
from conformance.oracle.expect import expect, json_values
from conformance.v2.datatypes import DATATYPES
from conformance.v2.documents import REQUEST, RESPONSE, inspect, parse
from conformance.v2.strictjson import dumps

KIT = Model(2, "multiplier", "1")
_FORMATS = {"FP16": (11, -14, 15), "FP32": (24, -126, 127), "FP64": (53, -1022, 1023)}


def round_to_format(q: Fraction, datatype: str) -> float:
    """Independent reference: the exact rational ``q`` rounded to nearest-even in ``datatype`` (inf on overflow)."""
    bits, emin, emax = _FORMATS[datatype]
    if q == 0:
        return 0.0
    sign, q = (-1 if q < 0 else 1), abs(q)
    exponent = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** exponent > q:
        exponent -= 1
    exponent = max(exponent, emin)
    ulp = Fraction(2) ** (exponent - bits + 1)
    units, rest = divmod(q, ulp)
    units = int(units)
    if rest > ulp / 2 or (rest == ulp / 2 and units % 2):
        units += 1
    value = units * ulp
    if value >= Fraction(2) ** (emax + 1):
        return sign * float("inf")
    return sign * float(value)


def reference_element(x, datatype: str, m: int):
    dt = DATATYPES[datatype]
    if dt.kind == "int":
        wrapped = (x * m) % (1 << dt.bits)
        return wrapped - (1 << dt.bits) if dt.minimum < 0 and wrapped > dt.maximum else wrapped
    typed = float(dt.numpy.type(float(x)))
    if typed == 0 or m == 0:  # IEEE: the sign of a zero product is the XOR of the signs
        negative = (np.signbit(typed) != (m < 0)) if m != 0 else bool(np.signbit(typed))
        return -0.0 if negative else 0.0
    return round_to_format(Fraction(typed) * m, datatype)


@settings(max_examples=400, deadline=None)
@given(st.data(), strategies.datatypes(numeric_only=True), strategies.multipliers())
def test_multiply_matches_exact_arithmetic(data, datatype, m):
    values = data.draw(st.lists(strategies.elements(datatype), min_size=1, max_size=8))
    dt = DATATYPES[datatype]
    array = np.array([float(v) for v in values] if dt.kind == "float" else values, dtype=np.float64 if dt.kind == "float" else object)
    typed = array.astype(dt.numpy)
    with np.errstate(over="ignore"):
        got = multiply(typed, datatype, m)
    want = [reference_element(v, datatype, m) for v in values]
    if dt.kind == "int":
        assert got.tolist() == want
    else:
        assert got.dtype == dt.numpy
        for g, w in zip(got.tolist(), want):
            assert g == w and np.signbit(g) == np.signbit(w), (g, w)


def test_integer_wrap_at_every_width():
    for name in ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"):
        dt = DATATYPES[name]
        values = np.array([dt.minimum, dt.maximum], dtype=dt.numpy)
        assert multiply(values, name, 3).tolist() == [reference_element(v, name, 3) for v in (dt.minimum, dt.maximum)]
    assert multiply(np.array([2**53 + 1], dtype=np.int64), "INT64", 3).tolist() == [3 * (2**53 + 1)]
    assert multiply(np.array([5], dtype=np.uint8), "UINT8", -1).tolist() == [251]


def test_float_rounding_and_signed_zero():
    assert multiply(np.array([-1.5], dtype=np.float32), "FP32", 0).tolist() == [-0.0]
    assert np.signbit(multiply(np.array([-1.5], dtype=np.float32), "FP32", 0)[0])
    assert multiply(np.array([2049.0], dtype=np.float16), "FP16", 1).tolist() == [2048.0]
    big = 2**70 + 1  # beyond the fast path: exact rounding still holds
    assert multiply(np.array([3.0], dtype=np.float32), "FP32", big)[0] == np.float32(round_to_format(Fraction(3 * big), "FP32"))


def test_expected_errors_name_their_requirement():
    cases = {
        "M-UNSUPPORTED": request(tensor("a", "BOOL", [1], [True])),
        "M-SELECT": request(tensor("a"), outputs=[{"name": "zz"}]),
        "M-FINITE": request(tensor("a", "FP16", [1], [40000.0])),
        "P-EVERY": request(tensor("a", "INT32", [3], [1, 2])),
    }
    for requirement, body in cases.items():
        assert expect(body, KIT).requirement == requirement
    selected = expect(request(tensor("a", "FP16", [1], [40000.0]), tensor("b", "FP16", [1], [1.0]), outputs=[{"name": "b"}]), KIT)
    assert not selected.is_error and [t.name for t in selected.outputs] == ["b"]


def _nested_copy(document: dict) -> dict:
    outputs = []
    for out in document["outputs"]:
        data = out["data"]
        if len(out["shape"]) >= 2 and data:
            data = np.array(data, dtype=object).reshape(out["shape"]).tolist()
        outputs.append({**out, "data": data})
    return {**document, "outputs": outputs}


def _long_floats(document: dict) -> dict:
    """Floats printed as the full double of the typed value (0.20000000298023224 for FP32 0.2): same value."""
    outputs = []
    for out in document["outputs"]:
        if out["datatype"] in ("FP16", "FP32"):
            out = {**out, "data": np.array(out["data"]).astype(DATATYPES[out["datatype"]].numpy).astype(np.float64).tolist()}
        outputs.append(out)
    return {**document, "outputs": outputs}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(strategies.batches(min_size=20, max_size=40, allow_unknown_output=True), strategies.multipliers())
def test_oracle_and_comparator_agree_on_generated_requests(batch, m):
    """About 2,200 generated requests per run (80 batches of 20-40), each answer checked in up to 3 layouts."""
    model = KIT.with_multiplier(m)
    for body in batch:
        req = inspect(body, REQUEST, "req.json")
        expected = expect(req, model)
        document = expected.document()
        variants = [document] if expected.is_error else [document, _nested_copy(document), _long_floats(document)]
        for variant in variants:
            actual = parse(dumps(variant), RESPONSE, "out.json")
            assert compare(actual, expected, req) == [], explain(actual, expected)


GOOD = request(tensor("a", "INT32", [2, 2], [[1, 2], [3, 4]]), tensor("b", "FP32", [2], [0.1, -0.0]), id="r")


def _wrong(edit):
    req = inspect(GOOD, REQUEST, "req.json")
    expected = expect(req, KIT)
    document = expected.document()
    edit(document)
    return [f.requirement for f in compare(parse(dumps(document), RESPONSE, "out.json"), expected, req)]


@pytest.mark.parametrize(
    "what, edit, requirement",
    [
        ("one integer off", lambda d: d["outputs"][0]["data"].__setitem__(3, 9), "M-VALUE"),
        ("one float ulp off", lambda d: d["outputs"][1]["data"].__setitem__(0, float(np.nextafter(np.float32(0.2), np.float32(1)))), "M-VALUE"),
        ("-0.0 written as 0.0", lambda d: d["outputs"][1]["data"].__setitem__(1, 0.0), "M-VALUE"),
        ("only the first tensor", lambda d: d["outputs"].pop(), "M-EVERY"),
        ("tensors reordered", lambda d: d["outputs"].reverse(), "M-EVERY"),
        ("tensor renamed", lambda d: d["outputs"][0].__setitem__("name", "output-0"), "M-EVERY"),
        ("datatype widened", lambda d: d["outputs"][0].__setitem__("datatype", "INT64"), "M-DTYPE"),
        ("shape flattened", lambda d: d["outputs"][0].__setitem__("shape", [4]), "M-SHAPE"),
        ("id dropped", lambda d: d.pop("id"), "F-ID"),
        ("id changed", lambda d: d.__setitem__("id", "other"), "F-ID"),
        ("model name wrong", lambda d: d.__setitem__("model_name", "model"), "F-MODEL"),
        ("model version missing", lambda d: d.pop("model_version"), "F-MODEL"),
        ("data not multiplied", lambda d: d["outputs"][0].__setitem__("data", [1, 2, 3, 4]), "M-VALUE"),
        ("count wrong", lambda d: d["outputs"][0]["data"].pop(), "F-COUNT"),
    ],
)
def test_comparator_rejects_each_wrong_answer(what, edit, requirement):
    assert requirement in _wrong(edit)


def test_error_where_outputs_are_due_and_vice_versa():
    req = inspect(request(tensor("s", "INT32", [], [4])), REQUEST, "req.json")
    refused = parse(b'{"error": "scalars unsupported"}', RESPONSE, "out.json")
    assert [f.requirement for f in compare(refused, expect(req, KIT), req)] == ["M-EMPTY"]
    nested = inspect(request(tensor("n", "INT32", [1, 2], [[4, 5]])), REQUEST, "req.json")
    assert [f.requirement for f in compare(refused, expect(nested, KIT), nested)] == ["M-LAYOUT"]
    boolean = inspect(request(tensor("b", "BOOL", [1], [True])), REQUEST, "req.json")
    answered = parse(dumps({"model_name": "multiplier", "model_version": "1", "outputs": [tensor("b", "BOOL", [1], [True])]}), RESPONSE, "o")
    assert [f.requirement for f in compare(answered, expect(boolean, KIT), boolean)] == ["M-UNSUPPORTED"]


def test_json_values_round_trip_in_their_type():
    expected = expect(request(tensor("f", "FP32", [3], [0.1, 1e-45, 3.0e38])), KIT.with_multiplier(1))
    values = json_values(expected.outputs[0])
    assert values[0] == 0.1 and np.array(values, dtype=np.float32).tolist() == expected.outputs[0].values.tolist()
