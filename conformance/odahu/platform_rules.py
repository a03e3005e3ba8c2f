"""What the ODAHU platform itself does with files, so the kit can say what it would lose.

The platform's validate steps keep only ``*.json`` files directly in a folder that unmarshal (Go
``encoding/json``) into its request or response structs. That check is lax: no required fields, duplicate keys
allowed (last wins), invalid UTF-8 replaced, unknown fields ignored; it fails only on broken syntax, NaN/Infinity
tokens and values of the wrong JSON type for a known field. Everything else is skipped (input) or silently dropped
(output). This module reproduces that decision; it never judges conformance.
"""

from __future__ import annotations

import json
from pathlib import Path

_TENSOR = {"name": str, "shape": "int64[]", "datatype": str, "parameters": dict, "data": object}
_REQUEST = {"id": str, "parameters": dict, "inputs": [_TENSOR], "outputs": [{"name": str, "parameters": dict}]}
_RESPONSE = {"model_name": str, "model_version": str, "id": str, "parameters": dict, "outputs": [_TENSOR]}
STRUCTS = {"request": _REQUEST, "response": _RESPONSE}


def is_candidate_name(path: Path) -> bool:
    """Whether the platform even looks at ``path``: a regular file named ``*.json`` directly in the folder."""
    return path.name.endswith(".json") and path.is_file() and not path.is_symlink()


def accepts(raw: bytes, kind: str) -> tuple[bool, str]:
    """``(True, "")`` when the platform's lax validator keeps these bytes as a ``kind`` document, else
    ``(False, reason)``."""
    text = raw.decode("utf-8", errors="replace")

    def reject_constant(token: str) -> object:
        raise ValueError(f"{token} token")

    try:
        value = json.loads(text, parse_constant=reject_constant)
    except (ValueError, RecursionError) as exc:
        return False, f"does not parse as JSON ({exc})"
    if value is None:
        return True, ""
    problem = _mismatch(value, STRUCTS[kind])
    return (False, problem) if problem else (True, "")


def _mismatch(value: object, struct: object) -> str:
    if value is None:
        return ""
    if struct is object:
        return ""
    if struct is str:
        return "" if isinstance(value, str) else "a string field holds another type"
    if struct is dict:
        return "" if isinstance(value, dict) else "a map field holds another type"
    if struct == "int64[]":
        if not isinstance(value, list):
            return "shape is not an array"
        ok = all(type(v) is int and -(2**63) <= v < 2**63 for v in value if v is not None)
        return "" if ok else "shape holds a value that is not a 64-bit integer"
    if isinstance(struct, list):
        if not isinstance(value, list):
            return "an array field holds another type"
        for item in value:
            problem = _mismatch(item, struct[0])
            if problem:
                return problem
        return ""
    if not isinstance(value, dict):
        return "not a JSON object"
    for key, field in struct.items():
        if key in value:
            problem = _mismatch(value[key], field)
            if problem:
                return f"{key}: {problem}"
    return ""
