"""The request strategies generate what they promise, and reach the interesting cases."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction
from random import Random

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from conformance.generate import strategies as cs

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

INT_RANGES = {
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
}
FLOAT_DTYPES = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


# --- independent checkers (written from the semantics, not from the module) -------------------


def direct_round(x: float | int, dtype) -> float:
    """Round the exact value of the decimal JSON writes for ``x`` straight to ``dtype`` (nearest,
    ties to even), without going through float64 first."""
    exact = Fraction(Decimal(repr(x))) if isinstance(x, float) else Fraction(x)
    with np.errstate(over="ignore"):
        guess = dtype(float(x))
        candidates = [guess, np.nextafter(guess, dtype(np.inf)),
                      np.nextafter(guess, dtype(-np.inf))]
    candidates = [c for c in candidates if np.isfinite(c)]
    uint = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}[dtype]

    def key(c):
        return (abs(Fraction(float(c)) - exact), int(np.array(c).view(uint)) & 1)

    return float(min(candidates, key=key))


def check_element(x, datatype: str) -> None:
    if datatype in INT_RANGES:
        lo, hi = INT_RANGES[datatype]
        assert type(x) is int, (x, datatype)
        assert lo <= x <= hi, (x, datatype)
    elif datatype in FLOAT_DTYPES:
        assert type(x) in (int, float), (x, datatype)
        dtype = FLOAT_DTYPES[datatype]
        with np.errstate(over="ignore"):
            cast = np.array([x], dtype=np.float64).astype(dtype)[0]
        assert np.isfinite(cast), (x, datatype)
        # reading the JSON decimal as float64 then casting == rounding the decimal directly
        assert float(cast) == direct_round(x, dtype), (x, datatype)
    elif datatype == "BOOL":
        assert type(x) is bool, x
    elif datatype == "BYTES":
        assert type(x) is str, x
        x.encode("utf-8")  # no lone surrogates
    else:
        raise AssertionError(f"unknown datatype {datatype}")


def flatten(data):
    if isinstance(data, list):
        return [y for item in data for y in flatten(item)]
    return [data]


def matches_shape(data, shape) -> bool:
    """``data`` nested exactly to ``shape`` (the scalar shape takes ``[x]``)."""
    if not shape:
        return isinstance(data, list) and len(data) == 1 and not isinstance(data[0], list)
    if len(shape) == 1:
        return (isinstance(data, list) and len(data) == shape[0]
                and not any(isinstance(d, list) for d in data))
    return (isinstance(data, list) and len(data) == shape[0]
            and all(matches_shape(d, shape[1:]) for d in data))


def is_flat(data, shape) -> bool:
    return (isinstance(data, list) and len(data) == max(1, math.prod(shape)) * (math.prod(shape) > 0
            or not shape) and not any(isinstance(d, list) for d in data))


def check_tensor(t, datatype=None, name=None, numeric_only=False) -> None:
    assert set(t) <= {"name", "shape", "datatype", "data", "parameters"}
    assert {"name", "shape", "datatype", "data"} <= set(t)
    assert isinstance(t["name"], str) and t["name"]
    assert t["datatype"] in cs.DATATYPES
    if numeric_only:
        assert t["datatype"] not in ("BOOL", "BYTES")
    if datatype is not None:
        assert t["datatype"] == datatype
    if name is not None:
        assert t["name"] == name
    shape = t["shape"]
    assert isinstance(shape, list) and all(type(s) is int and 0 <= s < 2**64 for s in shape)
    flat = flatten(t["data"])
    assert len(flat) == math.prod(shape)  # prod([]) == 1: a scalar holds one element
    assert is_flat(t["data"], shape) or matches_shape(t["data"], shape)
    for x in flat:
        check_element(x, t["datatype"])
    if "parameters" in t:
        check_parameters(t["parameters"])


def check_parameters(p) -> None:
    assert isinstance(p, dict)
    for k, v in p.items():
        assert isinstance(k, str)
        assert type(v) in (str, int, float, bool)
        if type(v) is float:
            assert math.isfinite(v)


def strict_json_roundtrip(doc) -> None:
    text = json.dumps(doc, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert json.loads(text) == doc


def check_request(r, min_tensors=1, max_tensors=4, numeric_only=False, allow_outputs=True,
                  allow_unknown_output=False) -> None:
    assert set(r) <= {"id", "parameters", "inputs", "outputs"}
    if "id" in r:
        assert isinstance(r["id"], str)
    if "parameters" in r:
        check_parameters(r["parameters"])
    inputs = r["inputs"]
    assert min_tensors <= len(inputs) <= max_tensors
    for t in inputs:
        check_tensor(t, numeric_only=numeric_only)
    names = [t["name"] for t in inputs]
    assert len(set(names)) == len(names)
    if not allow_outputs:
        assert "outputs" not in r
    if "outputs" in r:
        wanted = [o["name"] for o in r["outputs"]]
        assert all(set(o) <= {"name", "parameters"} for o in r["outputs"])
        assert all(isinstance(n, str) and n for n in wanted)
        assert len(set(wanted)) == len(wanted)
        unknown = set(wanted) - set(names)
        if allow_unknown_output:
            assert len(unknown) <= 1
        else:
            assert not unknown
    strict_json_roundtrip(r)


def search(strategy, condition, max_examples=3000):
    """Find an example satisfying ``condition`` (generation only, seeded: deterministic)."""
    return find(strategy, condition, random=Random(0),
                settings=settings(max_examples=max_examples, database=None, deadline=None,
                                  phases=[Phase.generate],
                                  suppress_health_check=list(HealthCheck)))


# --- constants --------------------------------------------------------------------------------


def test_datatype_constants():
    assert len(cs.DATATYPES) == 13 and len(set(cs.DATATYPES)) == 13
    assert set(cs.DATATYPES) == set(INT_RANGES) | set(FLOAT_DTYPES) | {"BOOL", "BYTES"}
    assert len(cs.NUMERIC_DATATYPES) == 11
    assert set(cs.NUMERIC_DATATYPES) == set(cs.DATATYPES) - {"BOOL", "BYTES"}
    assert cs.INTEGER_BOUNDS == INT_RANGES


@FAST
@given(cs.datatypes())
def test_datatypes(d):
    assert d in cs.DATATYPES


@FAST
@given(cs.datatypes(numeric_only=True))
def test_datatypes_numeric_only(d):
    assert d in cs.NUMERIC_DATATYPES


def test_datatypes_reach_all():
    seen = set()
    search(cs.datatypes(), lambda d: seen.add(d) or seen == set(cs.DATATYPES))
    assert seen == set(cs.DATATYPES)


# --- shapes -----------------------------------------------------------------------------------


@FAST
@given(cs.shapes())
def test_shapes_default_bounds(shape):
    assert isinstance(shape, list) and len(shape) <= 3
    assert all(type(s) is int and 0 <= s <= 4 for s in shape)
    assert math.prod(shape) <= cs.MAX_ELEMENTS


@FAST
@given(st.data(), st.integers(0, 6), st.integers(0, 10), st.integers(1, 40))
def test_shapes_custom_bounds(data, max_dims, max_side, max_elements):
    shape = data.draw(cs.shapes(max_dims=max_dims, max_side=max_side, max_elements=max_elements))
    assert len(shape) <= max_dims
    assert all(0 <= s <= max_side for s in shape)
    assert math.prod(s for s in shape if s) <= max_elements


def test_shapes_reach_scalar_and_zero_size():
    assert search(cs.shapes(), lambda s: s == []) == []
    assert 0 in search(cs.shapes(), lambda s: len(s) >= 2 and s[-1] == 0 and s[0] > 0)
    assert search(cs.shapes(), lambda s: len(s) == 3 and s[1] == 0)[1] == 0
    assert len(search(cs.shapes(), lambda s: len(s) == 3 and math.prod(s) > 8)) == 3


# --- elements ---------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", cs.DATATYPES)
def test_elements_valid(datatype):
    @FAST
    @given(st.lists(cs.elements(datatype), max_size=20))
    def run(xs):
        for x in xs:
            check_element(x, datatype)
        strict_json_roundtrip(xs)

    run()


def test_elements_unknown_datatype():
    with pytest.raises(ValueError):
        cs.elements("FP8")


def test_check_element_catches_ambiguous_float():
    # 1 + 2**-24 is a float32 midpoint written as a shortened decimal: the checker must reject it
    with pytest.raises(AssertionError):
        check_element(1 + 2**-24, "FP32")
    with pytest.raises(AssertionError):
        check_element(70000, "FP16")
    with pytest.raises(AssertionError):
        check_element(True, "INT32")
    with pytest.raises(AssertionError):
        check_element(2.0, "INT32")


@pytest.mark.parametrize("datatype", sorted(INT_RANGES))
def test_integer_elements_reach_extremes(datatype):
    lo, hi = INT_RANGES[datatype]
    for target in (lo, hi, 0, 1):
        assert search(cs.elements(datatype), lambda x, t=target: x == t) == target
    bits = int(np.iinfo(cs.NUMPY_DTYPES[datatype]).bits)
    near = search(cs.elements(datatype), lambda x: abs(abs(x) - 2 ** (bits - 1)) <= 1)
    assert abs(abs(near) - 2 ** (bits - 1)) <= 1


def test_int64_reaches_beyond_float64_precision():
    x = search(cs.elements("INT64"), lambda x: x > 2**53)
    assert x > 2**53
    assert search(cs.elements("INT64"), lambda x: x > 2**53 and float(x) != x)  # e.g. 2**53 + 1
    assert search(cs.elements("UINT64"), lambda x: x > 2**63)
    assert search(cs.elements("INT64"), lambda x: x == -1) == -1


@pytest.mark.parametrize("datatype", sorted(FLOAT_DTYPES))
def test_float_elements_reach_edge_cases(datatype):
    dtype = FLOAT_DTYPES[datatype]
    info = np.finfo(dtype)
    el = cs.elements(datatype)
    neg_zero = search(el, lambda x: x == 0 and math.copysign(1.0, x) < 0)
    assert type(neg_zero) is float and math.copysign(1.0, neg_zero) < 0
    assert search(el, lambda x: abs(x) == float(info.max))
    assert search(el, lambda x: 0 < abs(x) < float(info.smallest_normal))  # subnormal
    assert type(search(el, lambda x: type(x) is int and x not in (0, 1))) is int
    assert search(el, lambda x: type(x) is float and x != int(x))  # a fraction
    if datatype != "FP64":
        # a float64 value that gets rounded when cast to the datatype
        assert search(el, lambda x: float(dtype(x)) != x)
        # above max finite but still rounds to it
        assert search(el, lambda x: abs(x) > float(info.max))


def is_tie(x, dtype) -> bool:
    """``x`` lies exactly halfway between two neighbouring values of ``dtype``."""
    if type(x) is not float or not math.isfinite(x):
        return False
    with np.errstate(over="ignore"):
        a = dtype(x)
        if not np.isfinite(a) or float(a) == x:
            return False
        b = np.nextafter(a, dtype(np.inf) if x > float(a) else dtype(-np.inf))
    return np.isfinite(b) and Fraction(float(a)) + Fraction(float(b)) == 2 * Fraction(x)


@pytest.mark.parametrize("datatype", ["FP16", "FP32"])
def test_float_elements_reach_ties(datatype):
    dtype = FLOAT_DTYPES[datatype]
    el = cs.elements(datatype)
    # an exact tie whose decimal is exact (2049.0 for FP16): round half to even decides
    tie = search(el, lambda x: is_tie(x, dtype) and Decimal(repr(x)) == Decimal(x))
    assert is_tie(tie, dtype)
    # and a value one float64 step off a tie (what an ambiguous tie is moved to)
    assert search(el, lambda x: type(x) is float and not is_tie(x, dtype) and (
        is_tie(float(np.nextafter(x, np.inf)), dtype)
        or is_tie(float(np.nextafter(x, -np.inf)), dtype)))


def test_bool_and_bytes_elements():
    assert search(cs.elements("BOOL"), lambda x: x is True) is True
    assert search(cs.elements("BOOL"), lambda x: x is False) is False
    assert search(cs.elements("BYTES"), lambda x: x == "") == ""
    assert search(cs.elements("BYTES"), lambda x: any(ord(c) > 127 for c in x))


# --- tensors and parameters -------------------------------------------------------------------


@FAST
@given(cs.tensors())
def test_tensors_valid(t):
    check_tensor(t)
    strict_json_roundtrip(t)


@FAST
@given(st.data(), cs.datatypes(), st.sampled_from(["flat", "nested"]))
def test_tensors_fixed_datatype_name_layout(data, datatype, layout):
    t = data.draw(cs.tensors(datatype=datatype, name="x", layout=layout))
    check_tensor(t, datatype=datatype, name="x")
    if layout == "nested":
        assert matches_shape(t["data"], t["shape"])
    else:
        assert not any(isinstance(d, list) for d in t["data"])
        assert len(t["data"]) == math.prod(t["shape"])


@FAST
@given(cs.tensors(shape=[2, 0, 3], layout="nested"), cs.tensors(shape=[], layout="nested"))
def test_tensors_fixed_shape(zero, scalar):
    assert zero["shape"] == [2, 0, 3] and zero["data"] == [[], []]
    assert scalar["shape"] == [] and len(scalar["data"]) == 1
    assert not isinstance(scalar["data"][0], list)


def test_tensors_reach_layouts_and_parameters():
    nested = search(cs.tensors(), lambda t: len(t["shape"]) >= 2 and math.prod(t["shape"]) > 0
                    and isinstance(t["data"][0], list))
    assert matches_shape(nested["data"], nested["shape"])
    flat = search(cs.tensors(), lambda t: len(t["shape"]) >= 2 and math.prod(t["shape"]) > 0
                  and not isinstance(t["data"][0], list))
    assert len(flat["data"]) == math.prod(flat["shape"])
    assert "parameters" in search(cs.tensors(), lambda t: bool(t.get("parameters")))
    assert search(cs.tensors(), lambda t: t["shape"] == [])["data"].__len__() == 1


def test_tensors_bad_arguments():
    for bad in (cs.tensors(layout="columnar"), cs.tensors(datatype="STRING")):
        with pytest.raises(ValueError):
            find(bad, lambda t: True, settings=settings(database=None))


@FAST
@given(cs.parameters())
def test_parameters(p):
    check_parameters(p)
    assert len(p) <= 3
    strict_json_roundtrip(p)


def test_parameters_reach_every_value_type():
    for kind in (str, int, float, bool):
        assert search(cs.parameters(), lambda p, k=kind: any(type(v) is k for v in p.values()))


@FAST
@given(cs.tensor_names())
def test_tensor_names(n):
    assert isinstance(n, str) and n
    n.encode("utf-8")


# --- requests ---------------------------------------------------------------------------------


@FAST
@given(cs.requests())
def test_requests_valid(r):
    check_request(r)


@FAST
@given(st.data(), st.integers(1, 5), st.integers(0, 3), st.booleans(), st.booleans(), st.booleans())
def test_requests_arguments(data, lo, extra, numeric_only, allow_outputs, allow_unknown):
    kwargs = dict(min_tensors=lo, max_tensors=lo + extra, numeric_only=numeric_only,
                  allow_outputs=allow_outputs, allow_unknown_output=allow_unknown)
    r = data.draw(cs.requests(**kwargs))
    check_request(r, **kwargs)


def test_requests_reach_outputs_cases():
    reqs = cs.requests()
    assert search(reqs, lambda r: r.get("outputs") == [])["outputs"] == []
    # a reordered strict subset
    r = search(reqs, lambda r: len(r["inputs"]) >= 3 and 2 <= len(r.get("outputs") or [])
               < len(r["inputs"]) and [o["name"] for o in r["outputs"]]
               != [t["name"] for t in r["inputs"] if t["name"] in {o["name"] for o in r["outputs"]}])
    assert r["outputs"]
    assert search(reqs, lambda r: "outputs" not in r)
    assert search(reqs, lambda r: "id" in r and "parameters" in r)
    assert search(reqs, lambda r: {t["datatype"] for t in r["inputs"]} & {"BOOL", "BYTES"})
    unknown = search(cs.requests(allow_unknown_output=True), lambda r: any(
        o["name"] not in {t["name"] for t in r["inputs"]} for o in r.get("outputs", [])))
    assert unknown["outputs"]
    assert search(reqs, lambda r: len(r["inputs"]) == 4)


def test_requests_reach_interesting_tensors():
    reqs = cs.requests(numeric_only=True)
    assert search(reqs, lambda r: any(t["shape"] == [] for t in r["inputs"]))
    assert search(reqs, lambda r: any(0 in t["shape"] for t in r["inputs"]))
    assert search(reqs, lambda r: any(t["datatype"] == "INT64" and any(
        x > 2**53 for x in flatten(t["data"])) for t in r["inputs"]))
    assert search(reqs, lambda r: any(t["datatype"] in FLOAT_DTYPES and any(
        x == 0 and math.copysign(1.0, x) < 0 for x in flatten(t["data"])) for t in r["inputs"]))


def test_requests_shrink_to_simplest():
    minimal = find(cs.requests(), lambda r: True,
                   settings=settings(database=None, deadline=None, derandomize=True))
    # one tensor with at most one element (shrinking is heuristic, so only the coarse outcome is asserted)
    assert len(minimal["inputs"]) == 1 and len(minimal["inputs"][0]["data"]) <= 1
    assert "parameters" not in minimal["inputs"][0]
    assert "outputs" not in minimal and "id" not in minimal


# --- multipliers and batches ------------------------------------------------------------------


@FAST
@given(cs.multipliers())
def test_multipliers_are_ints(m):
    assert type(m) is int


def test_multipliers_reach_interesting_values():
    for target in (2, 0, -1, -3, 1, 2**31 - 1, -(2**40), 2**70):
        assert search(cs.multipliers(), lambda m, t=target: m == t) == target
    assert search(cs.multipliers(), lambda m: m > 2**64)
    assert find(cs.multipliers(), lambda m: True, settings=settings(database=None)) == 2


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cs.batches(max_size=10, numeric_only=True, allow_unknown_output=True))
def test_batches(batch):
    assert 1 <= len(batch) <= 10
    for r in batch:
        check_request(r, numeric_only=True, allow_unknown_output=True)


def test_batches_reach_many_requests():
    batch = search(cs.batches(), lambda b: len(b) >= 10, max_examples=500)
    assert 10 <= len(batch) <= 50


# ------------------------------------------------------------------- inputs of conformance/suite/test_inputs.py


def test_fp32_double_rounding_pair_rounds_twice_through_float64():
    from conformance.oracle.arithmetic import multiply

    m, x = cs.FP32_DOUBLE_ROUNDING
    assert m > 2**32
    exact = Fraction(x) * m
    once = multiply(np.array([x], dtype=np.float32), "FP32", m)[0]
    twice = np.float32(np.float64(x) * np.float64(m))
    assert once != twice
    assert abs(Fraction(float(once)) - exact) < abs(Fraction(float(twice)) - exact)


def test_every_model_as_people_write_it_is_read_by_the_kit():
    from conformance.odahu.model import parse_multiplier

    values = {parse_multiplier(text) for _, text, _, _ in cs.MODELS}
    assert {-1, 1} <= values and any(2**32 < v < 2**63 for v in values)
    assert any(2**63 < v < 2**64 for v in values) and any(v > 2**64 for v in values)
    texts = [text for _, text, _, _ in cs.MODELS]
    assert any("\r\n" in t for t in texts) and any(not t.endswith("\n") for t in texts)
    assert any(t.startswith("+") for t in texts) and any(t.startswith(" ") for t in texts) and any("\n\n" in t for t in texts)


@FAST
@given(cs.model_files())
def test_drawn_models_are_read_by_the_kit(files):
    from conformance.odahu.model import parse_multiplier

    text, name, version = files
    parse_multiplier(text)
    assert name and name.strip() == name and version


@pytest.mark.parametrize("multiplier", [2, -1, cs.FP32_DOUBLE_ROUNDING[0], 2**63 + 1025, 2**64 + 2049])
def test_float_edges_reach_their_cases(multiplier):
    from conformance.oracle.arithmetic import multiply

    requests = dict(cs.edge_requests(multiplier, np.random.default_rng(1)))
    for datatype in cs.FLOAT_DATATYPES:
        assert f"float-{datatype}-zeros" in requests  # also FP16 beyond 2**42, where every other value overflows
        assert f"float-{datatype}-bits" in requests or (datatype == "FP16" and abs(multiplier) > 2**36)
        below, above = requests.get(f"float-{datatype}-product-just-below-max"), requests.get(f"float-{datatype}-product-just-above-max")
        if below:
            x = np.array(below["inputs"][0]["data"], dtype=cs.NUMPY_DTYPES[datatype])
            assert np.isfinite(multiply(x, datatype, multiplier)).all()
        if above:
            x = np.array(above["inputs"][0]["data"], dtype=cs.NUMPY_DTYPES[datatype])
            with np.errstate(over="ignore"):
                assert not np.isfinite(multiply(x, datatype, multiplier)).any()
        if abs(multiplier) >= 2 and datatype != "FP16":
            assert below and above
    if multiplier == cs.FP32_DOUBLE_ROUNDING[0]:
        assert "float-FP32-float64-product-traps" in requests


def test_big_and_high_rank_requests():
    from conformance.generate.profiles import PROFILES

    rng = np.random.default_rng(1)
    big = cs.big_requests(PROFILES["ci"].big, rng)
    sizes = {(len(b["inputs"][0]["data"]) if b["inputs"][0]["shape"] == [len(b["inputs"][0]["data"])] else 65536)
             for _, b in big}
    assert {65535, 65536, 65537} <= sizes and any(s % 4096 in (1, 4095) and s > 65537 for s in sizes)
    families = {b["inputs"][0]["datatype"][:2] for _, b in big}
    assert families == {"IN", "UI", "FP"}
    ranks = {len(b["inputs"][0]["shape"]) for _, b in cs.high_rank_requests(rng)}
    assert {4, 5, 6} <= ranks
    names = [n for n, _ in cs.many_small_requests(300)]
    assert len(names) == len(set(names)) == 300


def _prime(n: int) -> bool:
    return n > 1 and all(n % k for k in range(2, int(n ** 0.5) + 1))


def test_batch_sizes_and_file_counts_are_primes():
    """A predictor that serves files (or rows) in chunks of a round size and loses the remainder passes a batch
    of 300 or 52 files when its chunk is 100 or 4: every profile's generated batch and many-files batch is a
    prime, the many-files batch above 100, and the many-files test sends exactly that many."""
    from conformance.generate.profiles import PROFILES

    for profile in PROFILES.values():
        assert _prime(profile.batch) and _prime(profile.files) and profile.files > 100, profile
        names = [n for n, _ in cs.many_small_requests(profile.files)]
        assert len(names) == len(set(names)) == profile.files
    assert PROFILES["ci"].batch * PROFILES["ci"].runs >= 1000  # the default profile's goal
