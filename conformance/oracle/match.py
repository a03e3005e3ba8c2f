"""The comparator for a model other than the multiplier: the format (F-*), the declared signature (B-SIGNATURE)
and, where the answer is known, the expected answer within a tolerance (B-MATCH).

B-MATCH compares names (in order), datatypes and shapes exactly, integer, BOOL and BYTES elements exactly,
float elements within :class:`~conformance.oracle.sources.Tolerance`; an expected error must stay an error and
an expected answer must not become one. One root cause, one requirement: a response that breaks the declared
signature is B-SIGNATURE's, and B-MATCH is then not checked on it.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from conformance.contract.findings import Finding, join
from conformance.oracle.compare import (
    SHOWN_DIFFERENCES,
    Comparison,
    differing_elements,
    error_owed,
    format_findings,
    model_findings,
)
from conformance.oracle.expect import Expected
from conformance.oracle.signature import Signature, follows_inputs, signature_findings
from conformance.oracle.sources import Tolerance
from conformance.text import MESSAGE_QUOTE, quote
from conformance.v2.datatypes import DATATYPES
from conformance.v2.documents import ERROR, Document, Tensor

#: The requirements a response to one request can show, for a model other than the multiplier.
ANY_MODEL_RESPONSE_IDS = ("F-JSON", "F-SCHEMA", "F-ID", "F-MODEL", "F-COUNT", "F-TYPED", "B-SIGNATURE", "B-MATCH")


def examine_any(actual: Document, expected: Expected, request: Document, signature: Signature | None,
                tolerance: Tolerance) -> Comparison:
    """Every way ``actual`` departs from the contract for a model other than the multiplier, checked as far as
    the evidence allows (see the module's docstring)."""
    result = Comparison()
    file = actual.file
    own = format_findings(actual, expected, result, ANY_MODEL_RESPONSE_IDS)
    if own is None:
        return result
    body = actual.body if isinstance(actual.body, dict) else {}
    if actual.tensors or own["F-COUNT"] or own["F-TYPED"]:
        result.ran("F-COUNT", own["F-COUNT"])
        result.ran("F-TYPED", own["F-TYPED"])
    if actual.kind != ERROR:
        model_findings(actual, expected, result)
    if expected.is_error and expected.requirement != "B-MATCH":  # an unservable request (P-EVERY)
        error_owed(actual, expected, result)
        return result
    off_signature = False
    if signature is not None and follows_inputs(request, signature):
        findings, checked = signature_findings(actual, request, signature, expected.is_error, tolerance)
        if checked:
            result.ran("B-SIGNATURE", findings)
            off_signature = bool(findings)
        else:
            result.block(["B-SIGNATURE"], f"{file}: outputs are malformed (F-SCHEMA)")
    if not expected.is_known:
        return result
    if off_signature:
        result.block(["B-MATCH"], f"{file} does not follow the declared signature (B-SIGNATURE)")
        return result
    if expected.is_error:  # the recorded or reference answer is an error (B-MATCH)
        error_owed(actual, expected, result)
        return result
    if actual.kind == ERROR:
        result.ran("B-MATCH", [Finding("B-MATCH", file, "/error", f"error response {quote(body.get('error'), MESSAGE_QUOTE)} where the "
                                                                  f"expected answer has outputs")])
        return result
    _outputs_findings(actual, expected, tolerance, result)
    return result


def _outputs_findings(actual: Document, expected: Expected, tolerance: Tolerance, result: Comparison) -> None:
    file = actual.file
    raw = cast(dict, actual.body).get("outputs")
    if not isinstance(raw, list):
        result.block(["B-MATCH"], f"{file}: outputs is not a list (F-SCHEMA)")
        return
    names = [o.get("name") if isinstance(o, dict) else None for o in raw]
    wanted = [t.name for t in expected.outputs or []]
    findings = [] if names == wanted else [
        Finding("B-MATCH", file, "/outputs", f"output names {names} differ from the expected {wanted}")]
    decoded = {t.name: t for t in actual.tensors}
    compared = False
    for want in expected.outputs or []:
        got = decoded.get(want.name)
        if got is None:
            continue
        compared = True
        finding = tensor_difference(file, got, want, tolerance)
        if finding is not None:
            findings.append(finding)
    if compared or findings:
        result.ran("B-MATCH", findings)
    else:
        result.block(["B-MATCH"], f"{file}: no output could be compared (malformed outputs)")


def tensor_difference(file: str, got: Tensor, want: Tensor, tolerance: Tolerance | None) -> Finding | None:
    """The B-MATCH finding for ``got`` against ``want`` (datatype, shape, then elements: floats within
    ``tolerance``, everything else exactly; ``tolerance`` None: floats bit for bit too); None when they match."""
    if got.datatype != want.datatype:
        return Finding("B-MATCH", file, join(got.pointer, "datatype"), f"is {got.datatype}, expected {want.datatype}")
    if list(got.shape) != list(want.shape):
        return Finding("B-MATCH", file, join(got.pointer, "shape"), f"is {list(got.shape)}, expected {list(want.shape)}")
    if tolerance is not None:
        tolerance = tolerance.for_output(got.name)
    differing = _differing(got, want, tolerance)
    if not differing.size:
        return None
    shown = ", ".join(f"[{int(i)}]: expected {_show(want.values[int(i)])}, got {_show(got.values[int(i)])}"
                      for i in differing[:SHOWN_DIFFERENCES])
    within = f" (beyond {tolerance})" if tolerance is not None and DATATYPES[got.datatype].kind == "float" else ""
    return Finding("B-MATCH", file, join(got.pointer, "data"),
                   f"{differing.size} of {len(want.values)} elements differ{within}: {shown}")


def _differing(got: Tensor, want: Tensor, tolerance: Tolerance | None) -> np.ndarray:
    if DATATYPES[got.datatype].kind == "float" and tolerance is not None:
        a = cast(np.ndarray, got.values).astype(np.float64)
        b = cast(np.ndarray, want.values).astype(np.float64)
        return np.flatnonzero(~np.isclose(a, b, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=False))
    return differing_elements(got.values, want.values, got.datatype)


def _show(value: object) -> str:
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


def response_difference(first: Document, second: Document) -> str | None:
    """How two responses to the same request differ (kind, output names, datatypes, shapes, elements bit for
    bit), or None when they are the same answer (layout, key order, float spelling and error messages aside)."""
    if (first.kind == ERROR) != (second.kind == ERROR):
        return f"an error response once ({(first if first.kind == ERROR else second).body!r:.80}), outputs the other time"
    if first.kind == ERROR:
        return None
    a, b = first.tensors, second.tensors
    if [t.name for t in a] != [t.name for t in b]:
        return f"output names {[t.name for t in a]} once, {[t.name for t in b]} the other time"
    for x, y in zip(a, b):
        if x.datatype != y.datatype or list(x.shape) != list(y.shape):
            return f"output {x.name!r}: {x.datatype} {list(x.shape)} once, {y.datatype} {list(y.shape)} the other time"
        differing = differing_elements(x.values, y.values, x.datatype)
        if differing.size:
            i = int(differing[0])
            return (f"output {x.name!r}: {differing.size} of {len(x.values)} elements differ, first [{i}]: "
                    f"{_show(x.values[i])} once, {_show(y.values[i])} the other time")
    return None
