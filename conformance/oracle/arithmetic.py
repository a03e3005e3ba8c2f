"""Multiplying a tensor by the model's integer, exactly as the contract defines it (M-VALUE).

Integers wrap modulo 2**bits (two's complement for signed types), computed in numpy's own fixed-width integers
so 64-bit values never pass through a float. Floats: the exact product ``x * m`` rounded once, to nearest-even,
in the tensor's precision. For ordinary multipliers a float64 product is exact and a single cast rounds it;
for huge multipliers each element goes through exact rational arithmetic with round-to-odd into float64, after
which numpy's cast to FP16/FP32 rounds correctly (round-to-odd at 53 bits is innocuous for <= 51-bit targets).
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np

from conformance.v2.datatypes import DATATYPES

# A float64 product x*m is exact when the bits of x's significand plus the bits of m fit in 53.
_EXACT_LIMIT = {"FP16": 2**42, "FP32": 2**29}


def multiply(values: np.ndarray, datatype: str, multiplier: int) -> np.ndarray:
    """``values`` (already of ``datatype``'s numpy type) times ``multiplier`` per the contract."""
    dt = DATATYPES[datatype]
    if dt.kind == "int":
        wrapped = np.array(multiplier % (1 << dt.bits), dtype=np.dtype(f"u{dt.bits // 8}")).astype(dt.numpy)
        return values * wrapped
    if dt.kind != "float":
        raise ValueError(f"{datatype} tensors are not multiplied")
    if datatype == "FP64":
        if abs(multiplier) <= 2**53:
            with np.errstate(over="ignore"):
                return values * np.float64(multiplier)
    elif abs(multiplier) <= _EXACT_LIMIT[datatype]:
        with np.errstate(over="ignore"):
            return (values.astype(np.float64) * np.float64(multiplier)).astype(dt.numpy)
    return _multiply_exactly(values, dt.dtype, multiplier)


def _multiply_exactly(values: np.ndarray, dtype: np.dtype, multiplier: int) -> np.ndarray:
    out = np.empty(values.shape, dtype=dtype)
    for index, x in enumerate(values.tolist()):
        exact = Fraction(x) * multiplier
        if exact == 0:  # the product's sign still follows IEEE: -0.0 * 5 = -0.0, 0.0 * -5 = -0.0
            out[index] = dtype.type(math.copysign(0.0, x) * (1.0 if multiplier > 0 else -1.0))
            continue
        if dtype == np.float64:
            rounded = _nearest_double(exact)
        else:
            rounded = _round_to_odd_double(exact)
        with np.errstate(over="ignore"):
            out[index] = dtype.type(rounded)
    return out


def _nearest_double(q: Fraction) -> float:
    try:
        return q.numerator / q.denominator  # CPython's int true division rounds correctly
    except OverflowError:
        return float("inf") if q > 0 else float("-inf")


def _round_to_odd_double(q: Fraction) -> float:
    nearest = _nearest_double(q)
    if nearest in (float("inf"), float("-inf")) or Fraction(nearest) == q:
        return nearest
    neighbour = float(np.nextafter(nearest, np.inf if Fraction(nearest) < q else -np.inf))
    (bits,) = struct.unpack("<Q", struct.pack("<d", nearest))
    return nearest if bits & 1 else neighbour
