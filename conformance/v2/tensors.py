"""Tensor data: layout (flat or nested to match the shape) and element types, decoded into numpy arrays.

The checks here are the numeric half of the format requirements: ``F-COUNT`` (element count and nesting) and
``F-TYPED`` (each element representable in the datatype). They run on whole arrays with numpy and fall back to a
per-element walk only to name the first offending element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conformance.contract.problems import ConformanceProblem
from conformance.v2.datatypes import DATATYPES, Datatype


class DataProblem(ConformanceProblem):
    """Tensor data that breaks ``requirement``; ``path`` is the index path below ``/data`` (may be empty)."""

    def __init__(self, requirement: str, path: tuple[int, ...], message: str):
        super().__init__(message)
        self.requirement = requirement
        self.path = path
        self.message = message


@dataclass
class Decoded:
    """A tensor's data, flattened row-major. ``values`` is a numpy array (a list of str for BYTES)."""

    values: np.ndarray | list
    nested: bool


def element_count(shape: list[int]) -> int:
    """The number of elements a tensor of ``shape`` holds (exact for any size)."""
    return math.prod(shape)


def flatten(data: list, shape: list[int]) -> tuple[list, bool]:
    """Return ``(flat_elements, was_nested)``; raise :class:`DataProblem` (F-COUNT) when data does not fit shape.

    Data is nested when the shape has two or more dimensions and the first element is a list; then every level
    must hold exactly the shape's count. Otherwise it is flat and must hold ``product(shape)`` elements.
    """
    if len(shape) >= 2 and data and type(data[0]) is list:
        flat: list = []
        _flatten_nested(data, shape, (), flat)
        return flat, True
    expected = element_count(shape)
    if len(data) != expected:
        raise DataProblem("F-COUNT", (), f"{len(data)} elements, but shape {shape} needs {expected}")
    return data, False


def _flatten_nested(data: object, shape: list[int], path: tuple[int, ...], out: list) -> None:
    if type(data) is not list:
        raise DataProblem("F-COUNT", path, f"expected an array of {shape[0]} (nested data must match the shape)")
    if len(data) != shape[0]:
        raise DataProblem("F-COUNT", path, f"{len(data)} entries, but the shape needs {shape[0]} at this level")
    if len(shape) == 1:
        for i, x in enumerate(data):
            if type(x) is list:
                raise DataProblem("F-COUNT", path + (i,), "an array where the shape has no more dimensions")
        out.extend(data)
        return
    for i, sub in enumerate(data):
        _flatten_nested(sub, shape[1:], path + (i,), out)


def decode(data: list, shape: list[int], datatype: str, may_hold_booleans: bool = True) -> Decoded:
    """Flatten ``data`` per ``shape`` and convert it to ``datatype``; raise :class:`DataProblem` on the first fault.

    ``may_hold_booleans=False`` is a promise from the caller (the raw text has no ``true``/``false``) that lets
    integer and float data skip the per-element boolean scan.
    """
    flat, nested = flatten(data, shape)
    dt = DATATYPES[datatype]
    try:
        values = _convert(flat, dt, may_hold_booleans)
    except DataProblem as problem:
        if nested and problem.path:
            problem.path = tuple(int(i) for i in np.unravel_index(problem.path[0], shape))
        raise
    return Decoded(values, nested)


def _convert(flat: list, dt: Datatype, may_hold_booleans: bool) -> np.ndarray | list:
    if dt.kind == "bytes":
        for i, x in enumerate(flat):
            if type(x) is not str:
                raise typed_problem(i, x, dt, "BYTES takes strings")
        return flat
    if dt.kind == "bool":
        for i, x in enumerate(flat):
            if type(x) is not bool:
                raise typed_problem(i, x, dt, "BOOL takes true or false")
        return np.array(flat, dtype=bool)
    if not flat:
        return np.zeros(0, dtype=dt.numpy)
    if may_hold_booleans:
        for i, x in enumerate(flat):
            if type(x) is bool:
                raise typed_problem(i, x, dt, f"{dt.name} takes numbers, not booleans")
    try:
        inferred = np.array(flat)
    except (ValueError, TypeError, OverflowError):
        inferred = None
    if inferred is not None and inferred.ndim == 1:
        kind = inferred.dtype.kind
        if dt.kind == "int" and kind in "iu":
            if int(inferred.min()) >= dt.minimum and int(inferred.max()) <= dt.maximum:
                return inferred.astype(dt.numpy)
        elif dt.kind == "float" and kind in "fiu":
            with np.errstate(over="ignore"):
                values = inferred.astype(dt.numpy)
            if np.isfinite(values).all():
                return values
    return _convert_slowly(flat, dt)


def _convert_slowly(flat: list, dt: Datatype) -> np.ndarray:
    """Check element by element (names the first bad one); used only when the fast path could not decide."""
    if dt.kind == "int":
        for i, x in enumerate(flat):
            if type(x) is not int:
                if type(x) is float and x.is_integer() and abs(x) >= 2**53:
                    raise typed_problem(i, x, dt, f"not an integer within {dt.name}'s range [{dt.minimum}, {dt.maximum}]")
                raise typed_problem(i, x, dt, f"{dt.name} takes JSON integers")
            if not dt.minimum <= x <= dt.maximum:
                raise typed_problem(i, x, dt, f"out of {dt.name}'s range [{dt.minimum}, {dt.maximum}]")
        return np.array(flat, dtype=dt.numpy)
    doubles = np.empty(len(flat), dtype=np.float64)
    for i, x in enumerate(flat):
        if type(x) not in (int, float):
            raise typed_problem(i, x, dt, f"{dt.name} takes JSON numbers")
        try:
            doubles[i] = float(x)
        except OverflowError:
            raise typed_problem(i, x, dt, f"out of {dt.name}'s range") from None
    with np.errstate(over="ignore"):
        values = doubles.astype(dt.numpy)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise typed_problem(i, flat[i], dt, f"out of {dt.name}'s range (not finite once rounded to {dt.name})")
    return values


def typed_problem(index: int, value: object, dt: Datatype, why: str) -> DataProblem:
    """The F-TYPED problem of element ``index`` (flat), holding ``value``, because ``why``."""
    shown = repr(value) if not isinstance(value, (bool, int, float)) else _json_scalar(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return DataProblem("F-TYPED", (index,), f"{shown}: {why}")


def _json_scalar(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(value)
