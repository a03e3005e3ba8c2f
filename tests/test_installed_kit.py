"""The suite runs from an installed kit, outside any checkout: a wheel built from this checkout, installed into
a fresh virtual environment, carries the fixtures, model, manifests and reference predictor, and
``pytest --pyargs conformance`` and ``odahu-conformance run`` work from an unrelated folder.

The test works from any environment pytest runs in (a venv, the system Python): the fresh venv gets the kit from
the wheel and its dependencies from the running environment through a ``.pth`` file, so no package is
downloaded to install it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: The installed kit's programs run without PYTHONPATH: nothing may reach back into a checkout.
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def _copy_checkout(target: Path) -> Path:
    """The checkout without its caches and build leftovers (the wheel is built there, not in the checkout)."""
    skip = {"__pycache__", "build", "dist", "reports"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {n for n in names if n in skip or n.endswith(".egg-info") or (top and n.startswith("."))}

    shutil.copytree(ROOT, target, symlinks=True, ignore=ignore)
    return target


def _builds_without_fetching() -> bool:
    """Whether the running environment can build the wheel with its own setuptools: pyproject.toml asks for
    setuptools >= 68, and one older than 70.1 needs the ``wheel`` package for bdist_wheel. Otherwise pip builds
    in an isolated environment, fetching setuptools from its index, as ``pip install -e .`` did."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(part) for part in re.findall(r"\d+", setuptools.__version__)[:2])
    return version >= (70, 1) or (version >= (68, 0) and importlib.util.find_spec("wheel") is not None)


def _site_dirs() -> list[str]:
    """The running environment's site-packages folders (a venv's own; the system's, user's or base's when they
    are on the path), in path order."""
    found = [entry for entry in sys.path if Path(entry).name in ("site-packages", "dist-packages") and Path(entry).is_dir()]
    return list(dict.fromkeys(found))


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with the kit installed from a wheel of this checkout; the dependencies come
    from the running environment through a .pth file written after the install (so pip, installing the kit,
    sees nothing of the running environment and cannot touch it)."""
    work = tmp_path_factory.mktemp("installed-kit")
    source = _copy_checkout(work / "checkout")
    wheels = work / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)]
    if _builds_without_fetching():
        build.insert(4, "--no-build-isolation")
    done = subprocess.run(build, env=ENV, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = wheels.glob("odahu_conformance-*.whl")

    home = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(home)], env=ENV, check=True, timeout=300)
    python = home / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          env=ENV, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             env=ENV, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    (Path(purelib) / "_running_environment.pth").write_text("".join(f"{d}\n" for d in _site_dirs()))
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
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
    assert "kitdata" in probe.stdout, probe.stdout + probe.stderr
    report = tmp_path / "report.json"
    done = subprocess.run(
        [str(python), "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", f"{python} {predictor}", "-m", "golden or manifest",
         "--conformance-report", str(report)],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300,
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
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "P-EXIT" in done.stdout


def test_no_candidate_is_a_usage_error_not_a_silent_pass(venv, tmp_path):
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "--pyargs", "conformance", "-p",
                           "no:cacheprovider", "-q"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stdout[-2000:]
    assert "no candidate: give --predictor-cmd CMD or --predictor-image IMAGE" in done.stderr
