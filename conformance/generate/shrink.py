"""Shrinking a failing request: the smallest variant that still fails the same way, found by running the
candidate on one variant at a time.

Hypothesis's own shrinking would re-run whole batches (a predictor run each, hundreds of them); here the
failing request is already known, so a short greedy pass over simple reductions (drop a tensor, the id, the
parameters, the selection; cut a tensor to one element, keeping its layout) finds a small reproduction in a few
runs. A variant counts as failing the same way when it fails with the requirement the original failed first.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

#: At most this many candidate runs are spent on shrinking one request.
MAX_RUNS = 12


def variants(request: dict) -> Iterator[dict]:
    """Smaller versions of ``request``, most aggressive first; each differs from ``request`` in one way."""
    inputs = request.get("inputs")
    if isinstance(inputs, list) and len(inputs) > 1:
        for index in range(len(inputs)):
            yield _without_tensor(request, index)
    for key in ("parameters", "outputs", "id"):
        if key in request:
            smaller = copy.deepcopy(request)
            del smaller[key]
            yield smaller
    for index, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        if isinstance(tensor, dict) and "parameters" in tensor:
            smaller = copy.deepcopy(request)
            del smaller["inputs"][index]["parameters"]
            yield smaller
        cut = _one_element(tensor)
        if cut is not None:
            smaller = copy.deepcopy(request)
            smaller["inputs"][index] = cut
            yield smaller


def _without_tensor(request: dict, index: int) -> dict:
    smaller = copy.deepcopy(request)
    name = smaller["inputs"].pop(index).get("name") if isinstance(smaller["inputs"][index], dict) else None
    if isinstance(smaller.get("outputs"), list):
        smaller["outputs"] = [o for o in smaller["outputs"] if not (isinstance(o, dict) and o.get("name") == name)]
    return smaller


def _one_element(tensor: object) -> dict | None:
    """The tensor cut down to its first element, nested as deep as before (shape ``[1, 1, ...]``); None when it
    already is that small or has no element to keep."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("shape"), list) or not isinstance(tensor.get("data"), list):
        return None
    shape, data = tensor["shape"], tensor["data"]
    if all(side == 1 for side in shape):
        return None
    first, depth = data, 0
    while isinstance(first, list) and first:
        first, depth = first[0], depth + 1
    if isinstance(first, list):  # no element at all (a zero-size tensor)
        return None
    value: object = first
    for _ in range(max(depth, 1)):
        value = [value]
    return {**tensor, "shape": [1] * max(len(shape), 1), "data": value}


def shrink(request: dict, still_fails: Callable[[dict], bool], max_runs: int = MAX_RUNS) -> tuple[dict, int]:
    """Greedily replace ``request`` by a smaller variant for which ``still_fails`` holds, until no variant does or
    ``max_runs`` calls were spent. Returns the smallest failing request found and the number of calls made."""
    runs = 0
    improved = True
    while improved and runs < max_runs:
        improved = False
        for smaller in variants(request):
            if runs >= max_runs:
                break
            runs += 1
            if still_fails(smaller):
                request, improved = smaller, True
                break
    return request, runs
