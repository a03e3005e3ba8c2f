"""The suite runs from an installed kit, outside any checkout: a wheel built from this checkout, installed into
a fresh virtual environment, carries the fixtures, model, manifests and reference predictor, and
``pytest --pyargs conformance`` and ``odahu-conformance run`` work from an unrelated folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A virtual environment with the kit installed from a wheel (dependencies from the host's site-packages)."""
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                           str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return home


def site_kit(venv: Path) -> Path:
    found = list(venv.glob("lib/python*/site-packages/conformance/kitdata"))
    assert found, "the installed kit has no kitdata/"
    return found[0]


def test_installed_kit_carries_its_data(venv):
    kit = site_kit(venv)
    assert len(list((kit / "fixtures" / "input").glob("*.json"))) == len(list((ROOT / "fixtures" / "input").glob("*.json")))
    assert (kit / "model" / "multiplier.txt").read_text() == (ROOT / "model" / "multiplier.txt").read_text()
    assert not (kit / "fixtures").is_symlink()  # real files, not links back into a checkout


def test_pytest_pyargs_outside_a_checkout(venv, tmp_path):
    python = venv / "bin" / "python"
    predictor = site_kit(venv) / "predictor" / "fast.py"
    probe = subprocess.run([str(python), "-c", "import conformance.paths as p; print(p.kit_root())"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "kitdata" in probe.stdout, probe.stdout + probe.stderr
    report = tmp_path / "report.json"
    done = subprocess.run(
        [str(python), "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", f"{python} {predictor}", "-m", "golden or manifest",
         "--conformance-report", str(report)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    rows = {r["id"]: r["status"] for r in json.loads(report.read_text())["requirements"]}
    assert rows["M-VALUE"] == rows["K-GOLDEN"] == rows["M-MULTIPLIER"] == "passed"


def test_cli_run_outside_a_checkout_fails_a_broken_candidate(venv, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import sys; print('cannot load the model', file=sys.stderr); sys.exit(3)\n")
    done = subprocess.run(
        [str(venv / "bin" / "odahu-conformance"), "run", "--cmd", f"{sys.executable} {broken}", "-m", "protocol",
         "--", "-q", "-k", "test_empty_input_folder"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "P-EXIT" in done.stdout


def test_no_candidate_is_a_usage_error_not_a_silent_pass(venv, tmp_path):
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "--pyargs", "conformance", "-p",
                           "no:cacheprovider", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stdout[-2000:]
    assert "no candidate: give --predictor-cmd CMD or --predictor-image IMAGE" in done.stderr
