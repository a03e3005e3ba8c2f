"""F-JSON: strict JSON loading, its fast path and its exact fallback agree."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.v2.strictjson import JSONProblem, dumps, loads


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": [Infinity]}', "Infinity"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"x": {"b": 1, "b": 1}}', "duplicate key 'b'"),
        (b'[1, 2, {"b": 1, "b": 2}]', "duplicate key 'b'"),
        (b'{"s": "a:b{", "k": 1, "k": 1}', "duplicate key 'k'"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b'{"a": "\xff"}', "not UTF-8"),
        (b'{"a": "\\ud800"}', "lone surrogate"),
        (b'{"a": [1, 2', "invalid JSON"),
        (b'{"a": 1} {"b": 2}', "invalid JSON"),
        (b"{'a': 1}", "invalid JSON"),
    ],
)
def test_rejects_what_rfc8259_forbids(raw, reason):
    with pytest.raises(JSONProblem, match=reason):
        loads(raw)


def test_keeps_colons_and_braces_inside_strings():
    assert loads(b'{"error": "bad: {x}", "id": "a:b"}') == {"error": "bad: {x}", "id": "a:b"}


def test_numbers_beyond_double_range_are_valid_json():
    # 1e400 is valid JSON; it is the datatype check (F-TYPED) that must reject it, not the parser.
    assert loads(b"[1e400]") == [float("inf")]


def test_large_integers_stay_exact():
    assert loads(b"[18446744073709551615, -9223372036854775808]") == [2**64 - 1, -(2**63)]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fast_path_equals_the_standard_library(value):
    raw = json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert loads(raw) == json.loads(raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc:{"), json_values), min_size=2, max_size=5))
def test_duplicate_keys_are_always_caught(pairs):
    text = "{" + ",".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        with pytest.raises(JSONProblem, match="duplicate key"):
            loads(text.encode())
    else:
        assert loads(text.encode()) == dict(pairs)


def test_dumps_writes_strict_json_with_a_newline():
    raw = dumps({"data": [1, 2.5, -0.0]}, indent=True)
    assert raw.endswith(b"\n") and loads(raw) == {"data": [1, 2.5, -0.0]}
    for bad in (float("nan"), float("inf"), np.array([1.0, np.inf])):
        with pytest.raises(ValueError, match="strict JSON"):
            dumps({"x": [bad]})


@pytest.mark.parametrize("indent", [False, True])
def test_dumps_writes_integers_beyond_64_bits_exactly(indent):
    """orjson refuses them; they are valid JSON (an FP64 element may be written as 2**70)."""
    value = {"data": [2**70, -(2**64) - 1, 1.5], "array": np.arange(2, dtype=np.int64)}
    assert json.loads(dumps(value, indent=indent)) == {"data": [2**70, -(2**64) - 1, 1.5], "array": [0, 1]}


# ------------------------------------------------------------------------------------ no input crashes the reader


def test_an_integer_beyond_python_s_conversion_limit_is_read_as_a_huge_number():
    from conformance.v2.strictjson import HugeInteger

    value = loads(b'{"a": [' + b"7" * 5000 + b', -' + b"1" * 5000 + b"]}")
    big, small = value["a"]
    assert isinstance(big, HugeInteger) and big > 0 and small < 0
    assert repr(big) == "<an integer of 5000 digits>" and "5000 digits" in repr(small)


def test_nesting_deeper_than_the_limit_is_a_problem_with_a_pointer():
    from conformance.v2.strictjson import MAX_DEPTH

    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    for raw in (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                b'{"x": ' + b'{"k":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
                b'{"x": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"):
        with pytest.raises(JSONProblem) as caught:
            loads(raw)
        assert caught.value.pointer.startswith("/x/") and "nested more than" in str(caught.value)
        assert len(caught.value.pointer.split("/")) - 1 == MAX_DEPTH
