"""``odahu-conformance model pack``: a reproducible archive of the model, never overwriting without --force,
refusing a model the predictor could not use; and ``run`` mapping the suite's outcome onto 0 / 1 / 2."""

import sys
import tarfile
import zipfile

import pytest

from conformance.cli import main
from conformance.paths import kit_model, reference_predictor


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
