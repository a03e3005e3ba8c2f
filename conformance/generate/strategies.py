"""Hypothesis strategies for Open Inference Protocol (KServe V2) inference requests.

Every strategy here generates plain Python values (``dict``, ``list``, ``str``, ``int``, ``float``,
``bool``) that ``json.dumps(..., allow_nan=False)`` serialises into a request the kit's semantics
call *valid*: the shape matches the data, every element is representable in its datatype, tensor
names are unique.  Whether a valid request should get a success or an error response (BOOL and
BYTES inputs, an ``outputs`` name that is not an input, a float product that overflows) is the
oracle's business, not these strategies'.

The strategies are small and composable, in the style of :mod:`hypothesis.strategies`:

- :func:`datatypes`, :func:`shapes`, :func:`elements`: the parts of a tensor;
- :func:`tensor_names`, :func:`parameters`, :func:`tensors`: one input tensor;
- :func:`requests`, :func:`batches`: whole request documents, one or many;
- :func:`multipliers`: the integer a model's ``multiplier.txt`` holds.

Sizes are kept small (at most 64 elements per tensor by default) so that generation is fast, and
every ``one_of`` lists its simplest branch first, so that failures shrink to small, plain values
(``0``, ``[]``, ``"INT32"``, the scalar shape).

A note on floats.  A JSON number for an FP16/FP32 tensor is read as a float64 and then rounded to
the tensor's precision (that is what the kit's oracle does).  A reader that parses the decimal
directly into float32 (Go's ``strconv.ParseFloat(s, 32)``, say) gets a different value in exactly one
case: the float64 lies on the midpoint between two neighbouring values of the narrow type and its
shortest decimal form is not exact.  Such an input has no single right answer, so :func:`elements`
never produces one: it moves those values one float64 step towards zero.  Midpoints whose decimal
is exact (``2049.0`` for FP16) are kept: they test round-half-to-even.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, cast

import numpy as np
from hypothesis import strategies as st

from conformance.v2.datatypes import DATATYPES as _TABLE
from conformance.v2.datatypes import FLOAT_NAMES, INTEGER_NAMES, NAMES

__all__ = [
    "DATATYPES",
    "NUMERIC_DATATYPES",
    "INTEGER_DATATYPES",
    "FLOAT_DATATYPES",
    "INTEGER_BOUNDS",
    "NUMPY_DTYPES",
    "MAX_ELEMENTS",
    "datatypes",
    "shapes",
    "elements",
    "tensor_names",
    "parameters",
    "tensors",
    "requests",
    "multipliers",
    "batches",
]

#: The 13 tensor datatypes of the Open Inference Protocol, in the protocol's order (from the one table,
#: :data:`conformance.v2.datatypes.DATATYPES`).
DATATYPES: tuple[str, ...] = NAMES

#: The 8 integer datatypes.
INTEGER_DATATYPES: tuple[str, ...] = INTEGER_NAMES

#: The 3 floating-point datatypes.
FLOAT_DATATYPES: tuple[str, ...] = FLOAT_NAMES

#: The 11 datatypes the multiplier model serves (all but BOOL and BYTES).
NUMERIC_DATATYPES: tuple[str, ...] = INTEGER_DATATYPES + FLOAT_DATATYPES

#: The numpy scalar type of every numeric datatype (``np.uint8``, ..., ``np.float64``).
NUMPY_DTYPES: dict[str, type] = {name: _TABLE[name].dtype.type for name in NUMERIC_DATATYPES}

#: Inclusive ``(min, max)`` of every integer datatype.
INTEGER_BOUNDS: dict[str, tuple[int, int]] = {
    name: (_TABLE[name].minimum, _TABLE[name].maximum) for name in INTEGER_DATATYPES
}

#: Default upper bound on the number of elements of one generated tensor.
MAX_ELEMENTS = 64

# The order sampled_from shrinks towards: plain numeric types first, BOOL/BYTES last.
_SHRINK_ORDER: tuple[str, ...] = (
    "INT32",
    "FP32",
    "INT64",
    "FP64",
    "UINT8",
    "INT8",
    "UINT16",
    "INT16",
    "UINT32",
    "UINT64",
    "FP16",
    "BOOL",
    "BYTES",
)
assert sorted(_SHRINK_ORDER) == sorted(DATATYPES)

_FLOAT_WIDTH: dict[str, Literal[16, 32, 64]] = {
    name: cast(Literal[16, 32, 64], _TABLE[name].bits) for name in FLOAT_DATATYPES
}

# Text that serialises to strict UTF-8 JSON: any code point except the surrogates.
_UTF8_TEXT_CHARS = st.characters(codec="utf-8")


# ---------------------------------------------------------------------------------------------
# Datatypes and shapes
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def datatypes(numeric_only: bool = False) -> st.SearchStrategy[str]:
    """Generate a datatype name: one of :data:`DATATYPES`, or of :data:`NUMERIC_DATATYPES` when
    ``numeric_only``.  Shrinks towards ``"INT32"``."""
    return st.sampled_from([d for d in _SHRINK_ORDER if not numeric_only or d in NUMERIC_DATATYPES])


@st.composite
def shapes(
    draw: st.DrawFn,
    max_dims: int = 3,
    max_side: int = 4,
    max_elements: int = MAX_ELEMENTS,
) -> list[int]:
    """Generate a tensor shape: a list of 0 to ``max_dims`` ints, each in ``[0, max_side]``.

    Includes the scalar shape ``[]`` (one element, and the shrink target) and zero-size shapes
    (a ``0`` in any position, e.g. ``[2, 0, 3]``).  The product of the non-zero sides never
    exceeds ``max_elements``, so a tensor never holds more than ``max_elements`` values.
    """
    if max_dims < 0 or max_side < 0 or max_elements < 1:
        raise ValueError("max_dims, max_side must be >= 0 and max_elements >= 1")
    ndims = draw(st.integers(0, max_dims))
    shape: list[int] = []
    nonzero = 1  # product of the non-zero sides so far
    for _ in range(ndims):
        side = draw(st.integers(0, min(max_side, max_elements // nonzero)))
        shape.append(side)
        nonzero *= side or 1
    return shape


def _size(shape: list[int]) -> int:
    return math.prod(shape)


# ---------------------------------------------------------------------------------------------
# Elements
# ---------------------------------------------------------------------------------------------


def _integer_specials(datatype: str) -> list[int]:
    lo, hi = INTEGER_BOUNDS[datatype]
    bits = np.iinfo(NUMPY_DTYPES[datatype]).bits
    half = 2 ** (bits - 1)
    candidates = [0, 1, -1, 2, lo, hi, half - 1, half, half + 1, -half + 1, lo + 1, hi - 1]
    if bits == 64:
        candidates += [2**53, 2**53 + 1, 2**53 - 1, -(2**53 + 1), 2**63 + 2**53 + 1]
    seen: list[int] = []
    for c in candidates:
        if lo <= c <= hi and c not in seen:
            seen.append(c)
    return seen


def _integer_elements(datatype: str) -> st.SearchStrategy[int]:
    """Any int of the datatype's range, with extra weight on the extremes."""
    lo, hi = INTEGER_BOUNDS[datatype]
    return st.one_of(
        st.sampled_from(_integer_specials(datatype)),
        st.integers(lo, hi),
        st.integers(max(lo, -16), min(hi, 16)),
    )


