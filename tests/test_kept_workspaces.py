"""The workspaces of failed runs: kept within a budget of disk space and files (named when it is hit), and a
workspace that cannot be removed is one warning line, never an error that makes the suite run things again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.contract.findings import Finding
from conformance.judge import Judgement
from conformance.odahu.model import Model
from conformance.run import candidate as candidate_module
from conformance.run import staging
from conformance.suite.shared import Batch

REQUEST = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]}).encode()

#: A predictor that answers every request and also writes COUNT tiny files (COUNT is the request file's name).
SPRAY = """
    import json, os, pathlib
    out = pathlib.Path(os.environ["ODAHU_OUTPUT_PATH"])
    out.mkdir(parents=True, exist_ok=True)
    for request in sorted(pathlib.Path(os.environ["ODAHU_INPUT_PATH"]).iterdir()):
        (out / request.name).write_text('{"error": "no"}')
        stem = request.name[:-5]
        for i in range(int(stem) if stem.isdigit() else 0):
            (out / f"{stem}-{i}.json").write_bytes(b"1")
"""


def spray_candidate(tmp_path: Path) -> candidate_module.Candidate:
    script = tmp_path / "spray.py"
    script.write_text(textwrap.dedent(SPRAY))
    base = tmp_path / "workspaces"
    base.mkdir()
    return candidate_module.from_options(cmd=f"{sys.executable} {script}", workspace_base=base)


def failed(candidate: candidate_module.Candidate, result) -> Batch:
    """A Batch for ``result`` with one finding: its workspace is kept or not, by the candidate's limits."""
    judgement = Judgement()
    judgement.findings.append(Finding("M-VALUE", "a.json", "", "wrong"))
    return Batch(candidate, result, judgement, Model(2, "multiplier", "1"))


def not_kept_line(batch: Batch) -> str:
    return next(line for line in batch.evidence().splitlines() if line.startswith("workspace not kept"))


# ------------------------------------------------------------------------------------------------------ budget


def test_the_budget_counts_disk_blocks_not_sizes_and_names_that_limit(tmp_path):
    candidate = spray_candidate(tmp_path)
    result = candidate.run([("300.json", REQUEST)])
    disk = sum(e.disk for e in result.entries)
    size = sum(e.size for e in result.entries)
    if disk <= size:
        pytest.skip("this file system stores tiny files inside their inodes")
    candidate.keep_bytes = disk - 1  # the sizes (about 300 bytes) fit; the blocks do not
    batch = failed(candidate, result)
    assert batch.kept is None and candidate.not_kept == 1 and not result.workspace.root.exists()
    line = not_kept_line(batch)
    assert line.startswith("workspace not kept: its output takes ") and " of disk; the kept workspaces' outputs may " \
        "take " in line and line.endswith(" in all (0 bytes taken)"), line


def test_the_budget_counts_files_and_folders_and_names_that_limit(tmp_path):
    candidate = spray_candidate(tmp_path)
    candidate.keep_entries = 250
    small = failed(candidate, candidate.run([("100.json", REQUEST)]))
    assert small.kept is not None and candidate.kept_entries == 101
    big = failed(candidate, candidate.run([("200.json", REQUEST)]))
    assert big.kept is None and not big.result.workspace.root.exists()
    assert not_kept_line(big) == ("workspace not kept: its output holds 201 files and folders; the kept workspaces' "
                                  "outputs may hold 250 in all (101 held)")
    candidate.release(small.result)  # gives its share back: the next one fits
    assert candidate.kept_entries == 0 and candidate.kept_bytes == 0
    assert failed(candidate, candidate.run([("200.json", REQUEST)])).kept is not None


def test_the_number_limit_is_named_when_it_is_the_one_hit(tmp_path):
    candidate = spray_candidate(tmp_path)
    candidate.keep_limit = 1
    assert failed(candidate, candidate.run([("a.json", REQUEST)])).kept is not None
    second = failed(candidate, candidate.run([("a.json", REQUEST)]))
    assert not_kept_line(second) == ("workspace not kept: the workspaces of the first 1 failed runs are kept "
                                     "(--keep-workspaces N)")
    candidate.keep_limit = 0
    assert not_kept_line(failed(candidate, candidate.run([("a.json", REQUEST)]))) == \
        "workspace not kept: --keep-workspaces 0: no workspace is kept"


def test_the_default_budget(tmp_path):
    candidate = spray_candidate(tmp_path)
    assert (candidate.keep_limit, candidate.keep_bytes, candidate.keep_entries) == (3, 1 << 30, 10_000)


# ------------------------------------------------------------------------------------------ cannot be removed


@pytest.fixture
def stuck(monkeypatch):
    """Files named ``*stuck*`` cannot be removed (as if immutable); the folders holding them then cannot either."""
    original = staging._remove_one

    def remove_one(path: Path, is_dir: bool, failures: list[str]) -> None:
        if "stuck" in path.name:
            failures.append(f"{path}: Operation not permitted")
            return
        original(path, is_dir, failures)

    monkeypatch.setattr(staging, "_remove_one", remove_one)


