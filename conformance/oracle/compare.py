"""The comparator: does a candidate's response equal what the oracle expects, under the contract's rules?

Layout is free (flat or nested), values are compared after casting to the declared datatype, floats bit for bit
(so ``-0.0`` is not ``0.0``), names, order, shapes, datatypes, ids and the model's name and version must match.
Every difference is a :class:`Finding` with its requirement ID; :func:`explain` renders a readable diff (deepdiff)
for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from deepdiff import DeepDiff

from conformance.contract.findings import Finding, join
from conformance.contract.requirements import SHOULD
from conformance.oracle.expect import Expected, json_values
from conformance.text import MESSAGE_QUOTE, cut, quote
from conformance.v2.datatypes import DATATYPES, unsigned_view
from conformance.v2.documents import ERROR, Document, Tensor, response_id_findings

#: How many differing elements a value finding names.
SHOWN_DIFFERENCES = 3


#: The requirements a response to one request can show (the run-level ones are the judge's).
RESPONSE_IDS = ("F-JSON", "F-SCHEMA", "F-ID", "F-MODEL", "F-COUNT", "F-TYPED", "M-EVERY", "M-SELECT", "M-SHAPE",
                "M-DTYPE", "M-VALUE", "M-LAYOUT", "M-EMPTY", "M-FINITE", "M-UNSUPPORTED")


@dataclass
class Comparison:
    """What comparing one response showed: its ``findings``, the requirements a check of which ran on this
    response (``checked``: also those that found nothing), and the requirements this response could not show,
    with why (``blocked``: e.g. a tensor too malformed to compare)."""

    findings: list[Finding] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    blocked: dict[str, str] = field(default_factory=dict)

    def ran(self, requirement: str, findings: Sequence[Finding] = ()) -> None:
        """A check of ``requirement`` ran on evidence and found ``findings``."""
        self.checked.add(requirement)
        self.findings += findings

    def block(self, requirements: tuple[str, ...] | list[str], reason: str) -> None:
        for requirement in requirements:
            self.blocked.setdefault(requirement, reason)


def examine(actual: Document, expected: Expected, request: Document | None = None) -> Comparison:
    """Every way ``actual`` (a response read with :func:`conformance.v2.documents.load`) departs from ``expected``,
    checked as far as the evidence allows.

    A finding blocks only the checks that depend on it: a response that is not JSON shows nothing else; a
    missing ``model_name`` (F-SCHEMA) blocks F-MODEL but not the outputs' names, datatypes, shapes and values;
    a malformed output tensor blocks that tensor's own checks, not its neighbours'. ``request`` (when given)
    lets a refusal be blamed on the requirement that explains it (:func:`blame_refusal`) and tells which
    requests show M-LAYOUT and M-EMPTY.
    """
    result = Comparison()
    file = actual.file
    own = format_findings(actual, expected, result, RESPONSE_IDS)
    if own is None:
        return result
    body = actual.body if isinstance(actual.body, dict) else {}
    if expected.is_error:
        error_owed(actual, expected, result)
        return result
    if actual.kind == ERROR:
        message = body.get("error")
        blamed = blame_refusal(request, expected, message)
        result.ran(blamed, [Finding(blamed, file, "/error", f"error response {quote(message, MESSAGE_QUOTE)} to a request the model serves")])
        return result
    if actual.tensors or own["F-COUNT"] or own["F-TYPED"]:
        result.ran("F-COUNT", own["F-COUNT"])
        result.ran("F-TYPED", own["F-TYPED"])
    model_findings(actual, expected, result)
    _outputs_findings(actual, expected, request, result)
    return result


def format_findings(actual: Document, expected: Expected, result: Comparison,
                    response_ids: tuple[str, ...]) -> dict[str, list[Finding]] | None:
    """The format checks every response gets first: F-JSON (a response that is not strict JSON blocks every
    other of ``response_ids`` and gives None), F-SCHEMA, F-ID (where the request or the response has an id).
    Returns the response's own findings by requirement (F-JSON, F-SCHEMA, F-COUNT, F-TYPED) for the caller."""
    own = {requirement: [f for f in actual.findings if f.requirement == requirement]
           for requirement in ("F-JSON", "F-SCHEMA", "F-COUNT", "F-TYPED")}
    result.ran("F-JSON", own["F-JSON"])
    if own["F-JSON"]:
        result.block([r for r in response_ids if r != "F-JSON"], f"{actual.file} is not strict JSON (F-JSON)")
        return None
    result.ran("F-SCHEMA", own["F-SCHEMA"])
    body = actual.body if isinstance(actual.body, dict) else {}
    if expected.request_id is not None or "id" in body:
        result.ran("F-ID", response_id_findings(actual, expected.request_id))
    return own