@lru_cache(maxsize=None)
def _float_limits(datatype: str) -> tuple[float, float, float, float]:
    """(max finite, largest float64 that still rounds to a finite value, smallest subnormal,
    smallest normal) of a float datatype, all as Python floats."""
    dtype = NUMPY_DTYPES[datatype]
    info = np.finfo(dtype)
    max_finite = float(info.max)
    tiny = float(info.smallest_subnormal)
    normal = float(info.smallest_normal)
    if dtype is np.float64:
        return max_finite, max_finite, tiny, normal
    # Overflow threshold: halfway between max and the next power of two (round half to even
    # goes up there, to inf); everything strictly below it rounds to max.
    threshold = max_finite + (2.0 ** (info.maxexp) - max_finite) / 2
    below = float(np.nextafter(threshold, 0.0))
    with np.errstate(over="ignore"):
        assert np.isfinite(dtype(below)) and not np.isfinite(dtype(threshold))
    return max_finite, below, tiny, normal


def _is_ambiguous(x: float, datatype: str) -> bool:
    """True when float64 ``x`` lies exactly halfway between two values of the (narrower) datatype
    while its shortest decimal form is not exact: reading that decimal directly into the datatype
    and reading it as float64 then casting disagree."""
    if datatype == "FP64" or not math.isfinite(x):
        return False
    dtype = NUMPY_DTYPES[datatype]
    with np.errstate(over="ignore"):
        near = dtype(x)
        if float(near) == x or not np.isfinite(near):
            return False
        other = np.nextafter(near, dtype(math.copysign(np.inf, x - float(near))))
    if not np.isfinite(other):
        return False  # x lies between max finite and the overflow threshold: rounds to max
    midpoint = (float(near) + float(other)) / 2  # exact in float64 for FP16/FP32 neighbours
    if midpoint != x:
        return False
    return Decimal(repr(x)) != Decimal(x)


