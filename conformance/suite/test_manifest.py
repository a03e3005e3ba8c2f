"""K-*: the manifests, the model's metadata and the golden fixtures the suite relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.contract.findings import Finding
from conformance.generate import goldens
from conformance.odahu import manifests
from conformance.odahu.model import PROJECT_FILES, ModelProblem
from conformance.paths import kit_manifests

KIT_MANIFESTS = kit_manifests()


def _check(path: Path, service: Path | None = None) -> list[Finding]:
    try:
        return manifests.check_file(path, service)
    except manifests.ManifestProblem as problem:
        return [Finding("K-SERVICE" if "service" in path.name else "K-JOB", str(path), "", str(problem))]


@pytest.mark.manifest
@pytest.mark.requirement("K-SERVICE")
def test_service_manifests(conformance, verdict, pytestconfig):
    """The InferenceService manifest given (--service-manifest), else the kit's own, are valid."""
    given = pytestconfig.getoption("service_manifest")
    paths = [given] if given else sorted(KIT_MANIFESTS.glob("inferenceservice*.yaml"))
    if not paths:
        pytest.skip("no InferenceService manifest given and none in the kit")
    verdict.ran("K-SERVICE")
    verdict.check([f for path in paths for f in _check(Path(path))])


@pytest.mark.manifest
@pytest.mark.requirement("K-JOB")
def test_job_manifests(conformance, verdict):
    """The kit's InferenceJob manifests are valid, each against the service it names."""
    jobs = sorted(KIT_MANIFESTS.glob("inferencejob*.yaml"))
    if not jobs:
        pytest.skip("the kit's manifests/ folder is not available")
    findings = []
    for job in jobs:
        service = KIT_MANIFESTS / job.name.replace("inferencejob", "inferenceservice")
        findings += _check(job, service if service.is_file() else None)
    verdict.ran("K-JOB")
    verdict.check(findings)


@pytest.mark.manifest
@pytest.mark.requirement("K-META")
def test_model_metadata(conformance, verdict):
    """The candidate's model has an odahuflow.project.yaml with a non-empty name and version."""
    candidate = conformance.require_candidate()
    if candidate.model_is_embedded:
        verdict.not_applicable(["K-META"], "the model is inside the image: its name and version come from the "
                                           "manifest (K-SERVICE)")
    source = candidate.model_source
    verdict.ran("K-META")
    if not source.is_dir():
        verdict.check([])  # an archive was unpacked and its metadata loaded when the candidate was set up
        return
    project = next((source / name for name in PROJECT_FILES if (source / name).is_file()), None)
    if project is None:
        verdict.check([Finding("K-META", str(source / PROJECT_FILES[0]), "", "missing")])
        return
    verdict.check(_check(project))


@pytest.mark.manifest
@pytest.mark.requirement("K-GOLDEN")
def test_golden_fixtures(conformance, verdict):
    """Every golden pair is valid and equals what the oracle computes for the fixtures' model (for a model other
    than the multiplier: valid, following the declared signature, equal to the reference function's answer
    within the tolerance when there is one)."""
    candidate = conformance.candidate
    if candidate is not None and candidate.oracle is not None:
        if conformance.fixtures is None:
            verdict.not_applicable(["K-GOLDEN"], "no golden pairs for this model (--fixtures-dir)")
            return
        pairs, findings = goldens.check(conformance.fixtures, None, candidate.oracle)
        verdict.ran("K-GOLDEN")
        verdict.check(findings or ([] if pairs else [Finding("K-GOLDEN", str(conformance.fixtures), "", "no golden pairs")]))
        return
    assert conformance.fixtures is not None  # the multiplier's: the kit's fixtures by default
    try:
        model = goldens.model_for(conformance.fixtures)
    except ModelProblem as problem:
        verdict.check([Finding("K-GOLDEN", str(conformance.fixtures), "", str(problem))])
        return
    pairs, findings = goldens.check(conformance.fixtures, model)
    verdict.ran("K-GOLDEN")
    if pairs == 0 and not findings:
        findings = [Finding("K-GOLDEN", str(conformance.fixtures), "", "no golden pairs")]
    verdict.check(findings)
