"""The shared part of reading a V2 document: its kinds, the :class:`Document` and :class:`Tensor` records, and
the envelope checks (schema and names, everything but tensor data).

Both readers build on it: :mod:`conformance.v2.documents` (the precise path) and :mod:`conformance.v2.fastpath`
(the fast path for large files), so neither imports the other's internals and there is no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from conformance.contract.findings import Finding, join
from conformance.v2 import jsonschemas

#: What a document is: a request, a response, or an error response (a response that holds ``error``).
DocumentKind = Literal["request", "response", "error"]
REQUEST: Final = "request"
RESPONSE: Final = "response"
ERROR: Final = "error"


@dataclass
class Tensor:
    """A decoded tensor: ``values`` is flat row-major (numpy array, or list of str for BYTES)."""

    name: str
    datatype: str
    shape: list[int]
    values: np.ndarray | list
    nested: bool
    pointer: str


@dataclass
class Document:
    """A V2 document as the kit read it. ``kind`` is request, response or error; ``tensors`` are the decoded
    inputs (request) or outputs (response) that passed their checks; ``findings`` lists every fault.

    Read the tensor values from ``tensors``: in ``body`` the ``data`` lists may be empty (the fast path never
    turns them into Python objects)."""

    file: str
    kind: DocumentKind
    body: object = None
    tensors: list[Tensor] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def id(self) -> str | None:
        """The document's ``id`` when it is an object with a string id."""
        if isinstance(self.body, dict) and isinstance(self.body.get("id"), str):
            return self.body["id"]
        return None


TENSOR_KEY = {REQUEST: "inputs", RESPONSE: "outputs", ERROR: "outputs"}
_SCHEMA = {REQUEST: jsonschemas.REQUEST, RESPONSE: jsonschemas.RESPONSE, ERROR: jsonschemas.ERROR}


def kind_of(body: dict, kind: DocumentKind) -> DocumentKind:
    """A response that holds ``error`` is an error response; otherwise ``kind`` stands."""
    return ERROR if kind == RESPONSE and "error" in body else kind


def envelope_findings(envelope: dict, kind: DocumentKind, file: str) -> list[Finding]:
    """Schema findings for the envelope (tensors with their data taken out) and repeated tensor names."""
    findings = [Finding("F-SCHEMA", file, where, message) for where, message in jsonschemas.errors(_SCHEMA[kind], envelope)]
    tensors = envelope.get(TENSOR_KEY[kind])
    if kind != ERROR and isinstance(tensors, list):
        findings += _name_findings(tensors, TENSOR_KEY[kind], file)
    return findings


def _name_findings(tensors: list, tensor_key: str, file: str) -> list[Finding]:
    findings, seen = [], set()
    for index, tensor in enumerate(tensors):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if isinstance(name, str):
            if name in seen:
                findings.append(Finding("F-SCHEMA", file, join("", tensor_key, index, "name"), f"tensor name {name!r} repeats"))
            seen.add(name)
    return findings


def requested_output_findings(body: dict, file: str) -> list[Finding]:
    """A request's ``outputs`` must not name the same tensor twice (run after the schema passed)."""
    findings, seen = [], set()
    for index, wanted in enumerate(body.get("outputs") or []):
        name = wanted["name"]
        if name in seen:
            findings.append(Finding("F-SCHEMA", file, join("", "outputs", index, "name"), f"output {name!r} is requested twice"))
        seen.add(name)
    return findings
