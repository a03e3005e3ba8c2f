"""Reading V2 documents (requests and responses) strictly: JSON, schema, then the semantic checks.

The schema sees only the envelope (each tensor's ``data`` is swapped for an empty list while it validates);
numpy sees the data arrays (:mod:`conformance.v2.tensors`). Every fault becomes a :class:`Finding`.
"""

from __future__ import annotations

import os
from pathlib import Path

from conformance.contract.findings import Finding, join
from conformance.contract.requirements import SHOULD
from conformance.v2 import fastpath
from conformance.v2.envelope import (  # re-exported: the public names of this module
    ERROR,
    REQUEST,
    RESPONSE,
    TENSOR_KEY,
    Document,
    DocumentKind,
    Tensor,
    envelope_findings,
    kind_of,
    requested_output_findings,
)
from conformance.v2.strictjson import JSONProblem, loads
from conformance.text import quote
from conformance.v2.tensors import DataProblem, decode

__all__ = [
    "DEFAULT_MAX_BYTES", "ERROR", "REQUEST", "RESPONSE", "TENSOR_KEY", "Document", "DocumentKind", "Tensor",
    "check_entry_size", "envelope_findings", "inspect", "kind_of", "load", "parse", "read_bytes",
    "requested_output_findings", "response_id_findings", "split_envelope",
]

#: Files above this size are refused unread (a predictor that writes gigabytes is itself a finding).
DEFAULT_MAX_BYTES = 1 << 30


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


def load(path: str | os.PathLike, kind: DocumentKind, max_bytes: int = DEFAULT_MAX_BYTES, label: str | None = None) -> Document:
    """Read and check the file at ``path`` as a ``kind`` document (``request`` or ``response``; a response
    holding ``error`` is checked as an error response). Never raises for bad content."""
    path = Path(path)
    name = label or str(path)
    try:
        check_entry_size(path, max_bytes)
        fast = fastpath.load(path, kind, name)
        if fast is not None:
            return fast
        held = [read_bytes(path, max_bytes)]
    except OSError as exc:
        reason = exc.strerror if exc.strerror else str(exc)
        return Document(name, kind, findings=[Finding("F-JSON", name, "", f"cannot read: {reason}")])
    return _parse_held(held, kind, name)


def parse(raw: bytes, kind: DocumentKind, file: str) -> Document:
    """Check ``raw`` bytes as a ``kind`` document (see :func:`load`)."""
    return _parse_held([raw], kind, file)


def _parse_held(held: list[bytes], kind: DocumentKind, file: str) -> Document:
    """:func:`parse` of ``held[0]``, which it takes out of ``held``: the bytes are freed once parsed (when the
    caller holds no other reference), so the file and its parsed tensors are not in memory together."""
    raw = held.pop()
    try:
        body = loads(raw)
    except JSONProblem as problem:
        return Document(file, kind, findings=[Finding("F-JSON", file, problem.pointer, str(problem))])
    may_hold_booleans = b"true" in raw or b"false" in raw
    del raw
    try:
        return inspect(body, kind, file, may_hold_booleans=may_hold_booleans)
    except RecursionError:  # a backstop: loads() already refuses nesting deeper than the checks can follow
        return Document(file, kind, body, findings=[Finding("F-JSON", file, "", "nested too deeply for the kit to check")])


def inspect(body: object, kind: DocumentKind, file: str, may_hold_booleans: bool = True) -> Document:
    """Check an already parsed ``body`` as a ``kind`` document."""
    if not isinstance(body, dict):
        found = "an array" if isinstance(body, list) else (
            "a number" if isinstance(body, (int, float)) and not isinstance(body, bool) else type(body).__name__)
        return Document(file, kind, body, findings=[Finding("F-JSON", file, "", f"top level is {found}, not an object")])
    kind = kind_of(body, kind)
    doc = Document(file, kind, body)
    tensor_key = TENSOR_KEY[kind]
    envelope, data = split_envelope(body, tensor_key)
    doc.findings += envelope_findings(envelope, kind, file)
    if kind == ERROR:
        return doc
    # a tensor whose name, shape, datatype or data is malformed is not decoded; one whose parameters alone are
    # (KServe writes "parameters": null) still is: its values are checked, the parameters are F-SCHEMA's finding
    bad_tensors = {int(f.pointer.split("/")[2]) for f in doc.findings if f.pointer.startswith(f"/{tensor_key}/")
                   and f.pointer.split("/")[3:4] != ["parameters"]}
    tensors = envelope.get(tensor_key)
    for index, tensor in enumerate(tensors if isinstance(tensors, list) else []):
        if index in bad_tensors or index not in data:
            continue
        _decode_tensor(doc, tensor, data[index], join("", tensor_key, index), may_hold_booleans)
    if kind == REQUEST and isinstance(body.get("outputs"), list) and not doc.findings:
        _check_requested_outputs(doc, body)
    return doc


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


def response_id_findings(response: Document, request_id: str | None) -> list[Finding]:
    """``F-ID``: a response to a request with an ``id`` carries the same ``id`` (MUST); a response to a request
    without one carries none (SHOULD: the protocol's response id is the one "given in the request, if any"; a
    server may make one up, as MLServer does).

    An error response may leave the id out (the protocol's error object is just ``{"error": ...}``)."""
    if not isinstance(response.body, dict):
        return []
    has = "id" in response.body
    actual = response.body.get("id")
    if request_id is not None and not has and response.kind != ERROR:
        return [Finding("F-ID", response.file, "/id", f"missing; the request's id is {quote(request_id)}")]
    if has and request_id is None:  # the protocol's response id is "given in the request, if any"
        return [Finding("F-ID", response.file, "/id", f"is {quote(actual)}; the request has no id", level=SHOULD)]
    if has and actual != request_id:
        return [Finding("F-ID", response.file, "/id", f"is {quote(actual)}; the request has {quote(request_id)}")]
    return []
