"""The 13 tensor datatypes of the Open Inference Protocol and what each one accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: What a datatype's elements are.
DatatypeKind = Literal["int", "float", "bool", "bytes"]


@dataclass(frozen=True)
class Datatype:
    """A V2 datatype. ``kind`` is one of "int", "float", "bool", "bytes"."""

    name: str
    kind: DatatypeKind
    numpy: np.dtype | None
    bits: int = 0
    minimum: int = 0
    maximum: int = 0

    @property
    def numeric(self) -> bool:
        """Whether the multiplier model serves this datatype (an integer or a float one)."""
        return self.kind in ("int", "float")

    @property
    def dtype(self) -> np.dtype:
        """:attr:`numpy`, for a datatype that has one (all but BYTES); ValueError for BYTES."""
        if self.numpy is None:
            raise ValueError(f"{self.name} has no numpy dtype")
        return self.numpy


def _int(name: str, signed: bool, bits: int) -> Datatype:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return Datatype(name, "int", np.dtype(f"{'i' if signed else 'u'}{bits // 8}"), bits, lo, hi)


DATATYPES: dict[str, Datatype] = {
    d.name: d
    for d in (
        Datatype("BOOL", "bool", np.dtype(bool)),
        _int("UINT8", False, 8),
        _int("UINT16", False, 16),
        _int("UINT32", False, 32),
        _int("UINT64", False, 64),
        _int("INT8", True, 8),
        _int("INT16", True, 16),
        _int("INT32", True, 32),
        _int("INT64", True, 64),
        Datatype("FP16", "float", np.dtype(np.float16), 16),
        Datatype("FP32", "float", np.dtype(np.float32), 32),
        Datatype("FP64", "float", np.dtype(np.float64), 64),
        Datatype("BYTES", "bytes", None),
    )
}

NAMES: tuple[str, ...] = tuple(DATATYPES)
INTEGER_NAMES: tuple[str, ...] = tuple(n for n, d in DATATYPES.items() if d.kind == "int")
FLOAT_NAMES: tuple[str, ...] = tuple(n for n, d in DATATYPES.items() if d.kind == "float")
MAX_SHAPE_ENTRY = (1 << 64) - 1


def unsigned_view(dtype: np.dtype) -> np.dtype:
    """The unsigned integer dtype with the same width, used to compare floats bit for bit."""
    return np.dtype(f"u{dtype.itemsize}")
