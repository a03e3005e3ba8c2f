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

import numpy as np
import orjson

_SCALARS = (str, int, float, bool, type(None))


class JSONProblem(ValueError):
    """The bytes are not strict JSON. ``str(problem)`` is a one-line reason (with line and column when known)."""


def loads(raw: bytes) -> object:
    """Parse ``raw`` as strict JSON and return the value; raise :class:`JSONProblem` saying why it is not."""
    if not raw.strip():
        raise JSONProblem("empty file (no JSON value)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _slow_loads(raw)
    objects, keys = _count_members(value)
    if raw.count(b"{") != objects or raw.count(b":") != keys:
        return _slow_loads(raw)
    return value


def _count_members(value: object) -> tuple[int, int]:
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
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JSONProblem("invalid JSON: nested too deeply") from None
    try:
        # Lone surrogates (\ud800) parse, but are not Unicode text and cannot be written back as UTF-8.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JSONProblem("a string holds a lone surrogate escape, which is not valid Unicode") from None
    return value


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
