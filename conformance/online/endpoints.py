"""The ``H-*`` checks of a V2 server's own routes: health, readiness, metadata, unknown models. Each is one named
function that asks the server through an :class:`~conformance.transport.http.HttpClient` and returns findings
(empty: checked, nothing found)."""

from __future__ import annotations

import json

from conformance.contract.findings import Finding
from conformance.contract.requirements import SHOULD
from conformance.oracle.signature import Signature
from conformance.run.online import model_path
from conformance.text import quote
from conformance.transport.http import Answer, HttpClient
from conformance.v2 import jsonschemas

SERVER_METADATA, MODEL_METADATA = "v2-server-metadata", "v2-model-metadata"
#: A model name and a version no server serves (a suffix unlikely to be a real one).
NOT_SERVED = "odahu-conformance-no-such-model"
NO_VERSION = "odahu-conformance-no-such-version"


def _where(method: str, path: str) -> str:
    return f"{method} {path}"


def _said(answer: Answer) -> str:
    """What an answer was, for a finding: ``status 503`` or the network error."""
    if answer.status is None:
        return answer.error or "no answer"
    body = answer.body.decode("utf-8", "replace")
    return f"status {answer.status}" + (f", body {quote(body, 100)}" if body.strip() else "")


def health(client: HttpClient, when: str) -> list[Finding]:
    """H-HEALTH: ``GET /v2/health/live`` and ``/v2/health/ready`` answer 200 (``when`` says at which point of
    the run: before it, after refusals, at its end). Their bodies are not judged: the spec shows ``{"live":
    bool}`` for both (a typo) and KServe's doc reads the status code alone."""
    findings = []
    for path in ("/v2/health/live", "/v2/health/ready"):
        answer = client.get(path)
        if answer.status != 200:
            findings.append(Finding("H-HEALTH", _where("GET", path), "", f"{when}: {_said(answer)}; a serving server "
                                                                         f"answers 200"))
    return findings


def model_ready(client: HttpClient, name: str, version: str | None) -> list[Finding]:
    """H-READY: ``GET /v2/models/NAME[/versions/V]/ready`` answers 200 for the model being served."""
    path = model_path(name, version) + "/ready"
    answer = client.get(path)
    if answer.status != 200:
        return [Finding("H-READY", _where("GET", path), "", f"{_said(answer)}; the served model's readiness is 200")]
    return []


def _json_object(answer: Answer, where: str, requirement: str) -> tuple[dict | None, list[Finding]]:
    if answer.status != 200:
        return None, [Finding(requirement, where, "", f"{_said(answer)}; expected 200 and the metadata")]
    try:
        body = json.loads(answer.body)
    except ValueError as exc:
        return None, [Finding(requirement, where, "", f"not JSON: {exc}")]
    if not isinstance(body, dict):
        return None, [Finding(requirement, where, "", "not a JSON object")]
    return body, []


def server_metadata(client: HttpClient) -> tuple[dict | None, list[Finding]]:
    """H-METADATA: ``GET /v2`` is 200 with ``{name, version, extensions: [string]}``; the body when valid."""
    where = _where("GET", "/v2")
    body, findings = _json_object(client.get("/v2"), where, "H-METADATA")
    if body is None:
        return None, findings
    found = [Finding("H-METADATA", where, pointer, message) for pointer, message in jsonschemas.errors(SERVER_METADATA, body)]
    return (None if found else body), found


def model_metadata(client: HttpClient, name: str, version: str | None, model_version: str | None,
                   signature: Signature | None) -> tuple[dict | None, list[Finding]]:
    """H-METADATA: ``GET /v2/models/NAME[/versions/V]`` is 200 with ``{name, versions?, platform, inputs?,
    outputs?}`` (tensors as ``{name, datatype, shape}``) and names the model. SHOULD: ``versions``, when given,
    holds the model's version; the declared inputs and outputs agree with the model's signature (same names and
    datatypes) where the model declares one."""
    path = model_path(name, version)
    where = _where("GET", path)
    body, findings = _json_object(client.get(path), where, "H-METADATA")
    if body is None:
        return None, findings
    findings = [Finding("H-METADATA", where, p, m) for p, m in jsonschemas.errors(MODEL_METADATA, body)]
    if findings:
        return None, findings
    if body["name"] != name:
        findings.append(Finding("H-METADATA", where, "/name", f"is {quote(body['name'])}; the model is {quote(name)}"))
    versions = body.get("versions")
    if model_version is not None and isinstance(versions, list) and model_version not in versions:
        findings.append(Finding("H-METADATA", where, "/versions", f"{versions!r} does not hold the model's version "
                                                                  f"{quote(model_version)}", level=SHOULD))
    if signature is not None:
        for side, declared in (("inputs", signature.inputs), ("outputs", signature.outputs)):
            listed = {t["name"]: t for t in body.get(side) or []}
            if not listed:
                continue
            for spec in declared:
                tensor = listed.get(spec.name)
                if tensor is None:
                    findings.append(Finding("H-METADATA", where, f"/{side}", f"does not list {quote(spec.name)}, which "
                                                                              f"the model's signature declares", level=SHOULD))
                elif tensor["datatype"] != spec.datatype:
                    findings.append(Finding("H-METADATA", where, f"/{side}", f"{quote(spec.name)} is {tensor['datatype']}; "
                                                                              f"the signature declares {spec.datatype}",
                                            level=SHOULD))
    return body, findings


def unknown_targets(client: HttpClient, name: str, body: bytes) -> list[Finding]:
    """H-UNKNOWN: an infer for a model the server does not serve, and for a version of the model it does not
    have, gets a 4xx status with an ``{"error": string}`` body (never 200, never a 5xx)."""
    from conformance.online.checks import is_error_body

    findings = []
    for path in (model_path(NOT_SERVED) + "/infer", model_path(name, NO_VERSION) + "/infer"):
        answer = client.post(path, body)
        where = _where("POST", path)
        if answer.status is None or not 400 <= answer.status < 500:
            findings.append(Finding("H-UNKNOWN", where, "", f"{_said(answer)}; expected a 4xx for a model or version "
                                                            f"the server does not have"))
        elif not is_error_body(answer.body):
            findings.append(Finding("H-UNKNOWN", where, "", f"status {answer.status} with a body that is not "
                                                            f"{{\"error\": string}}: {_said(answer)}"))
    return findings
