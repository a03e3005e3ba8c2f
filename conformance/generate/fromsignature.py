"""Requests for any model, from its declared signature (:mod:`conformance.oracle.signature`): a hypothesis
strategy for valid requests, three fixed good requests the protocol tests run, and the requests at the edges of
the signature (:func:`edge_requests`), sent every time rather than when hypothesis happens to draw them.

Every generated request follows the input signature: each declared input once (in the declared order or
shuffled), its datatype, its shape with each variable dimension drawn (one size per position, shared by all
inputs: the batch size), values inside the declared range, data flat or nested, sometimes an ``id``, sometimes
``parameters``, sometimes a selection of the declared outputs.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st

from conformance.oracle.signature import VARIABLE, Signature, TensorSpec
from conformance.v2.datatypes import DATATYPES
from conformance.v2.strictjson import dumps

#: The largest size drawn for a variable dimension (a batch of this many rows is a "big batch" for most models).
MAX_VARIABLE = 64


def _bounds(spec: TensorSpec) -> tuple[float, float]:
    """The range values of ``spec`` are drawn from: the declared range clipped to the datatype's."""
    kind = DATATYPES[spec.datatype]
    if kind.kind == "int":
        low, high = float(kind.minimum), float(kind.maximum)
    elif kind.kind == "float":
        finfo = np.finfo(kind.dtype)
        low, high = -float(finfo.max), float(finfo.max)
    else:
        low, high = 0.0, 1.0
    if spec.minimum is not None:
        low = max(low, spec.minimum)
    if spec.maximum is not None:
        high = min(high, spec.maximum)
    return low, high


def _inside(bound: float, dtype: np.dtype, towards: float) -> float:
    """``bound`` as a value of ``dtype``, moved towards ``towards`` when rounding took it outside the range."""
    rounded = dtype.type(bound)
    if (towards > bound and float(rounded) < bound) or (towards < bound and float(rounded) > bound):
        rounded = np.nextafter(rounded, dtype.type(towards))
    return float(rounded)


#: Tensors of up to this many elements are drawn element by element by hypothesis; larger ones take a few
#: drawn elements (the edges hypothesis likes: the bounds, zero) among values from a numpy generator seeded by
#: hypothesis (drawing thousands of floats one by one costs seconds per batch).
DRAWN_ELEMENTS = 16


def _element(spec: TensorSpec) -> st.SearchStrategy[Any]:
    kind = DATATYPES[spec.datatype]
    low, high = _bounds(spec)
    if kind.kind == "bool":
        return st.booleans()
    if kind.kind == "bytes":
        return st.text(max_size=8)
    if kind.kind == "int":
        return st.integers(max(kind.minimum, math.ceil(low)), min(kind.maximum, math.floor(high)))
    width: Literal[16, 32, 64] = 16 if kind.dtype.itemsize == 2 else 32 if kind.dtype.itemsize == 4 else 64
    low, high = _inside(low, kind.dtype, np.inf), _inside(high, kind.dtype, -np.inf)
    return st.floats(low, high, width=width, allow_nan=False, allow_infinity=False)


def _generated(spec: TensorSpec, count: int, rng: np.random.Generator) -> list:
    """``count`` values of ``spec`` inside its range, from ``rng``."""
    kind = DATATYPES[spec.datatype]
    if kind.kind == "bool":
        return [bool(b) for b in rng.integers(0, 2, count)]
    if kind.kind == "bytes":
        return [f"v{int(i)}" for i in rng.integers(0, 1000, count)]
    low, high = _bounds(spec)
    if kind.kind == "int":
        low, high = max(kind.minimum, math.ceil(low)), min(kind.maximum, math.floor(high))
        return [int(v) for v in rng.integers(low, high, count, endpoint=True, dtype=np.int64 if high < 2**63 else np.uint64)]
    low, high = _inside(low, kind.dtype, np.inf), _inside(high, kind.dtype, -np.inf)
    span_low, span_high = max(low, -1e6), min(high, 1e6)  # spread over a readable span of a huge range
    if span_low > span_high:
        span_low, span_high = low, high
    values = rng.uniform(span_low, span_high, count).astype(kind.dtype)
    return [float(v) for v in np.clip(values, kind.dtype.type(low), kind.dtype.type(high))]


@st.composite
def _values(draw: st.DrawFn, spec: TensorSpec, count: int) -> list:
    """``count`` values of ``spec``: drawn one by one when few, else mostly from a seeded generator with a few
    drawn ones (hypothesis's edges) at drawn places."""
    if count <= DRAWN_ELEMENTS:
        return draw(st.lists(_element(spec), min_size=count, max_size=count))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = _generated(spec, count, rng)
    for _ in range(draw(st.integers(0, 4))):
        values[draw(st.integers(0, count - 1))] = draw(_element(spec))
    return values


def _nest(flat: list, shape: list[int]) -> list:
    if len(shape) <= 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


