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
