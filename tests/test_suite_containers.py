"""The conformance suite against the reference images, for real: podman, and the docker CLI through podman's
socket; the remote-model image with the kit's model staged, and the embedded-model image through its service
manifest. Where an engine cannot run containers here, these tests skip and print why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.contract.requirements import REQUIREMENTS
from helpers import usable_engine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "localhost/odahu/multiplier-predictor:dev"
#: Skipped for the multiplier model (its answers are the M-* requirements'; it declares no signature).
MULTIPLIER_SKIPPED = ("B-MATCH", "B-SIGNATURE")
#: Skipped for every batch predictor: a V2 server's own requirements.
SERVER_ONLY = tuple(r.id for r in REQUIREMENTS if r.id.startswith(("H-", "G-")))
EMBEDDED_IMAGE = "localhost/odahu/multiplier-predictor-embedded:dev"


@pytest.fixture(scope="module", params=["podman", "docker"])
def engine(request) -> str:
    return usable_engine(request.param, (IMAGE, EMBEDDED_IMAGE))


def run_suite(tmp: Path, *options: str) -> tuple[int, dict, str]:
    report = tmp / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "--conformance-profile", "dev", "--conformance-report", str(report), "--workspace-dir", str(tmp),
         "--conformance-strict", *options],
        cwd=tmp, capture_output=True, text=True, timeout=900,
    )
    assert report.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, json.loads(report.read_text()), (done.stdout + done.stderr)[-3000:]


def test_reference_image_passes_the_whole_suite(engine, tmp_path):
    status, report, output = run_suite(tmp_path, "--predictor-image", IMAGE, "--engine", engine)
    assert status == 0, output
    assert report["candidate"] == {"kind": "image", "ref": IMAGE, "oracle": "multiplier"}
    assert sorted(r["id"] for r in report["requirements"] if r["status"] != "passed") == sorted(
        MULTIPLIER_SKIPPED + SERVER_ONLY), output


def test_embedded_image_passes_with_what_an_embedded_model_allows(engine, tmp_path):
    """Through its service manifest (model inside the image); multiplier and bad-model tests skip, saying why."""
    status, report, output = run_suite(
        tmp_path, "--service-manifest", str(ROOT / "manifests" / "inferenceservice-embedded.yaml"),
        "--predictor-image", EMBEDDED_IMAGE, "--engine", engine)
    assert status == 0, output
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert statuses.pop("M-MULTIPLIER") == "skipped" and statuses.pop("P-CONFIG") == "skipped"
    assert statuses.pop("K-META") == "skipped"
    assert all(statuses.pop(r) == "skipped" for r in MULTIPLIER_SKIPPED + SERVER_ONLY)
    assert set(statuses.values()) == {"passed"}, output
    assert "the model is inside the image" in output or report["summary"]["skipped"] == 3 + len(
        MULTIPLIER_SKIPPED + SERVER_ONLY)


def test_a_broken_image_fails_with_its_requirement(engine, tmp_path):
    """The reference image told to read the docs' variable names (a mutant built from the same image) fails."""
    status, report, output = run_suite(
        tmp_path, "--predictor-image", IMAGE, "--engine", engine, "-k", "test_reads_the_operator_variables",
        "--service-manifest", str(_mutant_manifest(tmp_path)))
    assert status == 1, output
    row = next(r for r in report["requirements"] if r["id"] == "P-ENV")
    assert row["status"] == "failed", row


def _mutant_manifest(tmp: Path) -> Path:
    """A service running the reference image with a command that clears the operator's variables first."""
    manifest = tmp / "mutant-service.yaml"
    manifest.write_text(
        "id: mutant\nkind: InferenceService\nspec:\n"
        f"  image: {IMAGE}\n"
        "  command: [/bin/sh]\n"
        "  args: [-c, 'ODAHU_MODEL_PATH=$ODAHU_MODEL ODAHU_INPUT_PATH=$ODAHU_MODEL_INPUT "
        "ODAHU_OUTPUT_PATH=$ODAHU_MODEL_OUTPUT exec python3 /opt/predictor/predictor.py']\n"
        "  modelRegistry:\n    remote: {modelConnection: models, modelPath: model}\n"
    )
    return manifest


IRIS_IMAGE = "localhost/odahu/iris-predictor:dev"


@pytest.fixture(scope="module")
def iris_model() -> Path:
    """The committed iris model (its goldens were recorded from these weights)."""
    return ROOT / "examples" / "iris" / "model"


@pytest.mark.parametrize("variant", ["", "label-off-by-one"])
def test_the_iris_image_is_gated_against_its_recorded_goldens(iris_model, tmp_path, variant):
    """Another model's image, for real under podman: the iris image passes against its recorded goldens; the
    same image told to shift its labels by one (IRIS_VARIANT through the manifest's command) fails B-MATCH and
    B-SIGNATURE."""
    engine = usable_engine("podman", (IRIS_IMAGE,))
    options = ["--predictor-image", IRIS_IMAGE, "--engine", engine, "--model", str(iris_model), "--oracle", "recorded",
               "--fixtures-dir", str(ROOT / "examples" / "iris" / "fixtures")]
    if variant:
        manifest = tmp_path / "iris-variant.yaml"
        manifest.write_text(
            "id: iris-variant\nkind: InferenceService\nspec:\n"
            f"  image: {IRIS_IMAGE}\n  command: [/bin/sh]\n"
            f"  args: [-c, 'IRIS_VARIANT={variant} exec python3 /opt/iris/predictor.py']\n"
            "  modelRegistry:\n    remote: {modelConnection: models, modelPath: model}\n")
        options += ["--service-manifest", str(manifest)]
    status, report, output = run_suite(tmp_path, *options)
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    failed = {r for r, s in statuses.items() if s == "failed"}
    if variant:
        assert status == 1 and failed == {"B-MATCH", "B-SIGNATURE"}, output
    else:
        assert status == 0 and failed == set() and "not-checked" not in statuses.values(), output
    assert {r for r, s in statuses.items() if s == "skipped"} == {r for r in statuses if r.startswith(("M-", "H-", "G-"))}, statuses
