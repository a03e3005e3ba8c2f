"""K-SERVICE and K-JOB: the kit's manifests are valid; broken ones are rejected with the pointer."""


import pytest
from helpers import DELETE, edited

from conformance.odahu.manifests import (
    ManifestProblem,
    check_file,
    job_findings,
    read_yaml,
    service_findings,
)
from conformance.paths import kit_root

MANIFESTS = kit_root() / "manifests"
SERVICES = sorted(MANIFESTS.glob("inferenceservice*.yaml"))
JOBS = sorted(MANIFESTS.glob("inferencejob*.yaml"))


def test_the_kit_ships_every_variant():
    names = {p.name for p in SERVICES + JOBS}
    for variant in ("", "-embedded", "-packed"):
        assert f"inferenceservice{variant}.yaml" in names and f"inferencejob{variant}.yaml" in names


@pytest.mark.parametrize("path", SERVICES + JOBS, ids=lambda p: p.name)
def test_the_kits_manifests_are_valid(path):
    service = MANIFESTS / path.name.replace("inferencejob", "inferenceservice") if "inferencejob" in path.name else None
    assert check_file(path, service) == []


SERVICE = read_yaml(MANIFESTS / "inferenceservice.yaml")
EMBEDDED = read_yaml(MANIFESTS / "inferenceservice-embedded.yaml")
JOB = read_yaml(MANIFESTS / "inferencejob.yaml")


@pytest.mark.parametrize(
    "document, path, value, where",
    [
        (SERVICE, ("id",), "Multiplier", "/id"),
        (SERVICE, ("id",), "a" * 54, "/id"),
        (SERVICE, ("id",), "ends-with-dash-", "/id"),
        (SERVICE, ("kind",), "InferenceJob", "/kind"),
        (SERVICE, ("spec", "image"), "", "/spec/image"),
        (SERVICE, ("spec", "command"), [], "/spec/command"),
        (SERVICE, ("spec", "command"), "python3 predictor.py", "/spec/command"),
        (SERVICE, ("spec", "args"), [1], "/spec/args/0"),
        (SERVICE, ("spec", "modelRegistry"), {}, "/spec/modelRegistry"),
        (SERVICE, ("spec", "modelRegistry", "local"), {"modelPath": "/m", "meta": {"name": "x", "version": "1"}}, "/spec/modelRegistry"),
        (SERVICE, ("spec", "modelRegistry", "remote", "modelConnection"), "", "/spec/modelRegistry/remote/modelConnection"),
        (EMBEDDED, ("spec", "modelRegistry", "local", "meta", "version"), "", "/spec/modelRegistry/local/meta/version"),
        (EMBEDDED, ("spec", "modelRegistry", "local", "meta"), DELETE, "/spec/modelRegistry/local"),
        (SERVICE, ("spec", "triggers"), {"webhook": {"enabled": "yes"}}, "/spec/triggers/webhook/enabled"),
    ],
)
def test_broken_services_are_rejected(document, path, value, where):
    assert ("K-SERVICE", where) in [(f.requirement, f.pointer) for f in service_findings(edited(document, path, value), "s.yaml")]


def test_broken_jobs_are_rejected():
    pointers = lambda doc, service=None: [(f.requirement, f.pointer) for f in job_findings(doc, "j.yaml", service)]  # noqa: E731
    assert ("K-JOB", "/kind") in pointers(edited(JOB, ("kind",), "Job"))
    assert ("K-JOB", "/spec/inferenceServiceId") in pointers(edited(JOB, ("spec", "inferenceServiceId"), ""))
    assert ("K-JOB", "/spec/dataSource") in pointers(edited(JOB, ("spec", "dataSource"), {"path": "x"}))
    no_source = edited(JOB, ("spec", "dataSource"), DELETE)
    assert ("K-JOB", "/spec/dataSource") in pointers(no_source)
    assert pointers(no_source, edited(SERVICE, ("spec", "dataSource"), {"connection": "in", "path": "p"})) == []
    assert ("K-JOB", "/spec/inferenceServiceId") in pointers(JOB, edited(SERVICE, ("id",), "another-service"))


def test_unreadable_manifests_get_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    with pytest.raises(ManifestProblem, match="not valid YAML") as info:
        check_file(bad)
    assert "\n" not in str(info.value)
    other = tmp_path / "other.yaml"
    other.write_text("kind: Deployment\n")
    with pytest.raises(ManifestProblem, match="expected InferenceService or InferenceJob"):
        check_file(other)
    with pytest.raises(ManifestProblem, match="cannot read"):
        check_file(tmp_path / "missing.yaml")
