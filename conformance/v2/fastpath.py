"""The fast path for large V2 files: prove a document valid without building a Python object per number.

simdjson parses the file lazily; the envelope (everything but tensor data) becomes Python objects and goes
through the same schema and name checks as always, while each numeric data array goes straight from simdjson's
tape into a numpy buffer (``as_buffer``), where shape, type and range are checked as whole arrays.

The fast path says "valid, here are the tensors", or "undecided" (``None``). Any doubt (a parse error, a schema
problem, a BOOL/BYTES tensor, a ``[`` the walk cannot account for) returns ``None`` and the caller runs the
precise path, which names every problem exactly. Two data faults of a big file it names itself, with the precise
path's very finding (the whole data array checked at once, so that a failing 200 MB file is not turned into
Python objects): an element count of flat data that does not fit the shape, and an integer out of its
datatype's range. So the fast path cannot change a verdict, only its cost.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from conformance.contract.findings import Finding, join
from conformance.v2.datatypes import DATATYPES
from conformance.v2.envelope import (
    ERROR,
    REQUEST,
    TENSOR_KEY,
    Document,
    DocumentKind,
    Tensor,
    envelope_findings,
    kind_of,
    requested_output_findings,
)
from conformance.v2.strictjson import MAX_DEPTH
from conformance.v2.tensors import DataProblem, element_count, typed_problem

try:  # pysimdjson is a dependency, but the kit stays correct (only slower) without it
    import simdjson
except ImportError:  # pragma: no cover
    simdjson = None  # type: ignore[assignment]

#: How ``as_buffer`` reads a numeric array (its ``of_type``), and the numpy type of what it gives.
_BufferType = Literal["d", "i", "u"]
_BUFFER_TYPE: dict[str, tuple[_BufferType, type[np.generic]]] = {"u": ("u", np.uint64), "i": ("i", np.int64), "f": ("d", np.float64)}


class _Undecided(Exception):
    pass


class _Fault(Exception):
    """A data fault named exactly as the precise path names it (its :class:`DataProblem`)."""

    def __init__(self, problem: DataProblem):
        super().__init__(str(problem))
        self.problem = problem


def load(path: Path, kind: DocumentKind, file: str) -> Document | None:
    """A checked :class:`Document` when the file at ``path`` is a valid ``kind`` document, else ``None``."""
    if simdjson is None or _starts_with_bom(path):
        return None  # simdjson skips a byte order mark; RFC 8259 text must not start with one
    try:
        parsed = _parse_file(path)
    except Exception:  # any parse problem: the precise path explains it
        _release_large_parser()
        return None
    try:
        document = _check(parsed, kind, file, path)
        if document.findings:  # the caller reads a failing file again (the platform's rules): free the buffers first
            del parsed
            _release_large_parser()
        return document
    except (_Undecided, RecursionError):
        del parsed
        _release_large_parser()
        return None


def _starts_with_bom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(3) == b"\xef\xbb\xbf"
    except OSError:
        return True  # let the precise path report it


_local = threading.local()


#: A parser whose buffers grew beyond this is dropped when the fast path cannot decide, so that its buffers
#: (about twice the file) are freed before the precise path reads the same file again.
_KEEP_PARSER_BYTES = 16 << 20


def _release_large_parser() -> None:
    parser = getattr(_local, "parser", None)
    if parser is not None and _local.capacity > _KEEP_PARSER_BYTES:
        _local.parser = None


def _parse_file(path: Path) -> object:
    """Parse with one parser per thread, reused from file to file: its buffers grow to the largest file once
    instead of being allocated anew (and fragmenting the heap) for every file. Nothing of a parsed document
    outlives :func:`load` (tensor values are copied out by ``as_buffer``); should a caller still hold an object of
    the previous document, simdjson refuses the reuse and a fresh parser takes over."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
        _local.capacity = 0
    _local.capacity = max(_local.capacity, path.stat().st_size)
    try:
        return parser.load(str(path))
    except RuntimeError:
        _local.parser = simdjson.Parser()
        _local.capacity = path.stat().st_size
        return _local.parser.load(str(path))


def _check(parsed: object, kind: DocumentKind, file: str, path: Path) -> Document:
    if not isinstance(parsed, simdjson.Object):
        raise _Undecided
    counter = [0]
    tensor_key = TENSOR_KEY[kind]
    body = cast(dict, _envelope(parsed, counter, skip_data_of=tensor_key))  # a simdjson.Object becomes a dict
    kind = kind_of(body, kind)
    if envelope_findings(body, kind, file):
        raise _Undecided
    if kind == REQUEST and requested_output_findings(body, file):
        raise _Undecided
    document = Document(file, kind, body)
    if kind != ERROR:
        if any(len(tensor["shape"]) + 3 > MAX_DEPTH for tensor in body[tensor_key]):
            raise _Undecided  # data as deep as the shape would pass the kit's nesting limit: the precise path says so
        for index, tensor in enumerate(body[tensor_key]):
            data = cast(Any, parsed[tensor_key])[index]["data"]  # the envelope passed the schema: an array of objects
            where = join("", tensor_key, index)
            try:
                values = _numeric_values(data, tensor["shape"], tensor["datatype"], counter)
            except _Fault as fault:  # as documents._decode_tensor records it: one finding, the tensor left out
                problem = fault.problem
                document.findings.append(Finding(problem.requirement, file, join(where, "data", *problem.path), problem.message))
                continue
            document.tensors.append(
                Tensor(tensor["name"], tensor["datatype"], list(tensor["shape"]), values,
                       bool(len(tensor["shape"]) >= 2 and len(data) and isinstance(data[0], simdjson.Array)),
                       join("", tensor_key, index))
            )
    if _count_open_brackets(path) != counter[0]:
        raise _Undecided  # an array the walk did not see (hidden in data) or a "[" inside a string
    return document


