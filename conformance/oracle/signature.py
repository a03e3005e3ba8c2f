"""A model's declared signature (its inputs and outputs), read from MLServer's ``model-settings.json``, and the
B-SIGNATURE check of a response against it.

The file follows MLServer's convention: ``{"name": ..., "inputs": [TENSOR...], "outputs": [TENSOR...]}`` where a
TENSOR is ``{"name": STR, "datatype": V2 DATATYPE, "shape": [INT...], "parameters": {...}}``; ``-1`` in a shape is
a variable dimension (the same size wherever the same position is variable: the batch size). The kit reads two
optional ``parameters`` of its own (MLServer keeps unknown parameters): ``min`` and ``max``, the range of the
values (inclusive), used to generate requests for an input and checked on an output.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from conformance.contract.findings import Finding, join
from conformance.contract.problems import ConformanceProblem
from conformance.v2.datatypes import DATATYPES
from conformance.v2.documents import ERROR, Document, Tensor

#: The file in a model folder that declares the signature (MLServer's name).
SIGNATURE_FILE = "model-settings.json"
#: A variable dimension in a declared shape.
VARIABLE = -1


class Slack(Protocol):
    """How far a float output may stray outside its declared range (a tolerance, per output)."""

    @property
    def rtol(self) -> float: ...

    @property
    def atol(self) -> float: ...

    def for_output(self, name: str) -> Slack: ...


class SignatureProblem(ConformanceProblem):
    """The signature file cannot be used; ``str()`` is one line naming the file and the JSON pointer."""


@dataclass(frozen=True)
class TensorSpec:
    """One declared tensor: name, datatype, shape (``-1`` for a variable dimension) and an optional value range."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    minimum: float | None = None
    maximum: float | None = None

    def shape_findings(self, shape: list[int] | tuple[int, ...]) -> str | None:
        """Why ``shape`` does not follow the declared one (None when it does)."""
        if len(shape) != len(self.shape) or any(d != VARIABLE and d != s for d, s in zip(self.shape, shape)):
            return f"shape {list(shape)} does not follow the declared {list(self.shape)}"
        return None


