"""The comparator: does a candidate's response equal what the oracle expects, under the contract's rules?

Layout is free (flat or nested), values are compared after casting to the declared datatype, floats bit for bit
(so ``-0.0`` is not ``0.0``), names, order, shapes, datatypes, ids and the model's name and version must match.
Every difference is a :class:`Finding` with its requirement ID; :func:`explain` renders a readable diff (deepdiff)
for people.
"""

from __future__ import annotations

import numpy as np
from deepdiff import DeepDiff

from conformance.contract.findings import Finding, join
from conformance.contract.requirements import SHOULD
from conformance.oracle.expect import Expected, json_values
from conformance.v2.datatypes import DATATYPES, unsigned_view
from conformance.v2.documents import ERROR, Document, Tensor, response_id_findings

#: How many differing elements a value finding names.
SHOWN_DIFFERENCES = 3


def compare(actual: Document, expected: Expected, request: Document | None = None) -> list[Finding]:
    """Every way ``actual`` (a response read with :func:`conformance.v2.documents.load`) departs from ``expected``.

    The response's own format findings come first; ``request`` (when given) lets a refused request be blamed on
    the most specific requirement (M-EMPTY for scalars and zero-size tensors, M-LAYOUT for nested data).
    """
    findings = list(actual.findings)
    if any(f.requirement in ("F-JSON",) for f in findings):
        return findings
    findings += response_id_findings(actual, expected.request_id)
    if expected.is_error:
        if actual.kind != ERROR:
            findings.append(Finding(expected.requirement, actual.file, "", f"expected an error response ({expected.error}), got outputs"))
        return findings
    if actual.kind == ERROR:
        message = actual.body.get("error") if isinstance(actual.body, dict) else None
        findings.append(Finding(_blame_refusal(request), actual.file, "/error", f"error response {message!r} to a request the model serves"))
        return findings
    if any(f.requirement == "F-SCHEMA" and f.pointer in ("", "/outputs") for f in findings):
        return findings
    findings += _model_findings(actual, expected)
    findings += _outputs_findings(actual, expected, request)
    return findings


def _blame_refusal(request: Document | None) -> str:
    if request is not None:
        if any(0 in t.shape or not t.shape for t in request.tensors):
            return "M-EMPTY"
        if any(t.nested for t in request.tensors):
            return "M-LAYOUT"
    return "M-EVERY"


def _model_findings(actual: Document, expected: Expected) -> list[Finding]:
    body = actual.body
    findings = []
    if body.get("model_name") != expected.model.name:
        findings.append(Finding("F-MODEL", actual.file, "/model_name", f"is {body.get('model_name')!r}, the model's name is {expected.model.name!r}"))
    if body.get("model_version") != expected.model.version:
        shown = "missing" if "model_version" not in body else f"is {body['model_version']!r}"
        findings.append(Finding("F-MODEL", actual.file, "/model_version", f"{shown}, the model's version is {expected.model.version!r}", level=SHOULD))
    return findings


def _outputs_findings(actual: Document, expected: Expected, request: Document | None) -> list[Finding]:
    selected = bool(request is not None and isinstance(request.body, dict) and request.body.get("outputs"))
    order_id = "M-SELECT" if selected else "M-EVERY"
    raw_outputs = actual.body.get("outputs", [])
    actual_names = [o.get("name") if isinstance(o, dict) else None for o in raw_outputs]
    expected_names = [t.name for t in expected.outputs]
    findings = []
    if actual_names != expected_names:
        findings.append(Finding(order_id, actual.file, "/outputs", f"output names {actual_names} differ from the expected {expected_names}"))
    decoded = {t.name: t for t in actual.tensors}
    for want in expected.outputs:
        got = decoded.get(want.name)
        if got is not None:
            findings += _tensor_findings(actual.file, got, want)
    return findings


def _tensor_findings(file: str, got: Tensor, want: Tensor) -> list[Finding]:
    if got.datatype != want.datatype:
        return [Finding("M-DTYPE", file, join(got.pointer, "datatype"), f"is {got.datatype}, the input's is {want.datatype}")]
    if list(got.shape) != list(want.shape):
        return [Finding("M-SHAPE", file, join(got.pointer, "shape"), f"is {got.shape}, the input's is {want.shape}")]
    differing = differing_elements(got.values, want.values, got.datatype)
    if not differing.size:
        return []
    shown = ", ".join(
        f"{_element_pointer(got, int(i))}: expected {_show(want.values[int(i)])}, got {_show(got.values[int(i)])}"
        for i in differing[:SHOWN_DIFFERENCES]
    )
    return [Finding("M-VALUE", file, join(got.pointer, "data"), f"{differing.size} of {len(want.values)} elements differ: {shown}")]


def differing_elements(got: np.ndarray | list, want: np.ndarray | list, datatype: str) -> np.ndarray:
    """Flat indices where ``got`` and ``want`` (same length, both in ``datatype``) are not identical."""
    dt = DATATYPES[datatype]
    if dt.kind == "bytes":
        return np.array([i for i, (a, b) in enumerate(zip(got, want)) if a != b], dtype=np.intp)
    if dt.kind == "float":
        got, want = got.view(unsigned_view(got.dtype)), want.view(unsigned_view(want.dtype))
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
    want = expected.document()
    got = actual.body if isinstance(actual.body, dict) else {"<not an object>": actual.body}
    if not expected.is_error and actual.kind != ERROR:
        got = {**got, "outputs": [_as_expected_layout(t) for t in actual.tensors] if actual.tensors else got.get("outputs")}
    text = DeepDiff(want, got, ignore_order=False, significant_digits=None, verbose_level=2,
                    exclude_paths=["root['error']"]).pretty()
    return text if len(text) <= limit else text[: limit - 4] + "\n..."


def _as_expected_layout(tensor: Tensor) -> dict:
    return {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape), "data": json_values(tensor)}
