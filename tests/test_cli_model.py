"""``odahu-conformance model pack``: a reproducible archive of the model, never overwriting without --force,
refusing a model the predictor could not use; and ``run`` mapping the suite's outcome onto 0 / 1 / 2."""

import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.paths import kit_model, reference_predictor

MUTANT = Path(__file__).resolve().parent / "mutants" / "mutant.py"


@pytest.mark.parametrize("name", ["model.tar.gz", "model.zip"])
def test_pack_is_reproducible_and_never_overwrites(tmp_path, capsys, name):
    first, second = tmp_path / "a" / name, tmp_path / "b" / name
    first.parent.mkdir()
    second.parent.mkdir()
    assert main(["model", "pack", str(first)]) == 0
    assert main(["model", "pack", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    if name.endswith(".zip"):
        members = zipfile.ZipFile(first).namelist()
    else:
        members = tarfile.open(first).getnames()
    assert sorted(members) == sorted(p.name for p in kit_model().iterdir())
    before = first.read_bytes()
    capsys.readouterr()
    assert main(["model", "pack", str(first)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--force" in error and str(first) in error
    assert first.read_bytes() == before
    assert main(["model", "pack", str(first), "--force"]) == 0


def test_pack_refuses_an_unusable_model(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "multiplier.txt").write_text("two\n")
    (model / "odahuflow.project.yaml").write_text("model: {name: m, version: '1'}\n")
    assert main(["model", "pack", str(tmp_path / "m.tar.gz"), "--model", str(model)]) == 2
    assert "not a base-10 integer" in capsys.readouterr().err
    assert not (tmp_path / "m.tar.gz").exists()


def test_run_exit_status(tmp_path):
    good = f"{sys.executable} {reference_predictor()}"
    args = ["-m", "protocol", "--", "-q", "-p", "no:cacheprovider", "-k", "test_empty_input_folder",
            "--workspace-dir", str(tmp_path)]
    assert main(["run", "--cmd", good, *args]) == 0
    assert main(["run", "--cmd", f"{sys.executable} -c 'import sys; sys.exit(3)'", *args]) == 1
    assert main(["run", "--cmd", good, "--", "--no-such-option"]) == 2


def test_a_bad_candidate_option_stops_the_suite_with_one_line(tmp_path):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider",
                           "--predictor-cmd", "python3 x.py", "--model", str(tmp_path / "missing")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4  # pytest's usage error
    assert done.stderr.strip() == f"ERROR: odahu-conformance: --model: {tmp_path / 'missing'}: model does not exist"
    assert "Traceback" not in done.stdout + done.stderr


def _run(*args, cwd):
    import subprocess

    return subprocess.run([sys.executable, "-m", "conformance", "run", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_run_test_ids_do_not_depend_on_the_workspace_dir(tmp_path):
    """pytest took --workspace-dir's folder for a test path when it picked its rootdir, and the test ids it showed
    read ../test_protocol.py (a path that does not exist); they are the same with and without the option."""
    here, workspaces = tmp_path / "here", tmp_path / "elsewhere" / "ws"
    here.mkdir()
    workspaces.mkdir(parents=True)  # (an existing folder: pytest takes only those for test paths)
    args = ["--cmd", f"{sys.executable} {reference_predictor()}", "-m", "protocol", "--", "-v", "-rA", "-k",
            "empty_input"]
    shown = []
    for extra in ([], ["--workspace-dir", workspaces]):
        done = _run(*extra, *args, cwd=here)
        shown.append([line.split(" PASSED")[0] for line in done.stdout.splitlines() if "::" in line])
    # (the suite is outside the folder `run` is started from: pytest names the test from the package's folder)
    assert shown[0] == shown[1] == ["test_protocol.py::test_empty_input_folder",
                                    "PASSED test_protocol.py::test_empty_input_folder"], shown


def test_run_leaves_nothing_in_the_folder_it_is_run_from(tmp_path):
    """hypothesis keeps its storage (.hypothesis/) in a temporary folder during `run`, removed afterwards."""
    done = _run("--cmd", f"{sys.executable} {reference_predictor()}", "-m", "property", "--profile", "dev",
                "--workspace-dir", tmp_path / "ws", "--", "-q", "-k", "test_drawn_models", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "drawn" in done.stdout and "PytestAssertRewriteWarning" not in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == []


def test_run_takes_the_baseline_options(tmp_path):
    """`run --write-baseline` records today's failures; `run --baseline` then passes while only those occur."""
    baseline = tmp_path / "known" / "baseline.json"  # its folder is made (one level)
    failing = ["--cmd", f"{sys.executable} {MUTANT} exit-one", "-m", "P-EXIT and protocol",
               "--workspace-dir", str(tmp_path), "--", "-q", "-p", "no:cacheprovider"]
    assert main(["run", "--write-baseline", str(baseline), *failing]) == 1
    assert json.loads(baseline.read_text()) == {"known_failures": [{"id": "P-EXIT", "files": ["(run)"]}]}
    assert main(["run", "--baseline", str(baseline), *failing]) == 0


def test_the_checkout_ignores_what_the_readme_and_the_kit_make():
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("needs git and a checkout")
    made = [".venv/bin/python", ".hypothesis/constants/x", "reports/conformance.json", "conformance/__pycache__/x.pyc"]
    done = subprocess.run(["git", "check-ignore", *made], cwd=root, capture_output=True, text=True)
    assert done.stdout.splitlines() == made