def error_owed(actual: Document, expected: Expected, result: Comparison) -> None:
    """An error response is what ``expected`` says is owed: a check of the requirement that makes it an error,
    which finds outputs where the error belongs."""
    assert expected.requirement is not None  # an expected error always names its requirement
    result.ran(expected.requirement, [] if actual.kind == ERROR else [
        Finding(expected.requirement, actual.file, "", f"expected an error response ({expected.error}), got outputs")])


def compare(actual: Document, expected: Expected, request: Document | None = None) -> list[Finding]:
    """The findings of :func:`examine` alone."""
    return examine(actual, expected, request).findings


def blame_refusal(request: Document | None, expected: Expected, message: object = None) -> str:
    """The requirement that explains an error response to a request the model serves: M-EMPTY (a scalar or a
    zero-size tensor), M-FINITE (the candidate believes a product overflows: its message says so, or a
    product lies within a factor 4 of the datatype's largest value), M-LAYOUT (nested data), M-SELECT (a
    selection), else M-VALUE (no values where values were owed). A request both nested and empty is blamed
    on M-LAYOUT when the candidate's message speaks of nesting or layout, else on M-EMPTY."""
    tensors = request.tensors if request is not None else []
    text = str(message or "").lower()
    empty = any(not t.shape or 0 in t.shape for t in tensors)
    nested = any(t.nested for t in tensors)
    if empty and nested:  # both could explain it: the candidate's own words decide, else the rarer feature
        if any(word in text for word in ("nest", "layout", "flat")):
            return "M-LAYOUT"
        return "M-EMPTY"
    if empty:
        return "M-EMPTY"
    if "overflow" in text or "infinit" in text or "finite" in text or _near_overflow(expected):
        return "M-FINITE"
    if nested:
        return "M-LAYOUT"
    if request is not None and isinstance(request.body, dict) and request.body.get("outputs"):
        return "M-SELECT"
    return "M-VALUE"


def _near_overflow(expected: Expected) -> bool:
    for tensor in expected.outputs or []:
        values = tensor.values
        if isinstance(values, np.ndarray) and values.dtype.kind == "f" and values.size:
            if float(np.max(np.abs(values.astype(np.float64)))) > float(np.finfo(values.dtype).max) / 4:
                return True
    return False


def model_findings(actual: Document, expected: Expected, result: Comparison) -> None:
    """F-MODEL: ``model_name`` is the model's name (MUST) and ``model_version`` its version (SHOULD); not
    checked when ``model_name`` is missing, nor either one where it is not a string (F-SCHEMA's findings)."""
    body = cast(dict, actual.body)  # strict JSON by now (F-JSON passed): an object
    if "model_name" not in body:
        result.block(["F-MODEL"], f"{actual.file} has no model_name (F-SCHEMA)")
        return
    findings = []
    # a name or version that is not a string is F-SCHEMA's finding (one root cause, one finding): not compared
    if isinstance(body["model_name"], str) and body["model_name"] != expected.model.name:
        findings.append(Finding("F-MODEL", actual.file, "/model_name", f"is {quote(body.get('model_name'))}, the model's name is {expected.model.name!r}"))
    version_typed = "model_version" not in body or isinstance(body["model_version"], str)
    if version_typed and body.get("model_version") != expected.model.version:
        shown = "missing" if "model_version" not in body else f"is {quote(body['model_version'])}"
        findings.append(Finding("F-MODEL", actual.file, "/model_version", f"{shown}, the model's version is {expected.model.version!r}", level=SHOULD))
    result.ran("F-MODEL", findings)


def _outputs_findings(actual: Document, expected: Expected, request: Document | None, result: Comparison) -> None:
    file = actual.file
    raw_outputs = cast(dict, actual.body).get("outputs")  # strict JSON by now: an object
    if not isinstance(raw_outputs, list):
        result.block(["M-EVERY", "M-SELECT", "M-SHAPE", "M-DTYPE", "M-VALUE"], f"{file}: outputs is not a list (F-SCHEMA)")
        return
    selected = bool(request is not None and isinstance(request.body, dict) and request.body.get("outputs"))
    order_id = "M-SELECT" if selected else "M-EVERY"
    actual_names = [o.get("name") if isinstance(o, dict) else None for o in raw_outputs]
    expected_outputs = expected.outputs or []  # not an expected error: outputs are set
    expected_names = [t.name for t in expected_outputs]
    result.ran(order_id, [] if actual_names == expected_names else [
        Finding(order_id, file, "/outputs", f"output names {actual_names} differ from the expected {expected_names}")])
    decoded = {t.name: t for t in actual.tensors}
    compared: list[Tensor] = []
    for want in expected_outputs:
        got = decoded.get(want.name)
        if got is None:
            if want.name in actual_names:
                result.block(["M-DTYPE", "M-SHAPE", "M-VALUE"], f"{file}: output {want.name!r} is malformed")
            continue
        compared.append(want)
        _tensor_findings(file, got, want, result)
    inputs = {t.name: t for t in request.tensors} if request is not None else {}
    shown_inputs = [inputs[t.name] for t in compared if t.name in inputs]
    if any(t.nested for t in shown_inputs):
        result.ran("M-LAYOUT")
    if any(not t.shape or 0 in t.shape for t in shown_inputs):
        result.ran("M-EMPTY")