def _envelope(value: object, counter: list[int], skip_data_of: str | None = None, depth: int = 1) -> object:
    """Python objects for everything but the data arrays of ``skip_data_of`` tensors (kept as simdjson arrays,
    shown as ``[]`` to the schema). Counts arrays converted; a duplicate key, or nesting deeper than the kit
    reads (:data:`~conformance.v2.strictjson.MAX_DEPTH`), makes the document undecided."""
    if depth > MAX_DEPTH:
        raise _Undecided
    if isinstance(value, simdjson.Object):
        keys = _keys(value)
        result: dict[str, object] = {}
        for key in keys:
            item = value[key]
            if key == skip_data_of and isinstance(item, simdjson.Array):
                counter[0] += 1
                result[key] = [_tensor_envelope(t, counter, depth + 2) for t in item]
            else:
                result[key] = _envelope(item, counter, depth=depth + 1)
        return result
    if isinstance(value, simdjson.Array):
        counter[0] += 1
        return [_envelope(item, counter, depth=depth + 1) for item in value]
    return value


def _keys(value: "simdjson.Object") -> list[str]:
    """The object's keys; undecided on a duplicate, or on a NUL character, which would cut ``value[key]``
    short (``.items()`` is no way out: it converts the data arrays to Python lists)."""
    keys = list(value.keys())
    if len(set(keys)) != len(keys) or any("\x00" in key for key in keys):
        raise _Undecided
    return keys


def _tensor_envelope(tensor: object, counter: list[int], depth: int) -> object:
    if not isinstance(tensor, simdjson.Object):
        return _envelope(tensor, counter, depth=depth)
    keys = _keys(tensor)
    result: dict[str, object] = {}
    for key in keys:
        item = tensor[key]
        if key == "data" and isinstance(item, simdjson.Array):
            result[key] = []  # counted and checked by _numeric_values
        else:
            result[key] = _envelope(item, counter, depth=depth + 1)
    return result


def _numeric_values(data: object, shape: list[int], datatype: str, counter: list[int]) -> np.ndarray:
    dt = DATATYPES[datatype]
    if not dt.numeric or not isinstance(data, simdjson.Array):
        raise _Undecided
    try:
        counter[0] += _count_structure(data, shape)
    except _Fault:
        counter[0] += 1  # flat data: one array (the bracket count at the end still has to agree)
        raise
    nested = len(shape) >= 2 and len(data) > 0 and isinstance(data[0], simdjson.Array)
    if element_count(shape) == 0:
        return np.zeros(0, dtype=dt.numpy)
    kind = "f" if dt.kind == "float" else ("u" if datatype == "UINT64" else "i")
    of_type, buffer_dtype = _BUFFER_TYPE[kind]
    try:
        flat = np.frombuffer(data.as_buffer(of_type=of_type), dtype=buffer_dtype)
    except (TypeError, ValueError):
        raise _Undecided from None  # a boolean, string, null or fraction where numbers belong
    if flat.size != element_count(shape):
        raise _Undecided
    if dt.kind == "int":
        if int(flat.min()) < dt.minimum or int(flat.max()) > dt.maximum:
            # every element is a JSON integer (as_buffer took them all): the first outside the range is the fault
            index = int(np.flatnonzero((flat < dt.minimum) | (flat > dt.maximum))[0])
            problem = typed_problem(index, int(flat[index]), dt, f"out of {dt.name}'s range [{dt.minimum}, {dt.maximum}]")
            if nested:
                problem.path = tuple(int(i) for i in np.unravel_index(index, shape))
            raise _Fault(problem)
        return flat.astype(dt.numpy, copy=False)
    with np.errstate(over="ignore"):
        values = flat.astype(dt.numpy, copy=False)
    if not np.isfinite(values).all():
        raise _Undecided
    return values


def _count_structure(data: simdjson.Array, shape: list[int]) -> int:
    """Check nested data level by level against ``shape``; return how many arrays it is made of."""
    if not (len(shape) >= 2 and len(data) and isinstance(data[0], simdjson.Array)):
        if len(data) != element_count(shape):
            raise _Fault(DataProblem("F-COUNT", (), f"{len(data)} elements, but shape {shape} needs {element_count(shape)}"))
        return 1
    arrays, level = 1, [data]
    for depth, side in enumerate(shape[:-1]):
        next_level: list[simdjson.Array] = []
        for array in level:
            if len(array) != side:
                raise _Undecided
            for row in array:
                if not isinstance(row, simdjson.Array):
                    raise _Undecided
                next_level.append(row)
        arrays += len(next_level)
        level = next_level
    if any(len(row) != shape[-1] for row in level):
        raise _Undecided
    return arrays


def _count_open_brackets(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"[")
    return count
