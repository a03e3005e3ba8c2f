"""Seeded random V2 requests for ``fixtures generate``: the same seed gives the same requests on every machine.

(Property tests use the hypothesis strategies in :mod:`conformance.generate.strategies`; this generator exists because a
fixture set must be reproducible from ``--seed`` alone, independent of hypothesis's version and database.)
"""

from __future__ import annotations

import numpy as np

from conformance.v2.datatypes import DATATYPES, FLOAT_NAMES, INTEGER_NAMES

_NUMERIC = INTEGER_NAMES + FLOAT_NAMES


def random_request(rng: np.random.Generator, index: int) -> dict:
    """One request: 1-3 tensors of random numeric datatypes (rarely BOOL or BYTES), random shapes (scalars and
    zero-size included), flat or nested data with extreme values mixed in, an id on most, sometimes an
    ``outputs`` selection."""
    count = int(rng.integers(1, 4))
    inputs = [_tensor(rng, f"t{i}") for i in range(count)]
    request: dict = {}
    if rng.random() < 0.8:
        request["id"] = f"gen-{index:04d}"
    request["inputs"] = inputs
    if rng.random() < 0.25:
        chosen = rng.permutation(count)[: int(rng.integers(1, count + 1))]
        request["outputs"] = [{"name": inputs[int(i)]["name"]} for i in chosen]
    return request


def _tensor(rng: np.random.Generator, name: str) -> dict:
    roll = rng.random()
    datatype = "BOOL" if roll < 0.03 else "BYTES" if roll < 0.05 else str(rng.choice(_NUMERIC))
    ndim = int(rng.integers(0, 4))
    shape = [int(rng.integers(0, 5)) if rng.random() < 0.1 else int(rng.integers(1, 5)) for _ in range(ndim)]
    size = int(np.prod(shape)) if shape else 1
    flat = _values(rng, datatype, size)
    nested = len(shape) >= 2 and size > 0 and rng.random() < 0.5
    data = np.array(flat, dtype=object).reshape(shape).tolist() if nested else flat
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def _values(rng: np.random.Generator, datatype: str, size: int) -> list:
    dt = DATATYPES[datatype]
    if dt.kind == "bool":
        return [bool(b) for b in rng.integers(0, 2, size)]
    if dt.kind == "bytes":
        return [f"s{int(v)}" for v in rng.integers(0, 1000, size)]
    if dt.kind == "int":
        edges = [dt.minimum, dt.maximum, 0, 1, -1 if dt.minimum < 0 else 2, dt.maximum // 2 + 1]
        span = dt.maximum - dt.minimum + 1
        return [
            edges[int(rng.integers(0, len(edges)))] if rng.random() < 0.3
            else dt.minimum + int.from_bytes(rng.bytes(9), "little") % span
            for _ in range(size)
        ]
    finite = np.finfo(dt.dtype).max
    values: list[float | int] = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.1:
            values.append(float(rng.choice([0.0, -0.0, 1.0, float(finite), float(np.finfo(dt.dtype).smallest_subnormal)])))
        elif roll < 0.2:
            values.append(int(rng.integers(-1000, 1000)))
        else:
            value = float(np.clip(rng.standard_normal() * 10.0 ** int(rng.integers(-5, 6)), -finite, finite))
            values.append(float(dt.dtype.type(value)))
    return values
