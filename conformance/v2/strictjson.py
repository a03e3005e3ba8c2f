"""Strict JSON (RFC 8259) loading: UTF-8 only, no NaN/Infinity tokens, no duplicate keys, one top-level value.

The fast path parses with orjson, which already rejects NaN/Infinity, invalid UTF-8, a BOM and lone surrogates,
but silently keeps the last of duplicate keys. Duplicates are ruled out cheaply by counting: if the text holds as
many ``{`` bytes as the parsed tree holds objects and as many ``:`` bytes as it holds keys, no key can have been
dropped (a ``{`` or ``:`` inside a string only makes the counts larger). Otherwise, and whenever orjson refuses a
document that may still be valid JSON (an integer beyond 64 bits, ``1e400``), the standard library parses it again
with exact duplicate detection and precise error positions.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import orjson

from conformance.contract.problems import ConformanceProblem

_SCALARS = (str, int, float, bool, type(None))

#: The deepest nesting the kit reads (RFC 8259 section 9 lets a parser limit it). Deeper documents get a finding
#: (F-JSON, pointing at the first container beyond the limit) instead of running the checks, which recurse.
MAX_DEPTH = 256
#: Integers with more digits than this are not converted (Python refuses, and no tensor type holds one).
MAX_INT_DIGITS = 4000


class JSONProblem(ConformanceProblem):
    """The bytes are not strict JSON. ``str(problem)`` is a one-line reason (with line and column when known);
    ``pointer`` is the JSON pointer of the place when known ("" otherwise)."""

    def __init__(self, message: str, pointer: str = ""):
        super().__init__(message)
        self.pointer = pointer


class HugeInteger(float):
    """A JSON integer too long to convert (more than :data:`MAX_INT_DIGITS` digits): a float of its value's
    sign and infinite size (no datatype holds it, it is not a 64-bit shape entry), that prints as what it is."""

    digits: int = 0

    def __new__(cls, text: str) -> "HugeInteger":
        value = super().__new__(cls, "-inf" if text.startswith("-") else "inf")
        value.digits = len(text.lstrip("-"))
        return value

    def __repr__(self) -> str:
        return f"{'-' if self < 0 else ''}<an integer of {self.digits} digits>"

    __str__ = __repr__


def _parse_int(text: str) -> int | float:
    return int(text) if len(text) <= MAX_INT_DIGITS else HugeInteger(text)


def loads(raw: bytes) -> object:
    """Parse ``raw`` as strict JSON and return the value; raise :class:`JSONProblem` saying why it is not."""
    if not raw.strip():
        raise JSONProblem("empty file (no JSON value)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = _slow_loads(raw)
    else:
        objects, keys = count_members(value)
        if raw.count(b"{") != objects or raw.count(b":") != keys:
            value = _slow_loads(raw)
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check_depth(value)
    return value


def count_members(value: object) -> tuple[int, int]:
    """Count objects and keys in ``value``, skipping lists that start with a scalar.

    Skipping keeps tensor data (long lists of numbers) out of the walk; a skipped list that did hold an object
    leaves the object count short, which sends the caller down the exact path.
    """
    objects = keys = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            objects += 1
            keys += len(item)
            stack.extend(v for v in item.values() if not isinstance(v, _SCALARS))
        elif type(item) is list and item and not isinstance(item[0], _SCALARS):
            stack.extend(v for v in item if not isinstance(v, _SCALARS))
    return objects, keys


_count_members = count_members


def _escape(part: object) -> str:
    return "/" + str(part).replace("~", "~0").replace("/", "~1")


def _too_deep(pointer: str) -> JSONProblem:
    return JSONProblem(f"nested more than {MAX_DEPTH} levels deep (the kit reads at most {MAX_DEPTH}; RFC 8259 "
                       f"lets a parser limit nesting)", pointer)


def _check_depth(value: object) -> None:
    """Raise :class:`JSONProblem` when ``value`` nests deeper than :data:`MAX_DEPTH` (iterative)."""
    stack: list[tuple[object, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        if type(item) is dict:
            stack.extend((v, depth + 1, where + _escape(k)) for k, v in item.items() if type(v) in (dict, list))
        elif type(item) is list:
            stack.extend((v, depth + 1, where + _escape(i)) for i, v in enumerate(item) if type(v) in (dict, list))


_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def deep_pointer(text: str) -> str | None:
    """The pointer of the first container nested deeper than :data:`MAX_DEPTH` in ``text``, found with a scan
    of the text (no recursion, no parse); ``None`` when there is none."""
    frames: list[list] = []  # [is_object, the current key's token or the current index]
    last_string = '""'
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token[0] == '"':
            last_string = token
        elif token in "[{":
            if len(frames) >= MAX_DEPTH:
                return "".join(_escape(_key(f[1]) if f[0] else f[1]) for f in frames)
            frames.append([token == "{", '""' if token == "{" else 0])
        elif token in "]}":
            if frames:
                frames.pop()
        elif token == ":":
            if frames and frames[-1][0]:
                frames[-1][1] = last_string
        elif frames and not frames[-1][0]:  # a comma in an array
            frames[-1][1] += 1
    return None


def _key(token: object) -> str:
    if not isinstance(token, str):
        return str(token)
    try:
        return json.loads(token)
    except ValueError:
        return token[1:-1]


def _reject_constant(token: str) -> object:
    raise JSONProblem(f"{token} is not allowed in strict JSON (RFC 8259)")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONProblem(f"duplicate key {key!r} in an object")
            seen.add(key)
    return result


def _slow_loads(raw: bytes) -> object:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise JSONProblem("starts with a byte order mark (BOM), which RFC 8259 forbids")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONProblem(f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates,
                           parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        where = deep_pointer(text)
        if where is not None:
            raise _too_deep(where) from None
        raise JSONProblem("invalid JSON: nested too deeply for the kit to read") from None
    if _LONE_SURROGATE.search(text):
        _check_surrogates(value)
    return value


_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_surrogates(value: object) -> None:
    """Lone surrogates (\\ud800) parse, but are not Unicode text and cannot be written back as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            strings = [item]
        elif type(item) is dict:
            strings = list(item)
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
            continue
        else:
            continue
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise JSONProblem("a string holds a lone surrogate escape, which is not valid Unicode") from None


def dumps(value: object, *, indent: bool = False) -> bytes:
    """Serialise ``value`` (plain Python or numpy arrays) as strict UTF-8 JSON bytes ending in a newline.

    With ``indent``, objects are indented two spaces but arrays of scalars stay on one line, so tensor data
    reads as rows rather than one number per line. Raises ValueError for NaN or infinity (orjson would write
    ``null`` in their place, silently changing the data)."""
    _reject_non_finite(value)
    if not indent:
        try:
            return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            # orjson stops at integers beyond 64 bits (valid JSON, e.g. an FP64 element 2**70); the standard
            # library writes them exactly.
            return (json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                               default=_numpy_default) + "\n").encode("utf-8")
    return (_pretty(value, 0) + "\n").encode("utf-8")


def _numpy_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def _reject_non_finite(value: object) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is float and not math.isfinite(item):
            raise ValueError(f"{item} cannot be written as strict JSON")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, np.ndarray) and item.dtype.kind == "f" and not np.isfinite(item).all():
            raise ValueError("a non-finite float cannot be written as strict JSON")


def _pretty(value: object, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = (f"{inner}{orjson.dumps(k).decode()}: {_pretty(v, depth + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(f"{inner}{_pretty(v, depth + 1)}" for v in value) + f"\n{pad}]"
    return dumps(value).decode("utf-8").rstrip("\n")
