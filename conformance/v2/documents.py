"""Reading V2 documents (requests and responses) strictly: JSON, schema, then the semantic checks.

The schema sees only the envelope (each tensor's ``data`` is swapped for an empty list while it validates);
numpy sees the data arrays (:mod:`conformance.v2.tensors`). Every fault becomes a :class:`Finding`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conformance.contract.findings import Finding, join
from conformance.v2 import jsonschemas
from conformance.v2.strictjson import JSONProblem, loads
from conformance.v2.tensors import DataProblem, decode

REQUEST = "request"
RESPONSE = "response"
ERROR = "error"

#: Files above this size are refused unread (a predictor that writes gigabytes is itself a finding).
DEFAULT_MAX_BYTES = 1 << 30


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
    kind: str
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


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a whole regular file; raise ``OSError`` with a one-line reason for anything else."""
    check_entry_size(path, max_bytes)
    with open(path, "rb") as handle:
        return handle.read()


def check_entry_size(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Raise ``OSError`` with a one-line reason unless ``path`` is a regular file of at most ``max_bytes``."""
    if path.is_symlink():
        raise OSError("is a symbolic link, not a regular file")
    if path.is_dir():
        raise OSError("is a folder, not a file")
    if not path.is_file():
        raise OSError("is not a regular file" if path.exists() else "does not exist")
    size = path.stat().st_size
    if size > max_bytes:
        raise OSError(f"is {size} bytes, over the limit of {max_bytes} bytes")


def load(path: str | os.PathLike, kind: str, max_bytes: int = DEFAULT_MAX_BYTES, label: str | None = None) -> Document:
    """Read and check the file at ``path`` as a ``kind`` document (``request`` or ``response``; a response
    holding ``error`` is checked as an error response). Never raises for bad content."""
    path = Path(path)
    name = label or str(path)
    try:
        check_entry_size(path, max_bytes)
        from conformance.v2 import (
            fastpath,  # imported here: fastpath builds on this module
        )

        fast = fastpath.load(path, kind, name)
        if fast is not None:
            return fast
        raw = read_bytes(path, max_bytes)
    except OSError as exc:
        reason = exc.strerror if exc.strerror else str(exc)
        return Document(name, kind, findings=[Finding("F-JSON", name, "", f"cannot read: {reason}")])
    return parse(raw, kind, name)


def parse(raw: bytes, kind: str, file: str) -> Document:
    """Check ``raw`` bytes as a ``kind`` document (see :func:`load`)."""
    try:
        body = loads(raw)
    except JSONProblem as problem:
        return Document(file, kind, findings=[Finding("F-JSON", file, "", str(problem))])
    return inspect(body, kind, file, may_hold_booleans=(b"true" in raw or b"false" in raw))


def inspect(body: object, kind: str, file: str, may_hold_booleans: bool = True) -> Document:
    """Check an already parsed ``body`` as a ``kind`` document."""
    if not isinstance(body, dict):
        found = "an array" if isinstance(body, list) else type(body).__name__
        return Document(file, kind, body, findings=[Finding("F-JSON", file, "", f"top level is {found}, not an object")])
    kind = kind_of(body, kind)
    doc = Document(file, kind, body)
    tensor_key = TENSOR_KEY[kind]
    envelope, data = split_envelope(body, tensor_key)
    doc.findings += envelope_findings(envelope, kind, file)
    if kind == ERROR:
        return doc
    bad_tensors = {int(f.pointer.split("/")[2]) for f in doc.findings if f.pointer.startswith(f"/{tensor_key}/")}
    tensors = envelope.get(tensor_key)
    for index, tensor in enumerate(tensors if isinstance(tensors, list) else []):
        if index in bad_tensors or index not in data:
            continue
        _decode_tensor(doc, tensor, data[index], join("", tensor_key, index), may_hold_booleans)
    if kind == REQUEST and isinstance(body.get("outputs"), list) and not doc.findings:
        _check_requested_outputs(doc, body)
    return doc


TENSOR_KEY = {REQUEST: "inputs", RESPONSE: "outputs", ERROR: "outputs"}
_SCHEMA = {REQUEST: jsonschemas.REQUEST, RESPONSE: jsonschemas.RESPONSE, ERROR: jsonschemas.ERROR}


def kind_of(body: dict, kind: str) -> str:
    """A response that holds ``error`` is an error response; otherwise ``kind`` stands."""
    return ERROR if kind == RESPONSE and "error" in body else kind


def envelope_findings(envelope: dict, kind: str, file: str) -> list[Finding]:
    """Schema findings for the envelope (tensors with their data taken out) and repeated tensor names."""
    findings = [Finding("F-SCHEMA", file, where, message) for where, message in jsonschemas.errors(_SCHEMA[kind], envelope)]
    tensors = envelope.get(TENSOR_KEY[kind])
    if kind != ERROR and isinstance(tensors, list):
        findings += _name_findings(tensors, TENSOR_KEY[kind], file)
    return findings


def split_envelope(body: dict, tensor_key: str) -> tuple[dict, dict[int, list]]:
    """A shallow copy of ``body`` whose tensors carry ``data: []``, and the data lists taken out, by index."""
    tensors = body.get(tensor_key)
    if not isinstance(tensors, list):
        return body, {}
    data: dict[int, list] = {}
    light = []
    for index, tensor in enumerate(tensors):
        if isinstance(tensor, dict) and isinstance(tensor.get("data"), list):
            data[index] = tensor["data"]
            tensor = {**tensor, "data": []}
        light.append(tensor)
    return {**body, tensor_key: light}, data


def _name_findings(tensors: list, tensor_key: str, file: str) -> list[Finding]:
    findings, seen = [], set()
    for index, tensor in enumerate(tensors):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if isinstance(name, str):
            if name in seen:
                findings.append(Finding("F-SCHEMA", file, join("", tensor_key, index, "name"), f"tensor name {name!r} repeats"))
            seen.add(name)
    return findings


def _decode_tensor(doc: Document, tensor: dict, data: list, where: str, may_hold_booleans: bool) -> None:
    try:
        decoded = decode(data, tensor["shape"], tensor["datatype"], may_hold_booleans)
    except DataProblem as problem:
        doc.findings.append(Finding(problem.requirement, doc.file, join(where, "data", *problem.path), problem.message))
        return
    doc.tensors.append(
        Tensor(tensor["name"], tensor["datatype"], list(tensor["shape"]), decoded.values, decoded.nested, where)
    )


def _check_requested_outputs(doc: Document, body: dict) -> None:
    doc.findings += requested_output_findings(body, doc.file)


def requested_output_findings(body: dict, file: str) -> list[Finding]:
    """A request's ``outputs`` must not name the same tensor twice (run after the schema passed)."""
    findings, seen = [], set()
    for index, wanted in enumerate(body.get("outputs") or []):
        name = wanted["name"]
        if name in seen:
            findings.append(Finding("F-SCHEMA", file, join("", "outputs", index, "name"), f"output {name!r} is requested twice"))
        seen.add(name)
    return findings


def response_id_findings(response: Document, request_id: str | None) -> list[Finding]:
    """``F-ID``: a response to a request with an ``id`` carries the same ``id``; any id it carries must match.

    An error response may leave the id out (the protocol's error object is just ``{"error": ...}``)."""
    if not isinstance(response.body, dict):
        return []
    has = "id" in response.body
    actual = response.body.get("id")
    if request_id is not None and not has and response.kind != ERROR:
        return [Finding("F-ID", response.file, "/id", f"missing; the request's id is {request_id!r}")]
    if has and actual != request_id:
        expected = "no id" if request_id is None else repr(request_id)
        return [Finding("F-ID", response.file, "/id", f"is {actual!r}; the request has {expected}")]
    return []
