"""The oracle: the exact response the multiplier model owes a request (the M-* requirements).

Only the kit computes expected responses this way; golden fixtures come from here, never from a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from conformance.odahu.model import Model, OtherModel
from conformance.oracle.arithmetic import multiply
from conformance.v2.datatypes import DATATYPES
from conformance.v2.documents import REQUEST, Document, Tensor, inspect


@dataclass
class Expected:
    """What a correct predictor answers. At most one of ``outputs`` (success) or ``error`` (an error response)
    is set; ``requirement`` names the requirement that makes it an error. Neither is set when the answer is not
    known (a model other than the multiplier, a request without a recorded or reference answer): then only the
    format and the declared signature can be checked."""

    request_id: str | None
    model: Model | OtherModel
    outputs: list[Tensor] | None = None
    error: str | None = None
    requirement: str | None = None

    @property
    def is_error(self) -> bool:
        return self.error is not None

    @property
    def is_known(self) -> bool:
        return self.error is not None or self.outputs is not None

    def document(self) -> dict:
        """The expected response as a JSON-ready dict (data flat, as Python numbers)."""
        if self.is_error:
            body: dict = {"error": self.error}
            if self.request_id is not None:
                body["id"] = self.request_id
            return body
        body = {"model_name": self.model.name, "model_version": self.model.version}
        if self.request_id is not None:
            body["id"] = self.request_id
        body["outputs"] = [
            {"name": t.name, "datatype": t.datatype, "shape": list(t.shape), "data": json_values(t)}
            for t in self.outputs or []
        ]
        return body


def json_values(tensor: Tensor) -> list:
    """The tensor's values as a flat JSON-ready list; floats as the shortest decimal that rounds back."""
    values = tensor.values
    if isinstance(values, list):
        return list(values)
    if values.dtype.kind == "f" and values.dtype.itemsize < 8:
        # The shortest decimal that rounds back to the same FP16/FP32 value ("0.2", not "0.20000000298023224").
        return [float(text) for text in values.astype(str).tolist()]
    return values.tolist()


def expect(request: Document | dict, model: Model, file: str = "request.json") -> Expected:
    """The expected answer of the multiplier ``model`` to ``request`` (a checked :class:`Document` or a dict)."""
    if not isinstance(request, Document):
        request = inspect(request, REQUEST, file)
    request_id = request.id
    if request.findings:
        return Expected(request_id, model, error=invalid_request(request), requirement="P-EVERY")
    for tensor in request.tensors:
        if DATATYPES[tensor.datatype].kind in ("bool", "bytes"):
            return Expected(
                request_id, model, error=f"input {tensor.name!r}: {tensor.datatype} is not supported by the multiplier",
                requirement="M-UNSUPPORTED",
            )
    selected = _select(request)
    if isinstance(selected, str):
        return Expected(request_id, model, error=selected, requirement="M-SELECT")
    outputs: list[Tensor] = []
    for tensor in selected:
        # numeric (BOOL and BYTES were refused above): the values are a numpy array
        product = multiply(cast(np.ndarray, tensor.values), tensor.datatype, model.multiplier)
        if product.dtype.kind == "f" and not np.isfinite(product).all():
            return Expected(
                request_id, model, error=f"output {tensor.name!r}: {tensor.datatype} product overflows to infinity",
                requirement="M-FINITE",
            )
        outputs.append(Tensor(tensor.name, tensor.datatype, tensor.shape, product, False, f"/outputs/{len(outputs)}"))
    return Expected(request_id, model, outputs=outputs)


def invalid_request(request: Document) -> str:
    """The reason an error response is owed to a request that is not valid V2: its first finding."""
    first = request.findings[0]
    where = f" {first.pointer}" if first.pointer else ""
    return f"invalid request ({first.requirement}{where}): {first.message}"


def _select(request: Document) -> list[Tensor] | str:
    """The input tensors the response returns, in order; or the reason the selection is an error."""
    wanted = cast(dict, request.body).get("outputs") or []  # a request without findings is an object
    if not wanted:
        return list(request.tensors)
    by_name = {t.name: t for t in request.tensors}
    chosen = []
    for entry in wanted:
        if entry["name"] not in by_name:
            return f"requested output {entry['name']!r} is not an input tensor"
        chosen.append(by_name[entry["name"]])
    return chosen


def respond(request: Document | dict, model: Model, file: str = "request.json") -> dict:
    """The expected response document for ``request`` (shorthand for ``expect(...).document()``)."""
    return expect(request, model, file).document()
