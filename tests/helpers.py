"""Small builders shared by the kit's own tests."""

from __future__ import annotations

import copy
import json


def tensor(name="a", datatype="INT32", shape=(2,), data=(1, 2), **extra) -> dict:
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": list(data), **extra}


def request(*tensors, **extra) -> dict:
    return {**extra, "inputs": list(tensors) or [tensor()]}


def response(*tensors, model_name="multiplier", model_version="1", **extra) -> dict:
    body = {"model_name": model_name, "model_version": model_version, **extra}
    body["outputs"] = list(tensors) or [tensor(data=(2, 4))]
    return body


def edited(document: dict, path: tuple, value) -> dict:
    """A deep copy of ``document`` with the item at ``path`` replaced (or deleted when value is DELETE)."""
    result = copy.deepcopy(document)
    target = result
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


DELETE = object()


def as_bytes(document) -> bytes:
    """Strict JSON bytes (the stdlib writes integers of any size; NaN is refused)."""
    return json.dumps(document, allow_nan=False).encode("utf-8")
