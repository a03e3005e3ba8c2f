"""ODAHU manifests (InferenceService, InferenceJob) and the model's project file, read and checked (K-*)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import yaml

from conformance.contract.findings import Finding
from conformance.contract.problems import ConformanceProblem
from conformance.odahu.model import project_findings
from conformance.text import one_line
from conformance.v2 import jsonschemas

SERVICE_KIND = "InferenceService"
JOB_KIND = "InferenceJob"


class ManifestProblem(ConformanceProblem):
    """A manifest cannot be read at all; ``str()`` is one line naming the file."""


def read_yaml(path: Path) -> object:
    """The YAML document in ``path``; raise :class:`ManifestProblem` when unreadable or not one document."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestProblem(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestProblem(f"{path}: not valid YAML: {one_line(exc, limit=None)}") from None


def service_findings(document: object, file: str) -> list[Finding]:
    """``K-SERVICE`` findings for a parsed InferenceService manifest."""
    return [Finding("K-SERVICE", file, w, m) for w, m in jsonschemas.errors(jsonschemas.SERVICE, document)]


def job_findings(document: object, file: str, service: object | None = None) -> list[Finding]:
    """``K-JOB`` findings for a parsed InferenceJob manifest. ``dataSource`` and ``outputDestination`` may be
    left out only when ``service`` (the InferenceService it names) supplies them; without a service, both must be
    present. A given service must be the one named by ``spec.inferenceServiceId``."""
    findings = [Finding("K-JOB", file, w, m) for w, m in jsonschemas.errors(jsonschemas.JOB, document)]
    if findings:
        return findings
    spec = cast(dict, document)["spec"]  # the schema checked its shape
    service_spec = service.get("spec", {}) if isinstance(service, dict) else {}
    if isinstance(service, dict) and service.get("id") != spec["inferenceServiceId"]:
        findings.append(Finding("K-JOB", file, "/spec/inferenceServiceId",
                                f"names {spec['inferenceServiceId']!r}, but the service's id is {service.get('id')!r}"))
    for key in ("dataSource", "outputDestination"):
        if key not in spec and not isinstance(service_spec.get(key), dict):
            supplier = "the service does not supply it either" if service is not None else "no service given to supply it"
            findings.append(Finding("K-JOB", file, f"/spec/{key}", f"missing, and {supplier}"))
    return findings


def check_file(path: Path, service_path: Path | None = None) -> list[Finding]:
    """Check a manifest or project file by its ``kind`` (or, for ``odahuflow.project.y*ml``, by its name)."""
    document = read_yaml(path)
    if path.name.startswith("odahuflow.project."):
        return project_findings(document, str(path))
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind == SERVICE_KIND:
        return service_findings(document, str(path))
    if kind == JOB_KIND:
        service = read_yaml(service_path) if service_path is not None else None
        return job_findings(document, str(path), service)
    raise ManifestProblem(f"{path}: kind is {kind!r}; expected {SERVICE_KIND} or {JOB_KIND}")