def _unambiguous(datatype: str) -> Callable[[float | int], float | int]:
    def fix(x: float | int) -> float | int:
        if isinstance(x, float) and _is_ambiguous(x, datatype):
            return float(np.nextafter(x, 0.0))
        return x

    return fix


def _float_elements(datatype: str) -> st.SearchStrategy[float | int]:
    """JSON numbers that stay finite when cast to an FP datatype (see :func:`elements`)."""
    width = _FLOAT_WIDTH[datatype]
    max_finite, below_overflow, tiny, normal = _float_limits(datatype)
    specials = [0.0, 1.0, -0.0, -1.0, 0.5, -1.5, 0.1, max_finite, -max_finite, tiny, -tiny, normal,
                -normal, float(np.nextafter(normal, 0.0)), below_overflow, -below_overflow]
    if datatype != "FP64":
        specials += [
            tiny / 2,  # halfway to the smallest subnormal: rounds to 0 (half to even)
            tiny * 0.75,  # rounds up to the smallest subnormal
            tiny / 4,  # underflows to 0
            float(2 ** (np.finfo(NUMPY_DTYPES[datatype]).nmant + 1) + 1),  # odd int: tie, to even
        ]
    # Integers: exact in float64, so that only one rounding happens on the way to the datatype.
    int_bound = 65519 if datatype == "FP16" else 2**53
    n_mant = int(np.finfo(NUMPY_DTYPES[datatype]).nmant)
    subnormals = st.builds(
        lambda k, negative: (-k if negative else k) * tiny,
        st.integers(1, 2**n_mant - 1),
        st.booleans(),
    )
    branches = [
        st.sampled_from(specials),
        st.integers(-16, 16),
        # exactly representable in the datatype
        st.floats(width=width, allow_nan=False, allow_infinity=False),
        # any float64 that rounds to a finite value of the datatype (up to just below overflow)
        st.floats(-below_overflow, below_overflow, allow_nan=False, allow_infinity=False),
        subnormals,
        st.integers(-int_bound, int_bound),
    ]
    if datatype == "FP64":
        # Python ints beyond 2**53 are rounded (once, correctly) to float64.
        branches.append(st.integers(-(2**64), 2**64))
    else:
        # ties: halfway between two neighbours of the datatype (round half to even decides)
        dtype = NUMPY_DTYPES[datatype]
        below_max = float(np.nextafter(dtype(max_finite), dtype(0)))
        branches.append(
            st.floats(-below_max, below_max, width=width).map(
                lambda a: (a + float(np.nextafter(dtype(a), dtype(np.inf)))) / 2
            )
        )
    return st.one_of(branches).map(_unambiguous(datatype))


@lru_cache(maxsize=None)
def elements(datatype: str) -> st.SearchStrategy[Any]:
    """Generate one data element valid for ``datatype``, as a JSON scalar.

    - Integer types: any ``int`` (never a ``bool``) in the type's range, with extra weight on
      0, 1, -1, 2, the min and max, values around ``2**(bits-1)`` and, for the 64-bit types,
      around ``2**53`` (the first integers a float64 cannot hold).
    - FP16/FP32/FP64: a finite ``float`` or an ``int`` that stays finite when cast to the type:
      values exactly representable in that precision, arbitrary float64 values that get rounded
      (up to just below the overflow threshold, e.g. 65519.99... for FP16), values halfway
      between two neighbours of the type (ties; see the module note), subnormals, ``-0.0``,
      the max finite value, the smallest subnormal and values that underflow to zero, ints.
    - BOOL: ``True`` / ``False``.  BYTES: short strings (any Unicode scalar value).
    """
    if datatype in INTEGER_BOUNDS:
        return _integer_elements(datatype)
    if datatype in _FLOAT_WIDTH:
        return _float_elements(datatype)
    if datatype == "BOOL":
        return st.booleans()
    if datatype == "BYTES":
        return st.text(_UTF8_TEXT_CHARS, max_size=8)
    raise ValueError(f"unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")


# ---------------------------------------------------------------------------------------------
# Tensors
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def tensor_names() -> st.SearchStrategy[str]:
    """Generate a tensor name: a non-empty string, usually identifier-like (``input-0``, ``x``),
    sometimes arbitrary Unicode (spaces, punctuation, non-ASCII).  Shrinks towards ``"a"``."""
    return st.one_of(
        st.from_regex(r"[a-z][a-z0-9_\-]{0,7}", fullmatch=True),
        st.sampled_from(["input", "input-0", "input_1", "x", "INPUT", "in.0", "tensor/0"]),
        st.text(_UTF8_TEXT_CHARS, min_size=1, max_size=8),
    )