def _tensor_findings(file: str, got: Tensor, want: Tensor, result: Comparison) -> None:
    """Datatype, then shape, then values: a wrong datatype or shape blocks the tensor's later checks."""
    if got.datatype != want.datatype:
        result.ran("M-DTYPE", [Finding("M-DTYPE", file, join(got.pointer, "datatype"), f"is {got.datatype}, the input's is {want.datatype}")])
        return
    result.ran("M-DTYPE")
    if list(got.shape) != list(want.shape):
        result.ran("M-SHAPE", [Finding("M-SHAPE", file, join(got.pointer, "shape"), f"is {got.shape}, the input's is {want.shape}")])
        return
    result.ran("M-SHAPE")
    differing = differing_elements(got.values, want.values, got.datatype)
    if not differing.size:
        result.ran("M-VALUE")
        return
    shown = ", ".join(
        f"{_element_pointer(got, int(i))}: expected {_show(want.values[int(i)])}, got {_show(got.values[int(i)])}"
        for i in differing[:SHOWN_DIFFERENCES]
    )
    result.ran("M-VALUE", [Finding("M-VALUE", file, join(got.pointer, "data"), f"{differing.size} of {len(want.values)} elements differ: {shown}")])


def differing_elements(got: np.ndarray | list, want: np.ndarray | list, datatype: str) -> np.ndarray:
    """Flat indices where ``got`` and ``want`` (same length, both in ``datatype``) are not identical."""
    dt = DATATYPES[datatype]
    if dt.kind == "bytes":
        return np.array([i for i, (a, b) in enumerate(zip(got, want)) if a != b], dtype=np.intp)
    if dt.kind == "float":
        got_array, want_array = cast(np.ndarray, got), cast(np.ndarray, want)  # only BYTES values are lists
        got, want = got_array.view(unsigned_view(got_array.dtype)), want_array.view(unsigned_view(want_array.dtype))
    return np.flatnonzero(got != want)


def _element_pointer(tensor: Tensor, index: int) -> str:
    if tensor.nested and tensor.shape:
        return join(tensor.pointer, "data", *np.unravel_index(index, tensor.shape))
    return join(tensor.pointer, "data", index)


def _show(value: object) -> str:
    if isinstance(value, np.floating):
        return repr(float(value)) if value.dtype == np.float64 else str(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


def explain(actual: Document, expected: Expected, limit: int = 2000) -> str:
    """A readable diff between the candidate's response and the expected one (deepdiff), for failure output."""
    want = _clipped(expected.document())
    got = actual.body if isinstance(actual.body, dict) else {"<not an object>": actual.body}
    if not expected.is_error and actual.kind != ERROR:
        got = {**got, "outputs": [_as_expected_layout(t) for t in actual.tensors] if actual.tensors else got.get("outputs")}
    got = cast(dict, _short_strings(_clipped(got)))  # a 50 MB model_name must not become a 50 MB diff
    text = DeepDiff(want, got, ignore_order=False, significant_digits=None, verbose_level=2,
                    exclude_paths=["root['error']"]).pretty()
    return text if len(text) <= limit else text[: limit - 4] + "\n..."


#: Elements of each output the readable diff shows (difflib's time grows with the square of a list's length; the
#: findings already name the differing elements of the whole tensor).
DIFF_ELEMENTS = 64


def _clipped(document: dict) -> dict:
    """``document`` with each output's ``data`` cut to its first :data:`DIFF_ELEMENTS` elements."""
    outputs = document.get("outputs")
    if not isinstance(outputs, list):
        return document
    clipped = []
    for output in outputs:
        data = output.get("data") if isinstance(output, dict) else None
        if isinstance(data, list) and len(data) > DIFF_ELEMENTS:
            output = {**output, "data": data[:DIFF_ELEMENTS] + [f"... {len(data) - DIFF_ELEMENTS} more elements"]}
        clipped.append(output)
    return {**document, "outputs": clipped}


def _short_strings(value: object, limit: int = 200) -> object:
    """``value`` with every string longer than ``limit`` cut, its full length said (for the readable diff)."""
    if isinstance(value, str):
        return cut(value, limit)
    if isinstance(value, dict):
        return {cut(key, limit) if isinstance(key, str) else key: _short_strings(item, limit)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_short_strings(item, limit) for item in value]
    return value


def _as_expected_layout(tensor: Tensor) -> dict:
    return {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape), "data": json_values(tensor)}