@dataclass(frozen=True)
class Signature:
    """What a model declares it takes and gives."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    file: str = SIGNATURE_FILE

    def output(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.outputs if spec.name == name), None)


def read_signature(path: Path) -> Signature:
    """The signature declared in ``path`` (a ``model-settings.json``); raise :class:`SignatureProblem`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SignatureProblem(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SignatureProblem(f"{path}: cannot read as JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SignatureProblem(f"{path}: is not a JSON object")
    parts = []
    for key in ("inputs", "outputs"):
        entries = document.get(key)
        if not isinstance(entries, list) or not entries:
            raise SignatureProblem(f"{path}: /{key}: a non-empty list of tensors is needed")
        parts.append(tuple(_tensor(entry, path, f"/{key}/{i}") for i, entry in enumerate(entries)))
    for key, specs in zip(("inputs", "outputs"), parts):
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise SignatureProblem(f"{path}: /{key}: tensor names repeat: {names}")
    return Signature(parts[0], parts[1], str(path))


def _tensor(entry: object, path: Path, pointer: str) -> TensorSpec:
    if not isinstance(entry, dict):
        raise SignatureProblem(f"{path}: {pointer}: is not an object")
    name, datatype, shape = entry.get("name"), entry.get("datatype"), entry.get("shape")
    if not isinstance(name, str) or not name:
        raise SignatureProblem(f"{path}: {pointer}/name: a non-empty string is needed")
    if datatype not in DATATYPES:
        raise SignatureProblem(f"{path}: {pointer}/datatype: {datatype!r} is not a V2 datatype")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= VARIABLE
                                              for d in shape):
        raise SignatureProblem(f"{path}: {pointer}/shape: a list of sizes (-1 for a variable one) is needed")
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SignatureProblem(f"{path}: {pointer}/parameters: is not an object")
    bounds = []
    for key in ("min", "max"):
        value = parameters.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise SignatureProblem(f"{path}: {pointer}/parameters/{key}: a finite number is needed")
        bounds.append(value)
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise SignatureProblem(f"{path}: {pointer}/parameters: min {bounds[0]} is above max {bounds[1]}")
    return TensorSpec(name, datatype, tuple(shape), bounds[0], bounds[1])


def follows_inputs(request: Document, signature: Signature) -> bool:
    """Whether ``request`` (a checked request document) is a valid request that follows the input signature:
    every declared input once, by name, with its datatype and shape, the variable dimensions of one size, values
    within the declared range, and outputs (when listed) among the declared ones."""
    if request.findings or not isinstance(request.body, dict):
        return False
    by_name = {t.name: t for t in request.tensors}
    if sorted(by_name) != sorted(spec.name for spec in signature.inputs) or len(request.tensors) != len(by_name):
        return False
    variable: dict[int, int] = {}
    for spec in signature.inputs:
        tensor = by_name[spec.name]
        if tensor.datatype != spec.datatype or spec.shape_findings(tensor.shape):
            return False
        for position, (declared, size) in enumerate(zip(spec.shape, tensor.shape)):
            if declared == VARIABLE and variable.setdefault(position, size) != size:
                return False
        if _out_of_range(tensor, spec) is not None:
            return False
    wanted = request.body.get("outputs") or []
    return all(isinstance(w, dict) and signature.output(str(w.get("name"))) is not None for w in wanted)


def unservable(request: Document, signature: Signature) -> str | None:
    """Why a valid request cannot be served by a model with ``signature`` (an error response is owed: P-EVERY),
    or None: a declared input is missing, or an input's rank or a fixed dimension differs from the declared
    shape. (Another datatype, values out of range or extra inputs are left to the model: some accept them.)"""
    by_name = {t.name: t for t in request.tensors}
    for spec in signature.inputs:
        tensor = by_name.get(spec.name)
        if tensor is None:
            return f"the declared input {spec.name!r} is missing"
        problem = spec.shape_findings(tensor.shape)
        if problem is not None:
            return f"input {spec.name!r}: {problem}"
    return None


def signature_findings(actual: Document, request: Document, signature: Signature, error_expected: bool,
                       slack: Slack | None = None) -> tuple[list[Finding], bool]:
    """B-SIGNATURE: does ``actual`` (the response to ``request``, a request that follows the input signature)
    follow the output signature? An error response is a finding unless an error is what the model owes
    (``error_expected``). A float output's declared range is widened by the tolerance ``slack`` (a probability
    of 1 + 1e-7 is 1 within the tolerance; per output, see ``Tolerance.for_output``). Returns ``(findings, checked)``: ``checked`` is False when the
    response is too malformed to say (its format findings are the root cause)."""
    file = actual.file
    if actual.kind == ERROR:
        if error_expected:
            return [], True
        return [Finding("B-SIGNATURE", file, "/error", "error response to a request that follows the declared input "
                                                       f"signature ({signature.file})")], True
    body = actual.body if isinstance(actual.body, dict) else {}
    raw = body.get("outputs")
    if not isinstance(raw, list) or len(actual.tensors) != len(raw):
        return [], False
    listed = [w["name"] for w in cast(dict, request.body).get("outputs") or []]
    declared = listed or [spec.name for spec in signature.outputs]
    findings = []
    names = [t.name for t in actual.tensors]
    if names != declared:
        findings.append(Finding("B-SIGNATURE", file, "/outputs", f"output names {names} differ from the "
                                                                 f"{'requested' if listed else 'declared'} {declared}"))
    batch = _batch_sizes(request, signature)
    for tensor in actual.tensors:
        spec = signature.output(tensor.name)
        if spec is None:
            continue
        problem = None
        if tensor.datatype != spec.datatype:
            problem = Finding("B-SIGNATURE", file, join(tensor.pointer, "datatype"),
                              f"is {tensor.datatype}, the declared datatype is {spec.datatype}")
        elif spec.shape_findings(tensor.shape) or any(
                declared == VARIABLE and position in batch and batch[position] != size
                for position, (declared, size) in enumerate(zip(spec.shape, tensor.shape))):
            problem = Finding("B-SIGNATURE", file, join(tensor.pointer, "shape"),
                              f"{spec.shape_findings(tensor.shape) or f'shape {list(tensor.shape)}'} "
                              f"(declared {list(spec.shape)}; the request's variable sizes {_show(batch)})")
        else:
            widen = slack.for_output(tensor.name) if slack is not None else None
            where = _out_of_range(tensor, spec, (widen.rtol, widen.atol) if widen is not None else (0.0, 0.0))
            if where is not None:
                problem = Finding("B-SIGNATURE", file, join(tensor.pointer, "data", where[0]),
                                  f"{where[1]} is outside the declared range [{spec.minimum}, {spec.maximum}]")
        if problem is not None:
            findings.append(problem)
    return findings, True


def _batch_sizes(request: Document, signature: Signature) -> dict[int, int]:
    """Size of each variable dimension position in the request (the batch size, usually at position 0)."""
    sizes: dict[int, int] = {}
    by_name = {t.name: t for t in request.tensors}
    for spec in signature.inputs:
        tensor = by_name.get(spec.name)
        if tensor is None:
            continue
        for position, (declared, size) in enumerate(zip(spec.shape, tensor.shape)):
            if declared == VARIABLE:
                sizes.setdefault(position, size)
    return sizes


def _show(sizes: dict[int, int]) -> str:
    return ", ".join(f"dimension {p}: {s}" for p, s in sorted(sizes.items())) or "none"


def _out_of_range(tensor: Tensor, spec: TensorSpec, slack: tuple[float, float] = (0.0, 0.0)) -> tuple[int, object] | None:
    """The first element outside the declared range (widened by ``slack`` ``(rtol, atol)`` for floats), as
    ``(flat index, value)``; None when all are inside."""
    if spec.minimum is None and spec.maximum is None:
        return None
    values = tensor.values
    if not isinstance(values, np.ndarray) or not values.size or values.dtype.kind not in "iuf":
        return None
    low = -np.inf if spec.minimum is None else spec.minimum
    high = np.inf if spec.maximum is None else spec.maximum
    if values.dtype.kind == "f":
        rtol, atol = slack
        low, high = low - atol - rtol * abs(low), high + atol + rtol * abs(high)
    as_float = values.astype(np.float64)
    outside = np.flatnonzero((as_float < low) | (as_float > high) | np.isnan(as_float))
    if not outside.size:
        return None
    index = int(outside[0])
    return index, values[index].item()