@lru_cache(maxsize=None)
def parameters(max_size: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """Generate a small ``parameters`` object: up to ``max_size`` string keys mapped to a string,
    an int, a finite float or a bool."""
    values = st.one_of(
        st.text(_UTF8_TEXT_CHARS, max_size=8),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    )
    return st.dictionaries(st.text(_UTF8_TEXT_CHARS, max_size=8), values, max_size=max_size)


@lru_cache(maxsize=1024)
def _element_lists(datatype: str, count: int) -> st.SearchStrategy[list[Any]]:
    """Exactly ``count`` elements of ``datatype`` (cached: building strategies is what costs)."""
    return st.lists(elements(datatype), min_size=count, max_size=count)


def _nest(flat: list[Any], shape: list[int]) -> list[Any]:
    """Row-major nesting of ``flat`` (of length prod(shape)) to match ``shape``."""
    if len(shape) <= 1:
        return list(flat)
    head, rest = shape[0], shape[1:]
    step = _size(rest)
    return [_nest(flat[i * step:(i + 1) * step], rest) for i in range(head)]


@st.composite
def tensors(
    draw: st.DrawFn,
    datatype: str | None = None,
    name: str | None = None,
    layout: str | None = None,
    *,
    numeric_only: bool = False,
    shape: list[int] | None = None,
    max_dims: int = 3,
    max_side: int = 4,
    max_elements: int = MAX_ELEMENTS,
) -> dict[str, Any]:
    """Generate an input tensor ``{"name", "shape", "datatype", "data"}``, sometimes with
    ``"parameters"``.

    ``data`` holds prod(shape) elements valid for the datatype, either flat or nested to match the
    shape exactly: ``layout`` is ``"flat"``, ``"nested"`` or ``None`` (either).  For the scalar
    shape ``[]`` data is ``[x]`` in both layouts; a zero-size shape gets ``[]`` flat, or e.g.
    ``[[], []]`` nested for ``[2, 0]``.  ``datatype``, ``name`` and ``shape`` are drawn unless given.
    """
    if layout not in (None, "flat", "nested"):
        raise ValueError(f"layout must be 'flat', 'nested' or None, not {layout!r}")
    if datatype is None:
        datatype = draw(datatypes(numeric_only=numeric_only))
    elif datatype not in DATATYPES:
        raise ValueError(f"unknown datatype {datatype!r}")
    if name is None:
        name = draw(tensor_names())
    if shape is None:
        shape = draw(shapes(max_dims=max_dims, max_side=max_side, max_elements=max_elements))
    shape = list(shape)
    n = _size(shape)
    flat = draw(_element_lists(datatype, n))
    if layout is None:
        layout = draw(st.sampled_from(["flat", "nested"]))
    data = _nest(flat, shape) if layout == "nested" else flat
    tensor: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype, "data": data}
    if draw(st.integers(0, 4)) == 4:  # one tensor in five carries parameters
        tensor["parameters"] = draw(parameters())
    return tensor


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@st.composite
def _outputs(
    draw: st.DrawFn, input_names: list[str], allow_unknown_output: bool
) -> list[dict[str, Any]]:
    """An ``outputs`` selection over ``input_names``: ``[]``, or a permutation of a non-empty
    subset, optionally with one name that is not an input at a random position."""
    if draw(st.integers(0, 5)) == 0:
        chosen: list[str] = []
    else:
        chosen = draw(st.permutations(input_names))
        chosen = chosen[: draw(st.integers(1, len(chosen)))]
    if allow_unknown_output and draw(st.booleans()):
        unknown = draw(tensor_names())
        while unknown in input_names:
            unknown += "_"
        chosen.insert(draw(st.integers(0, len(chosen))), unknown)
    selection = []
    for output_name in chosen:
        entry: dict[str, Any] = {"name": output_name}
        if draw(st.integers(0, 5)) == 5:
            entry["parameters"] = draw(parameters())
        selection.append(entry)
    return selection


@lru_cache(maxsize=None)
def _name_lists(min_size: int, max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(tensor_names(), min_size=min_size, max_size=max_size, unique=True)


@lru_cache(maxsize=None)
def _request_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.from_regex(r"[a-z0-9][a-z0-9\-]{0,11}", fullmatch=True),
        st.text(_UTF8_TEXT_CHARS, max_size=12),
    )