def test_a_workspace_that_cannot_be_removed_is_one_warning_line_and_no_error(tmp_path, stuck):
    candidate = spray_candidate(tmp_path)
    said: list[str] = []
    candidate.progress = said.append
    result = candidate.run([("stuck.json", REQUEST)])
    candidate.discard(result)  # a passed run: no exception
    candidate.discard(result)  # asked again (a release after a keep): still one line
    assert candidate.left_behind == [result.workspace.root]
    assert len(said) == 1 and "\n" not in said[0]
    assert said[0].startswith(f"warning: cannot remove the workspace {result.workspace.root}: ")
    assert "stuck.json: Operation not permitted" in said[0] and said[0].endswith("; left in place")
    # a failed run over the limits is removed the same way: not kept, one more line, no error
    candidate.keep_limit = 0
    other = candidate.run([("stuck.json", REQUEST)])
    assert failed(candidate, other).kept is None and candidate.not_kept == 1
    assert len(said) == 2 and candidate.left_behind == [result.workspace.root, other.workspace.root]
    assert candidate.runs == 2


def test_without_a_progress_line_the_warning_goes_to_stderr(tmp_path, stuck, capsys):
    candidate = spray_candidate(tmp_path)
    candidate.discard(candidate.run([("stuck.json", REQUEST)]))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("odahu-conformance: warning: cannot remove the workspace ")


def _chattr_works(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.write_text("x")
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True)
    if done.returncode != 0:
        return False
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    return True


def test_an_immutable_response_for_real(tmp_path):
    """``chattr +i`` on a response (root on a file system that has the flag; skipped elsewhere)."""
    if not _chattr_works(tmp_path):
        pytest.skip("chattr +i does not work here (not root, or the file system has no immutable flag)")
    candidate = spray_candidate(tmp_path)
    said: list[str] = []
    candidate.progress = said.append
    result = candidate.run([("a.json", REQUEST)])
    response = result.workspace.output / "a.json"
    subprocess.run(["chattr", "+i", str(response)], check=True)
    try:
        candidate.discard(result)
        assert len(said) == 1 and "a.json: Operation not permitted" in said[0]
        assert response.exists() and candidate.left_behind == [result.workspace.root]
    finally:
        subprocess.run(["chattr", "-i", str(response)], check=True)
        staging.remove_workspace(result.workspace)


STUCK_PLUGIN = '''
from conformance.run import staging

original = staging._remove_one


def remove_one(path, is_dir, failures):
    if path.name == "a.json" and path.parent.name == "raw-output":
        failures.append(f"{path}: Operation not permitted")
        return
    original(path, is_dir, failures)


staging._remove_one = remove_one
'''


def _suite(tmp_path: Path, *extra: str) -> tuple[str, dict]:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "--predictor-cmd", f"{sys.executable} {Path(__file__).parents[1] / 'predictor' / 'fast.py'}",
         "--conformance-report", str(report), "--workspace-dir", str(tmp_path), "-k", "platform_delivers", *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )
    assert report.is_file(), done.stdout + done.stderr
    return done.stdout + done.stderr, json.loads(report.read_text())


def test_a_suite_whose_workspaces_cannot_be_removed_warns_once_each_and_runs_nothing_again(tmp_path):
    plain_dir, stuck_dir = tmp_path / "plain", tmp_path / "stuck"
    plain_dir.mkdir()
    stuck_dir.mkdir()
    (stuck_dir / "stuck_removal.py").write_text(STUCK_PLUGIN)
    _, plain = _suite(plain_dir)
    output, stuck = _suite(stuck_dir, "-p", "stuck_removal")
    runs = plain["stats"]["predictor_runs"]
    assert stuck["stats"]["predictor_runs"] == runs and stuck["status"] == plain["status"] == "passed", output
    warnings = [line for line in output.splitlines() if "warning: cannot remove the workspace" in line]
    assert len(warnings) == runs and "Traceback" not in output, output  # every run answered a.json
    assert f"{runs} workspaces could not be removed and are left in place (first: " in output
    left = sorted(p for p in stuck_dir.iterdir() if p.name.startswith(staging.PREFIX))
    assert len(left) == runs and all(sorted(q.name for q in p.iterdir()) == ["raw-output"] for p in left)


def test_expected_answers_that_cannot_be_written_beside_a_kept_workspace_are_no_error(tmp_path):
    """A candidate may leave its workspace unwritable (read-only, immutable): the kept workspace then lacks
    expected/, and the run's findings stand (no traceback from the kit)."""
    from conformance.judge import Judgement
    from conformance.suite.shared import _write_expected

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    assert _write_expected(blocker / "expected", Judgement()) is False
    assert _write_expected(tmp_path / "expected", Judgement()) is True and (tmp_path / "expected").is_dir()