@st.composite
def requests(draw: st.DrawFn, signature: Signature, max_variable: int = MAX_VARIABLE) -> dict:
    """One valid request following ``signature`` (see the module's docstring)."""
    sizes: dict[int, int] = {}
    inputs = []
    for spec in signature.inputs:
        shape = []
        for position, declared in enumerate(spec.shape):
            if declared == VARIABLE:
                if position not in sizes:
                    sizes[position] = draw(st.one_of(st.integers(1, 4), st.integers(0, max_variable)))
                shape.append(sizes[position])
            else:
                shape.append(declared)
        count = math.prod(shape)
        flat = draw(_values(spec, count))
        data = _nest(flat, shape) if len(shape) > 1 and draw(st.booleans()) else flat
        inputs.append({"name": spec.name, "shape": shape, "datatype": spec.datatype, "data": data})
    if draw(st.booleans()):
        inputs = draw(st.permutations(inputs))
    request: dict = {}
    if draw(st.booleans()):
        request["id"] = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12))
    if draw(st.integers(0, 4)) == 0:
        request["parameters"] = {"content_type": "np"}
    request["inputs"] = inputs
    if draw(st.integers(0, 3)) == 0:
        names = [spec.name for spec in signature.outputs]
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
        request["outputs"] = [{"name": name} for name in chosen]
    return request


def batches(signature: Signature, size: int) -> st.SearchStrategy[list[dict]]:
    """``size`` generated requests (one predictor run)."""
    return st.lists(requests(signature), min_size=size, max_size=size)


def good_requests(signature: Signature) -> list[tuple[str, bytes]]:
    """Three fixed requests following ``signature``: ``a.json`` (with an id, two rows), ``b.json`` (one row,
    nested data), ``c.json`` (three rows); values spread over the declared range."""
    made = []
    for name, rows, nested, request_id in (("a.json", 2, False, "a"), ("b.json", 1, True, None), ("c.json", 3, False, None)):
        body: dict = {"id": request_id} if request_id else {}
        body["inputs"] = _inputs(signature, rows, nested=nested)
        made.append((name, dumps(body)))
    return made


def _inputs(signature: Signature, rows: int, salt: int = 0, nested: bool = False) -> list[dict]:
    """Every declared input with ``rows`` for each variable dimension, its values spread over its range
    (:func:`_spread`; ``salt`` gives other values), data flat or ``nested``."""
    inputs = []
    for number, spec in enumerate(signature.inputs):
        shape = [rows if declared == VARIABLE else declared for declared in spec.shape]
        flat = _spread(spec, math.prod(shape), number + salt)
        inputs.append({"name": spec.name, "shape": shape, "datatype": spec.datatype,
                       "data": _nest(flat, shape) if nested else flat})
    return inputs


def _spread(spec: TensorSpec, count: int, salt: int) -> list:
    """``count`` values spread over the range of ``spec`` (deterministic, not all equal)."""
    kind = DATATYPES[spec.datatype]
    if kind.kind == "bool":
        return [(i + salt) % 2 == 0 for i in range(count)]
    if kind.kind == "bytes":
        return [f"v{i}" for i in range(count)]
    low, high = _bounds(spec)
    if spec.minimum is None or spec.maximum is None:  # no declared range: small values around zero
        low, high = max(low, -8.0), min(high, 8.0)
    fractions = [((i * 7 + salt * 3) % 11 + 0.5) / 11 for i in range(count)]
    values = [low + f * (high - low) for f in fractions]
    if kind.kind == "int":
        return [round(v) for v in values]
    return [float(kind.dtype.type(round(v, 3))) for v in values]