@st.composite
def requests(
    draw: st.DrawFn,
    min_tensors: int = 1,
    max_tensors: int = 4,
    numeric_only: bool = False,
    allow_outputs: bool = True,
    allow_unknown_output: bool = False,
    *,
    layout: str | None = None,
    max_elements: int = MAX_ELEMENTS,
) -> dict[str, Any]:
    """Generate an inference request ``{"id"?, "parameters"?, "inputs", "outputs"?}``.

    ``inputs`` holds ``min_tensors`` to ``max_tensors`` tensors (see :func:`tensors`) with unique
    names; datatypes are numeric when ``numeric_only`` (otherwise BOOL and BYTES appear too).
    ``id`` is an optional string, ``parameters`` an optional small object.  When
    ``allow_outputs``, the request sometimes carries ``outputs``: usually a permutation of a
    non-empty subset of the input names, sometimes ``[]``; with ``allow_unknown_output`` it
    sometimes also names a tensor that is not an input (the request then deserves an error).
    """
    if min_tensors < 1 or max_tensors < min_tensors:
        raise ValueError("need 1 <= min_tensors <= max_tensors")
    names = draw(_name_lists(min_tensors, max_tensors))
    request: dict[str, Any] = {}
    if draw(st.booleans()):
        request["id"] = draw(_request_ids())
    if draw(st.integers(0, 4)) == 4:
        request["parameters"] = draw(parameters())
    request["inputs"] = [
        draw(
            tensors(
                name=name,
                layout=layout,
                numeric_only=numeric_only,
                max_elements=max_elements,
            )
        )
        for name in names
    ]
    if allow_outputs and draw(st.integers(0, 2)) == 2:
        request["outputs"] = draw(_outputs(names, allow_unknown_output))
    return request


def multipliers() -> st.SearchStrategy[int]:
    """Generate a model multiplier (any Python int), weighted towards the interesting ones: 2 (the
    kit's model, and the shrink target), 0, -1, -3, 1, and large ones that wrap or overflow:
    2**31 - 1, -2**40, 2**53 + 1, 2**63, 2**70."""
    return st.one_of(
        st.sampled_from([2, 0, -1, -3, 1, 3, 2**31 - 1, -(2**31), -(2**40), 2**53 + 1, 2**63,
                         -(2**64) - 1, 2**70]),
        st.integers(-1000, 1000),
        st.integers(),
    )


def batches(min_size: int = 1, max_size: int = 50, **request_kwargs: Any) -> st.SearchStrategy[
    list[dict[str, Any]]
]:
    """Generate a list of ``min_size`` to ``max_size`` requests (see :func:`requests`, which gets
    ``request_kwargs``), to be served together in one predictor run."""
    return st.lists(requests(**request_kwargs), min_size=min_size, max_size=max_size)


# ---------------------------------------------------------------------------------------------
# Inputs where predictor bugs live (conformance/suite/test_inputs.py): big and high-rank tensors,
# float edges for a given multiplier, selections, nesting that disagrees with the shape, odd file
# names, and multiplier.txt / odahuflow.project.yaml as people write them. Plain builders (seeded
# numpy generators, so one run is cheap) plus hypothesis strategies for the drawn models.
# ---------------------------------------------------------------------------------------------

#: A multiplier above 2**32 (so above 2**29) and an FP32 input whose exact product lies just off a
#: float32 midpoint while its float64 product lands on it: a predictor that multiplies in float64
#: and then casts rounds twice and gets the neighbour (found by construction, checked in
#: tests/test_strategies.py). No such pair exists for FP16: above 2**42 every non-zero FP16 value's
#: product overflows, so FP16 gets zeros there (``0 * m`` is 0, never NaN).
FP32_DOUBLE_ROUNDING = (1091028067479, 12674265.0)


def random_values(datatype: str, count: int, rng: np.random.Generator, multiplier: int = 2) -> list[Any]:
    """``count`` values of a numeric ``datatype``: integers over the type's whole range; floats from full
    bit patterns (every exponent, full mantissas, subnormals), kept at most max / (4 |m|) so that the
    product stays finite (others are replaced by values in (-1, 1))."""
    if datatype in INTEGER_BOUNDS:
        lo, hi = INTEGER_BOUNDS[datatype]
        kind = np.uint64 if lo == 0 else np.int64
        return cast(list, rng.integers(lo, hi, size=count, dtype=kind, endpoint=True).tolist())
    dtype = np.dtype(NUMPY_DTYPES[datatype])
    unsigned = np.dtype(f"u{dtype.itemsize}")
    bits = rng.integers(0, np.iinfo(unsigned).max, size=count, dtype=unsigned, endpoint=True)
    with np.errstate(invalid="ignore", over="ignore"):
        values = bits.view(dtype).astype(np.float64)
    limit = float(np.finfo(dtype).max) / (4 * max(1, abs(multiplier)))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (np.abs(values) <= limit)
    spare = rng.uniform(-1, 1, size=count).astype(dtype).astype(np.float64)
    return cast(list, np.where(ok, values, spare).tolist())


