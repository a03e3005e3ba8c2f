"""The platform's own validate step (odahu-flow 1.6.1: a bare Go ``json.Unmarshal`` per ``*.json`` entry), as
:mod:`conformance.odahu.platform_rules` models it: every fact of issue 9 as a table, a hypothesis test of
near-valid documents against an independent model written here, and the per-entry folder decisions."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.odahu import platform_rules
from conformance.odahu.platform_rules import (
    DROPPED,
    FAILS_STEP,
    KEPT,
    accepts,
    decide_entry,
    decide_folder,
)

BIG_INT = "1" * 5000
TENSOR = '{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]}'
REQ = '{"id": "r", "inputs": [' + TENSOR + '], "outputs": [{"name": "a"}], "parameters": {"p": 1}}'
RESP = '{"model_name": "m", "model_version": "1", "id": "r", "outputs": [' + TENSOR + '], "parameters": {"p": 1}}'


def tensor(**fields: str) -> str:
    """TENSOR with fields replaced (``None`` removes one); values are JSON text."""
    body = {"name": '"a"', "shape": "[2]", "datatype": '"INT32"', "data": "[1, 2]"}
    body.update(fields)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in body.items() if v is not None) + "}"


def deep(levels: int, leaf: str = "1") -> str:
    return "[" * levels + leaf + "]" * levels


# (document text, request kept?, response kept?) with the side's tensor list under its own key.
BOTH_SIDES = [
    # no required fields
    ("{}", True, True),
    ("null", True, True),
    ("  null\n", True, True),
    # not an object
    ("[]", False, False),
    ("5", False, False),
    ('"x"', False, False),
    ("true", False, False),
    # unknown keys hold anything
    ('{"extra": ' + BIG_INT + "}", True, True),
    ('{"extra": -' + BIG_INT + ".5e99999}", True, True),
    ('{"extra": ' + deep(2000) + "}", True, True),
    ('{"extra": ' + deep(100_000) + "}", True, True),
    ('{"extra": {"a": [1e400, {"b": null}]}}', True, True),
    ('{"ınputs": 5, "İd": 5}', True, True),  # dotless i / dotted I do not fold to i
    # parameters: map[string]interface{} with float64 numbers
    ('{"parameters": null}', True, True),
    ('{"parameters": {}}', True, True),
    ('{"parameters": {"a": [1, {"b": "c"}, true, null]}}', True, True),
    ('{"parameters": {"a": 1e308}}', True, True),
    ('{"parameters": {"a": 1e-400}}', True, True),
    ('{"parameters": {"a": 1e400}}', False, False),
    ('{"parameters": {"a": -1e400}}', False, False),
    ('{"parameters": {"a": ' + "9" * 400 + "}}", False, False),
    ('{"parameters": {"a": ' + BIG_INT + "}}", False, False),
    ('{"parameters": {"a": [[{"b": 1e400}]]}}', False, False),
    ('{"parameters": {"a": ' + deep(100_000) + "}}", True, True),
    ('{"parameters": {"a": ' + deep(100_000, "1e400") + "}}", False, False),
    ('{"parameters": []}', False, False),
    ('{"parameters": 5}', False, False),
    ('{"parameters": "x"}', False, False),
    ('{"PARAMETERS": 5, "parameters": {}}', False, False),
    # id is a string
    ('{"id": null}', True, True),
    ('{"id": 5}', False, False),
    ('{"ID": 5, "id": "r"}', False, False),
    ('{"id": 5, "id": "r"}', False, False),  # an earlier wrongly typed copy fails even though the last wins
    ('{"id": "r", "id": "s"}', True, True),
    # encoding and syntax
    ("", False, False),
    ("   \n", False, False),
    ("\ufeff{}", False, False),
    ("{} {}", False, False),
    ("{}x", False, False),
    ('{"id": NaN}', False, False),
    ('{"extra": Infinity}', False, False),
    ('{"extra": -Infinity}', False, False),
    ("// c\n{}", False, False),
    ("{/* c */}", False, False),
    ('{"extra": "\\ud800"}', True, True),  # Go's unquote makes a lone surrogate escape U+FFFD (see below)
    ('{"extra": "\\udc00\\ud800"}', True, True),
    ('{"id": "\\ud800", "\\udfff": "\\ud800x"}', True, True),
    ('{"extra": "\\ud83d\\ude00"}', True, True),
    ('{"extra": [1,]}', False, False),
    ('{"extra": 01}', False, False),
    ('{"extra": 1.}', False, False),
    ('{"extra": "a\x01"}', False, False),
    ('{"extra": ' + deep(100_000) + "", False, False),  # unclosed
]


@pytest.mark.parametrize("kind", ["request", "response"])
@pytest.mark.parametrize("text,request_kept,response_kept", BOTH_SIDES)
def test_envelope_rules_on_both_sides(text, request_kept, response_kept, kind):
    kept, reason = accepts(text.encode("utf-8"), kind)
    assert kept is (request_kept if kind == "request" else response_kept), reason
    assert kept or (reason and "\n" not in reason)


# Invalid UTF-8 and lone surrogates, as Go 1.14's encoding/json decides them:
# - scanner.go stateInString refuses only bytes below 0x20 inside a string; any other byte, 0x80 and up included,
#   continues the string. So invalid UTF-8 inside a string (a value or a key) is not a syntax error.
# - decode.go unquoteBytes then "coerces to well-formed UTF-8": each byte that utf8.DecodeRune reads as
#   (utf8.RuneError, 1) becomes U+FFFD, and a \\uXXXX surrogate that utf16.DecodeRune cannot pair with the next
#   escape "falls back to replacement rune" (unicode.ReplacementChar). Nothing fails: the file is kept, passed on
#   byte for byte, and its request reaches the predictor (which owes it an error response: not strict JSON).
# - Outside a string (stateBeginValue, stateEndValue, ...), a byte 0x80 or above is not JSON syntax: "invalid
#   character ... looking for beginning of value" (or "after object key"): the file is dropped.
INVALID_UTF8_KEPT = [
    pytest.param(b'{"id": "\xff"}', id="byte-in-a-string-field"),
    pytest.param(b'{"extra": "\xed\xa0\x80"}', id="utf8-encoded-surrogate-in-an-unknown-key"),
    pytest.param(b'{"a": "\xc3"}', id="truncated-sequence"),
    pytest.param(b'{"a": "\xc0\x80"}', id="overlong-nul"),
    pytest.param(b'{"a\xff": 1}', id="byte-in-a-key"),
    pytest.param(b'{"inputs\xff": 5}', id="byte-in-a-field-name-reaches-no-field"),
    pytest.param(b'{"inputs": [{"name": "x\xfe", "datatype": "INT32", "shape": [1], "data": ["\xff"]}]}',
                 id="bytes-in-a-tensor"),
    pytest.param(b'{"parameters": {"p\xff": "\x80"}, "outputs": [{"name": "\xf8"}]}', id="bytes-in-parameters"),
    pytest.param(b'{"id": "\\ud800"}', id="lone-high-surrogate"),
    pytest.param(b'{"id": "\\udc00"}', id="lone-low-surrogate"),
    pytest.param(b'{"id": "\\udc00\\ud800"}', id="pair-in-the-wrong-order"),
    pytest.param(b'{"id": "\\ud800\\u0041"}', id="high-surrogate-then-a-letter"),
    pytest.param(b'{"\\ud800": 1}', id="lone-surrogate-in-a-key"),
    pytest.param(b'{"id": "\\ud83d\\ude00"}', id="surrogate-pair-is-valid"),
]


@pytest.mark.parametrize("raw", INVALID_UTF8_KEPT)
def test_invalid_utf8_and_lone_surrogates_in_strings_are_kept(raw):
    for kind in ("request", "response"):
        assert accepts(raw, kind) == (True, ""), kind
        assert platform_rules._exact(raw, platform_rules.STRUCTS[kind]) == (True, ""), kind


@pytest.mark.parametrize("raw,column", [(b"\xff{}", 1), (b'{"id": 1\xff}', 9), (b'{"id": "r"\xc3}', 11),
                                        (b'{\xff"id": "r"}', 2), (b'{"id":\xc2\xa0"r"}', 7)])
def test_a_non_ascii_byte_outside_strings_is_a_syntax_error(raw, column):
    for kind in ("request", "response"):
        kept, reason = accepts(raw, kind)
        assert not kept and reason.startswith("does not parse as JSON") and f"column {column}" in reason, reason
    assert "a byte 0xff that is not UTF-8, outside a string" in accepts(b"\xff{}", "request")[1]


def test_invalid_utf8_keeps_the_other_rules():
    # Kept for its strings, a file still fails on the types: the replacement changes nothing else.
    assert accepts(b'{"id": 5, "x": "\xff"}', "request") == (False, "id: a number where Go expects string")
    assert not accepts(b'{"id": "\xff", "inputs": [{"shape": [1.5]}]}', "request")[0]
    assert not accepts(b'{"model_name": "\\ud800", "outputs": 5}', "response")[0]


# Tensor rules: the same on both sides (RequestInput and ResponseOutput share their fields).
TENSOR_CASES = [
    (tensor(), True),
    (tensor(name=None, shape=None, datatype=None, data=None), True),
    ("{}", True),
    ("null", True),
    (tensor(name="null", shape="null", datatype="null", data="null"), True),
    (tensor(datatype='"NOT-A-TYPE"'), True),
    (tensor(data="[[[[1]]]]"), True),  # data deeper than its shape
    (tensor(data='[1, "x", true, null, {"a": [1]}]'), True),
    (tensor(data=deep(100_000)), True),
    (tensor(data="[1e308, -1e308, 1e-400]"), True),
    (tensor(data="[" + "9" * 308 + "]"), True),
    (tensor(data="[1e400]"), False),
    (tensor(data="[" + "9" * 400 + "]"), False),
    (tensor(data="[" + BIG_INT + "]"), False),
    (tensor(data="[[1, 2], [3, -1e400]]"), False),
    (tensor(data=deep(100_000, "1e400")), False),
    (tensor(data='[{"a": 1e400}]'), False),
    (tensor(data="5"), False),
    (tensor(data='"x"'), False),
    (tensor(data="{}"), False),
    (tensor(data="true"), False),
    # shape is []int (64-bit)
    (tensor(shape="[]"), True),
    (tensor(shape="[0, -1, 9223372036854775807, -9223372036854775808]"), True),
    (tensor(shape="[-0]"), True),
    (tensor(shape="[null, 2]"), True),
    (tensor(shape="[2.0]"), False),
    (tensor(shape="[1E0]"), False),
    (tensor(shape="[1e0]"), False),
    (tensor(shape="[1.5]"), False),
    (tensor(shape="[9223372036854775808]"), False),
    (tensor(shape="[-9223372036854775809]"), False),
    (tensor(shape="[18446744073709551615]"), False),
    (tensor(shape="[" + BIG_INT + "]"), False),
    (tensor(shape='["2"]'), False),
    (tensor(shape="[true]"), False),
    (tensor(shape="[[2]]"), False),
    (tensor(shape="[{}]"), False),
    (tensor(shape="2"), False),
    (tensor(shape="{}"), False),
    # strings
    (tensor(name="5"), False),
    (tensor(datatype="5"), False),
    (tensor(name="[]"), False),
    (tensor(datatype="{}"), False),
    (tensor(name="true"), False),
    (tensor(parameters='{"a": "b"}'), True),
    (tensor(parameters="[]"), False),
    (tensor(parameters='{"a": 1e400}'), False),
    # keys fold case-insensitively (Unicode simple folding): every copy reaches the field
    (tensor(SHAPE="[1.5]"), False),
    (tensor(Datatype="5"), False),
    (tensor(DATA="5"), False),
    (tensor(Name="[]"), False),
    (tensor(ſhape="[1.5]"), False),  # U+017F LATIN SMALL LETTER LONG S folds to s
    (tensor(SHAPE="[3]"), True),
    (tensor(ſhape="[3]"), True),
    (tensor(ſhape='"x"'), False),
    (tensor(shapes='"x"'), True),  # not a field name
    (tensor(**{"sha pe": '"x"'}), True),
    (tensor(**{"datatypé": "5"}), True),
    # repeated keys: every copy is decoded
    ('{"name": 5, "name": "a"}', False),
    ('{"name": "a", "name": 5}', False),
    ('{"shape": [1.5], "shape": [2]}', False),
    ('{"shape": [2], "shape": [3]}', True),
    ('{"data": {}, "data": [1]}', False),
    ('{"data": [1e400], "data": [1]}', False),
    # unknown keys in a tensor
    (tensor(zz=BIG_INT), True),
    (tensor(zz=deep(100_000)), True),
    (tensor(zz="[1e400]"), True),
]


@pytest.mark.parametrize("text,kept", TENSOR_CASES)
def test_tensor_rules_for_request_inputs(text, kept):
    raw = ('{"inputs": [' + text + "]}").encode("utf-8")
    assert accepts(raw, "request")[0] is kept, accepts(raw, "request")[1]
    # the same object under a key the request does not know is ignored whatever it holds
    if "\\ud800" not in text:
        assert accepts(('{"inputz": [' + text + "]}").encode("utf-8"), "request")[0]


@pytest.mark.parametrize("text,kept", TENSOR_CASES)
def test_tensor_rules_for_response_outputs(text, kept):
    raw = ('{"model_name": "m", "outputs": [' + text + "]}").encode("utf-8")
    assert accepts(raw, "response")[0] is kept, accepts(raw, "response")[1]


REQUEST_ONLY = [
    (REQ, True),
    ('{"inputs": []}', True),
    ('{"inputs": null}', True),
    ('{"inputs": [null]}', True),
    ('{"INPUTS": [{}]}', True),
    ('{"Inputs": {}}', False),
    ('{"inputs": 5}', False),
    ('{"inputs": {}}', False),
    ('{"inputs": [5]}', False),
    ('{"inputs": ["x"]}', False),
    ('{"inputs": [[]]}', False),
    ('{"inputs": [true]}', False),
    ('{"outputs": [{"name": "a", "parameters": {}}]}', True),
    ('{"outputs": [{"name": 5}]}', False),
    ('{"outputs": [{"shape": [1.5], "data": 5}]}', True),  # RequestOutput has name and parameters only
    ('{"outputs": {}}', False),
    ('{"OUTPUTS": [5]}', False),
    ('{"model_name": 5, "model_version": 5}', True),  # response fields are unknown keys in a request
    ('{"ıd": 5}', True),
]

RESPONSE_ONLY = [
    (RESP, True),
    ('{"model_name": null, "outputs": null}', True),
    ('{"outputs": []}', True),
    ('{"model_name": 5}', False),
    ('{"Model_Name": 1, "model_name": "m"}', False),
    ('{"MODEL_VERSION": 1}', False),
    ('{"model_verſion": 1}', False),  # long s reaches model_version
    ('{"model_version": 1}', False),
    ('{"model_version": "1"}', True),
    ('{"model_name": "m", "model_name": 5}', False),
    ('{"outputs": 5}', False),
    ('{"outputs": {}}', False),
    ('{"outputs": [5]}', False),
    ('{"Outputs": [{"DATA": 5}]}', False),
    ('{"inputs": 5}', True),  # a request field is an unknown key in a response
    ('{"error": "bad request"}', True),
    ('{"error": 5}', True),
    ('{"model-name": 5, "modelname": 5, "model_name ": 5}', True),
]


@pytest.mark.parametrize("text,kept", REQUEST_ONLY)
def test_request_struct(text, kept):
    assert accepts(text.encode("utf-8"), "request")[0] is kept


@pytest.mark.parametrize("text,kept", RESPONSE_ONLY)
def test_response_struct(text, kept):
    assert accepts(text.encode("utf-8"), "response")[0] is kept


def test_kelvin_sign_folds_to_k():
    # No field name holds a k, so the Kelvin sign (U+212A) reaches nothing here; the folding itself is Go's.
    assert platform_rules.fold("\u212a") == "k" and platform_rules.fold("\u017fHAPE") == "shape"
    assert platform_rules.fold("İD") != "id"


def test_the_reason_names_the_place_and_the_key():
    kept, reason = accepts(b'{"inputs": [{"SHAPE": [1.5]}]}', "request")
    assert not kept and reason.startswith("inputs/0/SHAPE/0") and "'SHAPE' reaches field 'shape'" in reason
    kept, reason = accepts(b'{"model_name": 1, "model_name": "m"}', "response")
    assert not kept and reason.startswith("model_name")


def test_exact_path_and_fast_path_agree_on_the_tables():
    for text, *_ in BOTH_SIDES + [(f'{{"inputs": [{t}]}}', 0) for t, _ in TENSOR_CASES] + REQUEST_ONLY:
        raw = text.encode("utf-8")
        for kind in ("request", "response"):
            assert accepts(raw, kind)[0] is platform_rules._exact(raw, platform_rules.STRUCTS[kind])[0], text[:80]


# ------------------------------------------------------------------------------------------------ hypothesis
# An independent, deliberately simple model of the rules: a recursive walk over a tree that keeps every copy of
# a key and every number's text. Small documents only (it recurses).


class _Pairs(list):
    pass


class _Num(str):
    pass


FIELDS = {
    "request": {"id": "s", "parameters": "map", "inputs": ("list", "tensor"), "outputs": ("list", "routput")},
    "response": {"id": "s", "model_name": "s", "model_version": "s", "parameters": "map",
                 "outputs": ("list", "tensor")},
    "tensor": {"name": "s", "datatype": "s", "parameters": "map", "shape": ("list", "int"), "data": ("list", "any")},
    "routput": {"name": "s", "parameters": "map"},
}


def _same(key: str, field: str) -> bool:
    if len(key) != len(field):
        return False
    for k, f in zip(key, field):
        if k == f or (k.isascii() and k.lower() == f) or (k == "\u017f" and f == "s") or (k == "\u212a" and f == "k"):
            continue
        return False
    return True


def _model_ok(value: object, kind: object) -> bool:
    if value is None:
        return True
    if kind == "any":
        if isinstance(value, _Num):
            return abs(float(value)) != float("inf")
        if isinstance(value, _Pairs):
            return all(_model_ok(v, "any") for _, v in value)
        if isinstance(value, list):
            return all(_model_ok(v, "any") for v in value)
        return True
    if kind == "s":
        return isinstance(value, str) and not isinstance(value, _Num)
    if kind == "int":
        if not isinstance(value, _Num) or any(c in value for c in ".eE"):
            return False
        return -(2**63) <= int(value) < 2**63 if len(value) < 30 else False
    if kind == "map":
        return isinstance(value, _Pairs) and all(_model_ok(v, "any") for _, v in value)
    if isinstance(kind, tuple):
        return type(value) is list and all(_model_ok(v, kind[1]) for v in value)
    if not isinstance(value, _Pairs):
        return False
    for key, item in value:
        for name, sub in FIELDS[kind].items():
            if _same(key, name) and not _model_ok(item, sub):
                return False
    return True


def model_accepts(text: str, kind: str) -> bool:
    tree = json.loads(text, object_pairs_hook=_Pairs, parse_int=_Num, parse_float=_Num)
    return _model_ok(tree, kind)


def _dump(value: object) -> str:
    if isinstance(value, _Num):
        return str(value)
    if isinstance(value, _Pairs):
        return "{" + ", ".join(f"{json.dumps(k)}: {_dump(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_dump, value)) + "]"
    return json.dumps(value)


ODD_VALUES = st.sampled_from(
    [None, True, "x", _Num("5"), _Num("2.0"), _Num("1E0"), _Num("1.5"), _Num("-0"), _Num("1e400"), _Num("-1e400"),
     _Num("9" * 400), _Num("9" * 309), _Num("9" * 308), _Num("9223372036854775808"), _Num("-9223372036854775808"),
     _Num("1" * 5000), [], [_Num("1.5")], [_Num("1e400")], [None], ["x"], [[]], _Pairs(), _Pairs([("a", _Num("1e400"))]),
     _Pairs([("name", _Num("5"))])]
)


def _recase(key: str, draw) -> str:
    out = []
    for c in key:
        choice = draw(st.integers(0, 3))
        if c == "s" and choice == 3:
            out.append("\u017f")
        elif c.isalpha() and choice >= 2:
            out.append(c.upper())
        else:
            out.append(c)
    return "".join(out)


@st.composite
def near_valid(draw, kind: str) -> str:
    base = json.loads(REQ if kind == "request" else RESP, object_pairs_hook=_Pairs, parse_int=_Num, parse_float=_Num)
    objects = [base] + [t for _, v in base if isinstance(v, list) for t in v if isinstance(t, _Pairs)]
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(objects))
        if not target:
            continue
        index = draw(st.integers(0, len(target) - 1))
        key, value = target[index]
        action = draw(st.sampled_from(["recase", "retype", "duplicate", "add", "data", "shape"]))
        if action == "recase":
            target[index] = (_recase(key, draw), value)
        elif action == "retype":
            target[index] = (key, draw(ODD_VALUES))
        elif action == "duplicate":
            copy = (_recase(key, draw) if draw(st.booleans()) else key, draw(ODD_VALUES))
            target.insert(index + draw(st.integers(0, 1)), copy)
        elif action == "add":
            target.append((draw(st.sampled_from(["extra", "zz", "Parameters", "ID", "Name", "ſhape"])), draw(ODD_VALUES)))
        elif action == "data":
            target.append(("data", [draw(ODD_VALUES), _Num("1")]))
        else:
            target.append(("shape", [draw(ODD_VALUES)]))
    return _dump(base)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_near_valid_documents_against_an_independent_model(data):
    kind = data.draw(st.sampled_from(["request", "response"]))
    text = data.draw(near_valid(kind))
    expected = model_accepts(text, kind)
    raw = text.encode("utf-8")
    assert accepts(raw, kind)[0] is expected, (text[:300], accepts(raw, kind))
    assert platform_rules._exact(raw, platform_rules.STRUCTS[kind])[0] is expected


# ------------------------------------------------------------------------------------------------ folder entries


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    (root / "good.json").write_text(REQ)
    (root / "bad.json").write_text('{"inputs": 5}')
    (root / "notes.txt").write_text("x")
    return root


def test_a_symlink_is_judged_by_its_target(folder):
    (folder / "link.json").symlink_to("good.json")
    (folder / "badlink.json").symlink_to("bad.json")
    assert decide_entry(folder / "link.json", "request").outcome == KEPT
    assert decide_entry(folder / "badlink.json", "request").outcome == DROPPED


def test_plain_entries(folder):
    decisions = {d.name: d for d in decide_folder(folder, "request")}
    assert decisions["good.json"].line() == "good.json: kept"
    assert decisions["bad.json"].outcome == DROPPED and "inputs" in decisions["bad.json"].reason
    assert decisions["notes.txt"].outcome == DROPPED
    assert platform_rules.step_failure(list(decisions.values())) is None


def test_a_subfolder_named_json_is_skipped_not_read(folder):
    # directory_validator.go checks item.IsDir() (from lstat) before reading: a real folder is skipped.
    (folder / "x.json").mkdir()
    decision = decide_entry(folder / "x.json", "request")
    assert decision.outcome == DROPPED and "folder" in decision.reason


@pytest.mark.parametrize("make", ["dangling", "loop", "to-folder", "fifo", "fifo-link"])
def test_entries_that_fail_the_whole_step(folder, make):
    path = folder / "x.json"
    if make == "dangling":
        path.symlink_to("missing.json")
    elif make == "loop":  # unreadable even for root (chmod 000 does not stop root)
        path.symlink_to("y.json")
        (folder / "y.json").symlink_to("x.json")
    elif make == "to-folder":
        (folder / "sub").mkdir()
        path.symlink_to("sub")
    elif make == "fifo":
        os.mkfifo(path)
    else:
        os.mkfifo(folder / "pipe")
        path.symlink_to("pipe")
    decisions = decide_folder(folder, "request")  # must not hang on a FIFO
    failure = platform_rules.step_failure(decisions)
    assert failure is not None and failure.name == "x.json" and failure.outcome == FAILS_STEP
    assert failure.line().startswith("x.json: fails the whole step (")
    if make.startswith("fifo"):
        assert "the platform's step would hang" in failure.line()


def test_special_entries_not_named_json_are_skipped_unread(folder):
    os.mkfifo(folder / "pipe")
    (folder / "dangling").symlink_to("missing")
    decisions = {d.name: d for d in decide_folder(folder, "request")}
    assert decisions["pipe"].outcome == DROPPED and decisions["dangling"].outcome == DROPPED


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file; the link loop stands in for it")
def test_an_unreadable_file_fails_the_whole_step(folder):
    os.chmod(folder / "good.json", 0)
    assert decide_entry(folder / "good.json", "request").outcome == FAILS_STEP