def large_request(signature: Signature, elements: int) -> bytes | None:
    """One request following ``signature`` with about ``elements`` elements in all: the first variable dimension
    (the batch) as large as it takes, values spread over the declared range; None when nothing is variable."""
    per_row = sum(math.prod(d for d in spec.shape if d != VARIABLE) for spec in signature.inputs)
    if not any(VARIABLE in spec.shape for spec in signature.inputs) or per_row == 0:
        return None
    return dumps({"id": "large", "inputs": _inputs(signature, max(1, elements // per_row))})


def crowd(signature: Signature, count: int) -> list[tuple[str, bytes]]:
    """``count`` fixed requests following ``signature``, of 1 to 8 rows, each with other values and its own id:
    the other files of a batch, named to sort before and after the good ones (``0-crowd-000.json``...,
    ``z-crowd-001.json``...): a predictor that carries state from file to file shows it either way."""
    return [(f"{'0z'[i % 2]}-crowd-{i:03}.json",
             dumps({"id": f"crowd-{i}", "inputs": _inputs(signature, 1 + (i % 8), salt=5 * i + 1)}))
            for i in range(count)]


def off_signature(signature: Signature) -> list[tuple[str, bytes]]:
    """Valid V2 requests a model with ``signature`` cannot serve (each owes an error response): the first input
    renamed (so a declared one is missing), given one dimension fewer, or (where its shape has a fixed dimension)
    that dimension one larger. Names ``0-off-*.json`` and ``z-off-*.json``, so they sort around the good ones."""
    base = {"inputs": _inputs(signature, 2)}  # a.json's inputs (good_requests)
    first = base["inputs"][0]
    spec = signature.inputs[0]
    shape = list(first["shape"])
    made: list[tuple[str, dict]] = []
    made.append(("0-off-missing-input.json", {"inputs": [{**first, "name": f"not-{spec.name}"}, *base["inputs"][1:]]}))
    if len(shape) >= 1:
        fewer = shape[:-1] if len(shape) > 1 else []
        made.append(("z-off-rank.json", {"inputs": [{**first, "shape": fewer, "data": _spread(spec, math.prod(fewer), 0)},
                                                     *base["inputs"][1:]]}))
    fixed = [i for i, d in enumerate(spec.shape) if d != VARIABLE]
    if fixed:
        wider = list(shape)
        wider[fixed[-1]] += 1
        made.append(("z-off-fixed-dimension.json", {"inputs": [{**first, "shape": wider, "data": _spread(spec, math.prod(wider), 0)},
                                                                *base["inputs"][1:]]}))
    return [(name, dumps(body)) for name, body in made]


#: Rows of the many-rows edge request: the first of these primes whose request stays within
#: :data:`EDGE_ELEMENTS` (a predictor that works in chunks of a round size and loses the remainder shows it).
MANY_ROWS = (307, 101, 53, 17, 5, 2)
EDGE_ELEMENTS = 65_536
#: BYTES elements beyond ASCII: two-byte, three-byte and four-byte UTF-8, a combining accent, a right-to-left script.
NON_ASCII = ("é", "日本語", "𝄞", "e\u0301", "مرحبا")
#: The seed of the many-rows request's values (the same request every time).
EDGE_SEED = 20240613


def _rows_elements(signature: Signature, rows: int) -> int:
    return sum(math.prod(rows if d == VARIABLE else d for d in spec.shape) for spec in signature.inputs)


def many_rows(signature: Signature) -> int:
    """The rows of the many-rows edge request (:data:`MANY_ROWS`)."""
    return next((rows for rows in MANY_ROWS if _rows_elements(signature, rows) <= EDGE_ELEMENTS), MANY_ROWS[-1])


def _extreme(spec: TensorSpec, which: str) -> int | float | None:
    """The declared minimum or maximum (``which``) of ``spec`` as a value of its datatype (moved inside the
    range when the datatype cannot hold it exactly), or None when undeclared or not a number type."""
    kind = DATATYPES[spec.datatype]
    declared = spec.minimum if which == "min" else spec.maximum
    if declared is None or kind.kind not in ("int", "float"):
        return None
    low, high = _bounds(spec)
    if kind.kind == "int":
        return max(kind.minimum, math.ceil(low)) if which == "min" else min(kind.maximum, math.floor(high))
    return _inside(low, kind.dtype, np.inf) if which == "min" else _inside(high, kind.dtype, -np.inf)


def edge_requests(signature: Signature) -> list[tuple[str, bytes]]:
    """The requests at the edges of ``signature``, the same every time (each with its name's stem as id):

    - with a variable dimension: ``edge-0-rows.json`` (every variable dimension 0), ``edge-1-row.json`` and
      ``edge-many-rows.json`` (:func:`many_rows`, a prime; values from a seeded generator over the range);
    - ``edge-min.json`` / ``edge-max.json`` when an input declares a minimum / maximum: every element of such an
      input at it (3 rows; the other inputs' values spread over their range);
    - with a BYTES input: ``edge-bytes-empty.json`` (every BYTES element ``""``) and ``edge-bytes-non-ascii.json``
      (:data:`NON_ASCII`), 5 rows.
    """
    made: list[tuple[str, list[dict]]] = []
    if any(VARIABLE in spec.shape for spec in signature.inputs):
        made.append(("edge-0-rows", _inputs(signature, 0)))
        made.append(("edge-1-row", _inputs(signature, 1, salt=2)))
        rows = many_rows(signature)
        rng = np.random.default_rng(EDGE_SEED)
        many = _inputs(signature, rows)
        for tensor, spec in zip(many, signature.inputs):
            tensor["data"] = _generated(spec, math.prod(tensor["shape"]), rng)
        made.append(("edge-many-rows", many))
    for which in ("min", "max"):
        inputs = _inputs(signature, 3, salt=3)
        extremes = [_extreme(spec, which) for spec in signature.inputs]
        if all(value is None for value in extremes):
            continue
        for tensor, value in zip(inputs, extremes):
            if value is not None:
                tensor["data"] = [value] * math.prod(tensor["shape"])
        made.append((f"edge-{which}", inputs))
    if any(DATATYPES[spec.datatype].kind == "bytes" for spec in signature.inputs):
        for what, texts in (("empty", ("",)), ("non-ascii", NON_ASCII)):
            inputs = _inputs(signature, len(NON_ASCII), salt=4)
            for tensor, spec in zip(inputs, signature.inputs):
                if DATATYPES[spec.datatype].kind == "bytes":
                    tensor["data"] = [texts[i % len(texts)] for i in range(math.prod(tensor["shape"]))]
            made.append((f"edge-bytes-{what}", inputs))
    return [(f"{name}.json", dumps({"id": name, "inputs": inputs})) for name, inputs in made]