def nest(flat: list[Any], shape: list[int]) -> list[Any]:
    """Row-major nesting of ``flat`` to match ``shape`` (public twin of the tensors() helper)."""
    return _nest(flat, shape)


def tensor(name: str, datatype: str, shape: list[int], values: list[Any], nested: bool = False) -> dict[str, Any]:
    """An input tensor with ``values`` (flat, or nested to the shape)."""
    return {"name": name, "shape": list(shape), "datatype": datatype,
            "data": _nest(values, list(shape)) if nested else list(values)}


#: Shapes of rank 4 to 6 (one zero-size) for :func:`high_rank_requests`.
HIGH_RANK_SHAPES = ([2, 3, 1, 2], [1, 2, 2, 1, 3], [2, 1, 2, 1, 2, 2], [3, 0, 2, 1], [1, 1, 1, 1, 1, 1])


def high_rank_requests(rng: np.random.Generator, multiplier: int = 2) -> list[tuple[str, dict[str, Any]]]:
    """Requests holding tensors of rank 4 to 6, nested and flat, over every numeric datatype; one request
    holds several of them."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i, datatype in enumerate(NUMERIC_DATATYPES):
        shape = HIGH_RANK_SHAPES[i % len(HIGH_RANK_SHAPES)]
        values = random_values(datatype, _size(shape), rng, multiplier)
        for nested in (False, True):
            body = {"inputs": [tensor("x", datatype, shape, values, nested)]}
            out.append((f"rank{len(shape)}-{datatype}-{'nested' if nested else 'flat'}", body))
    several = [tensor(f"t{j}", d, s, random_values(d, _size(s), rng, multiplier), nested=j % 2 == 0)
               for j, (d, s) in enumerate(zip(("INT64", "FP32", "UINT16", "FP16"), HIGH_RANK_SHAPES))]
    out.append(("rank4to6-several", {"id": "several", "inputs": several}))
    return out


def big_requests(sizes: tuple[tuple[int, str], ...], rng: np.random.Generator,
                 multiplier: int = 2) -> list[tuple[str, dict[str, Any]]]:
    """One request per ``(elements, datatype)``, flat, except a 65,536-element one also sent nested at rank 4
    (16 x 16 x 16 x 16)."""
    out = []
    for count, datatype in sizes:
        values = random_values(datatype, count, rng, multiplier)
        out.append((f"big-{count}-{datatype}", {"inputs": [tensor("x", datatype, [count], values)]}))
        if count == 65536:
            out.append((f"big-{count}-{datatype}-rank4", {"inputs": [tensor("x", datatype, [16] * 4, values, True)]}))
    return out


def _float_steps(x: float, dtype: np.dtype, up: bool) -> float:
    with np.errstate(over="ignore"):
        return float(np.nextafter(dtype.type(x), dtype.type(np.inf if up else -np.inf)))


def _finite_product(x: float, datatype: str, multiplier: int) -> bool:
    from conformance.oracle.arithmetic import multiply

    with np.errstate(over="ignore", invalid="ignore"):
        value = multiply(np.array([x], dtype=NUMPY_DTYPES[datatype]), datatype, multiplier)[0]
    return bool(np.isfinite(value))


def float_edge_requests(datatype: str, multiplier: int, rng: np.random.Generator,
                        count: int = 24) -> list[tuple[str, dict[str, Any]]]:
    """Float edges of ``datatype`` under ``multiplier``: full bit patterns; +-0.0; subnormals and their
    boundary with the normals (also where the product crosses it); the largest value whose product still
    rounds to a finite one and the smallest whose product overflows (a request of its own: an error is due);
    inputs whose float64 product rounds differently from the exact one (the double-rounding trap)."""
    dtype = np.dtype(NUMPY_DTYPES[datatype])
    info = np.finfo(dtype)
    tiny, normal, top = float(info.smallest_subnormal), float(info.smallest_normal), float(info.max)
    m = abs(multiplier)
    named: dict[str, list[float]] = {
        "bits": random_values(datatype, count, rng, multiplier),
        "zeros": [0.0, -0.0, 0.0],
        "subnormals": [tiny, -tiny, normal - tiny, -(normal - tiny), normal, -normal, _float_steps(normal, dtype, False)],
    }
    if m:
        near = float(dtype.type(normal / m)) if normal / m >= tiny else 0.0
        if near:
            named["product-at-normal-boundary"] = [near, _float_steps(near, dtype, False), _float_steps(near, dtype, True)]
        with np.errstate(over="ignore"):
            x = float(dtype.type(top / m))
        if x >= tiny:
            while x > 0 and not _finite_product(x, datatype, multiplier):
                x = _float_steps(x, dtype, False)
            while math.isfinite(_float_steps(x, dtype, True)) and _finite_product(_float_steps(x, dtype, True), datatype, multiplier):
                x = _float_steps(x, dtype, True)
            if x > 0:
                named["product-just-below-max"] = [x, -x]
                above = _float_steps(x, dtype, True)
                if math.isfinite(above):
                    named["product-just-above-max"] = [above]
        traps = _double_rounding_traps(datatype, multiplier, rng)
        if traps:
            named["float64-product-traps"] = traps
    out = []
    for kind, values in named.items():
        values = [v for v in values if kind == "product-just-above-max" or _finite_product(v, datatype, multiplier)]
        if values:
            out.append((f"float-{datatype}-{kind}", {"inputs": [tensor("f", datatype, [len(values)], values)]}))
    return out


def _double_rounding_traps(datatype: str, multiplier: int, rng: np.random.Generator, tries: int = 400) -> list[float]:
    """Inputs whose product computed as ``float64(x) * float64(m)`` and cast differs from the exact product
    rounded once (none when the float64 product is always exact)."""
    from conformance.oracle.arithmetic import multiply

    dtype = np.dtype(NUMPY_DTYPES[datatype])
    if datatype == "FP16" or multiplier.bit_length() > 1000:
        return []
    odd = abs(multiplier) >> max(0, (abs(multiplier) & -abs(multiplier)).bit_length() - 1)
    if odd.bit_length() <= 53 - (int(np.finfo(dtype).nmant) + 1):
        return []
    candidates = np.array(random_values(datatype, tries, rng, multiplier), dtype=np.float64).astype(dtype)
    m, x = FP32_DOUBLE_ROUNDING
    if datatype == "FP32" and multiplier == m:
        candidates = np.concatenate([np.array([x * 2.0**k for k in range(-60, 61, 20)], dtype=dtype),
                                     np.array([-x], dtype=dtype), candidates])
    with np.errstate(over="ignore", invalid="ignore"):
        exact = multiply(candidates, datatype, multiplier)
        twice = (candidates.astype(np.float64) * np.float64(multiplier)).astype(dtype)
        differ = np.isfinite(exact) & np.isfinite(twice) & (exact != twice)
    return cast(list, candidates[differ][:8].astype(np.float64).tolist())


def integer_edge_request() -> dict[str, Any]:
    """Every integer datatype's extremes and values around 2**(bits-1) (and 2**53 for 64 bits), one tensor
    each, nested as [1, n] for half of them: products wrap."""
    inputs = []
    for i, datatype in enumerate(INTEGER_DATATYPES):
        values = _integer_specials(datatype)
        shape = [1, len(values)] if i % 2 else [len(values)]
        inputs.append(tensor(datatype.lower(), datatype, shape, values, nested=bool(i % 2)))
    return {"inputs": inputs}


def edge_requests(multiplier: int, rng: np.random.Generator) -> list[tuple[str, dict[str, Any]]]:
    """What runs with each staged model: integer extremes and the float edges of every FP type."""
    out = [("int-extremes", integer_edge_request())]
    for datatype in FLOAT_DATATYPES:
        out += float_edge_requests(datatype, multiplier, rng)
    return out


def selection_requests(multiplier: int = 2) -> list[tuple[str, dict[str, Any]]]:
    """Selections: an order other than the inputs', parameters on the selected outputs, a tensor whose product
    overflows left out (no error is due), the same tensor selected twice (an error is due: ``outputs`` names
    are unique)."""
    a = tensor("a", "INT32", [2], [7, -2**31])
    b = tensor("b", "FP64", [2, 1], [[1.5], [-0.0]])
    c = tensor("c", "UINT8", [3], [255, 0, 128])
    high = float(np.finfo(np.float16).max) if abs(multiplier) >= 2 else 1.0
    hot = tensor("hot", "FP16", [2], [high, -high])
    hot32 = tensor("hot32", "FP32", [1], [float(np.finfo(np.float32).max) if abs(multiplier) >= 2 else 1.0])
    return [
        ("select-reordered", {"inputs": [a, b, c], "outputs": [{"name": "c"}, {"name": "a"}]}),
        ("select-with-parameters", {"id": "p", "inputs": [a, b, c],
                                    "outputs": [{"name": "b", "parameters": {"binary_data": False, "rank": 0}},
                                                {"name": "a", "parameters": {"note": "x"}}]}),
        ("select-leaves-out-overflow", {"inputs": [hot, a, hot32], "outputs": [{"name": "a"}]}),
        ("select-repeated", {"inputs": [a, b], "outputs": [{"name": "a"}, {"name": "a"}]}),
    ]


def misnested_requests() -> list[tuple[str, dict[str, Any]]]:
    """Data whose element count matches the shape but whose nesting does not: each deserves an error."""
    return [
        ("misnested-1x4-for-2x2", {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2, 3, 4]]}]}),
        ("misnested-3x2-for-2x3", {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                                               "data": [[1, 2], [3, 4], [5, 6]]}]}),
        ("misnested-mixed-for-2x2", {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "UINT8", "data": [1, [2, 3], 4]}]}),
    ]


#: File names predictors get wrong: shared stems and prefixes, several dots, a leading dot, names that look
#: temporary, spaces, non-ASCII (also the same letter composed and decomposed), names differing only in case.
ODD_FILE_NAMES = (
    "a.json", "a.b.json", "a.b.c.json", "ab.json", "a-1.json", "a-2.json", "a-10.json", "a.json.json",
    ".hidden.json", "..two-dots.json", "x.tmp.json", "x.part.json", "~x.json", "#x#.json", "x.swp.json",
    "with space.json", " leading space.json", "trailing space .json", "ünïcødé.json", "名前.json",
    "emoji-\U0001F600.json", "\u00e9.json", "e\u0301.json", "Case.json", "case.json", "CASE.json",
    "response.json", "0.json", "00.json", "-dash.json", "a.JSON.json",
)


def many_small_requests(count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` small requests (at least the odd names), each with its own values (a mix-up shows) and its own
    id (so that responses written under other names are paired with their requests by id, whatever order the
    names sort in): the odd names, then ``req-0000.json``..."""
    names = list(ODD_FILE_NAMES) + [f"req-{i:04}.json" for i in range(max(0, count - len(ODD_FILE_NAMES)))]
    kinds = ("INT32", "FP64", "UINT16", "INT8", "FP32")
    out = []
    for i, name in enumerate(names):
        datatype = kinds[i % len(kinds)]
        body: dict[str, Any] = {"inputs": [tensor("x", datatype, [2], [i % 100, -(i % 50) if datatype[0] != "U" else i % 7])]}
        body["id"] = f"id-{i}"
        out.append((name, body))
    return out


def project_yaml(name: str, version: str) -> str:
    """``odahuflow.project.yaml`` text; ``version`` is written as given (``2`` is a YAML number)."""
    return f"model:\n  name: {json.dumps(name, ensure_ascii=False)}\n  version: {version}\n"


#: Models as people write them: (id, multiplier.txt text, name, version as written in the YAML). Each
#: staged once with :func:`edge_requests`; the kit's reading (``parse_multiplier``) accepts them all, so a
#: candidate must too. ``+`` is accepted (``[+-]?[0-9]+``).
MODELS = (
    ("other-name-spaces-minus-one", "  -1 \n", "another-model", "2"),
    ("long-name-blank-line-one", "1\n\n", "modèle-" + "long-" * 40 + "name", "'1.0.0-rc.1'"),
    ("capitalised-name-crlf-beyond-2^32", f"{FP32_DOUBLE_ROUNDING[0]}\r\n", "Multiplier", "'1'"),
    ("no-final-newline-beyond-2^63", str(2**63 + 1025), "mult", "10"),
    ("plus-sign-beyond-2^64", f"+{2**64 + 2049}\n", "multiplier.v2", "'2.0'"),
)


@st.composite
def model_files(draw: st.DrawFn) -> tuple[str, str, str]:
    """A model as someone might write it: ``(multiplier.txt text, name, version as written)``: any
    :func:`multipliers` value, an optional ``+`` on non-negative ones, surrounding spaces, tabs, blank lines,
    CRLF or no final newline; a name and a version (sometimes a YAML number)."""
    value = draw(multipliers())
    digits = str(value)
    if value >= 0 and draw(st.booleans()):
        digits = "+" + digits
    space = st.sampled_from(["", " ", "  ", "\t", "\n"])
    ending = draw(st.sampled_from(["\n", "", "\r\n", "\n\n", " \n", "\r\n\r\n"]))
    text = draw(space) + digits + ending
    name = draw(st.one_of(st.from_regex(r"[a-z][a-z0-9\-.]{0,40}", fullmatch=True),
                          st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                                  min_size=1, max_size=80).filter(lambda s: s.strip() == s and s)))
    version = draw(st.one_of(st.integers(0, 10**6).map(str), st.from_regex(r"[0-9a-z][0-9a-z.\-]{0,12}", fullmatch=True)
                             .map(lambda v: json.dumps(v))))
    return text, name, version
