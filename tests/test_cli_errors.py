"""Bad input to any ``odahu-conformance`` command (a missing path, a file where a folder belongs, a manifest of
the wrong kind, a target that cannot be written) ends with exit status 2 and exactly one line on stderr that
names the path, never a traceback; and ``fixtures generate`` never writes into the kit's own fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance.paths import kit_fixtures, kit_manifests, kit_model

SERVICE = kit_manifests() / "inferenceservice.yaml"
JOB = kit_manifests() / "inferencejob.yaml"
UNWRITABLE = Path("/proc/odahu-conformance-test")  # /proc takes no new files, not even from root

needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc for an unwritable folder")


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A working folder with a plain file ``afile``, a non-YAML ``garbage.yaml`` and folders ``adir`` and
    ``folder.tar.gz``."""
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "garbage.yaml").write_text("kind: [unclosed\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "folder.tar.gz").mkdir()
    return tmp_path


def job_args(service: Path | str = SERVICE, job: Path | str = JOB, models: str = "adir") -> list[str]:
    return ["job", "--service", str(service), "--job", str(job), "--connection", f"models-bucket={models}",
            "--connection", "input-bucket=adir", "--connection", "output-bucket=adir", "--cmd", "true"]


CASES = {
    # validate
    "validate: missing SRC": (["validate", "output", "missing"], "missing"),
    "validate: SRC is a file": (["validate", "output", "afile"], "afile"),
    "validate: DEST is a file": (["validate", "output", "adir", "-d", "afile"], "afile"),
    "validate: DEST under a file": (["validate", "output", "adir", "-d", "afile/sub"], "afile/sub"),
    "validate: DEST unwritable": (["validate", "output", "adir", "-d", UNWRITABLE], str(UNWRITABLE)),
    # fixtures
    "generate: --out is a file": (["fixtures", "generate", "--count", "2", "--out", "afile"], "afile"),
    "generate: --out under a file": (["fixtures", "generate", "--count", "2", "--out", "afile/sub"], "afile/sub"),
    "generate: --out unwritable": (["fixtures", "generate", "--count", "2", "--out", UNWRITABLE], str(UNWRITABLE)),
    "generate: missing --model": (["fixtures", "generate", "--count", "2", "--model", "missing", "--out", "g"], "missing"),
    "check: missing --fixtures": (["fixtures", "check", "--fixtures", "missing"], "missing"),
    "check: --fixtures is a file": (["fixtures", "check", "--fixtures", "afile"], "afile"),
    "check: missing --model": (["fixtures", "check", "--fixtures", kit_fixtures(), "--model", "missing"], "missing"),
    # model pack
    "pack: unwritable target": (["model", "pack", UNWRITABLE / "model.tar.gz"], str(UNWRITABLE)),
    "pack: target in /proc": (["model", "pack", "/proc/x.tar.gz"], "/proc/x.tar.gz"),
    "pack: missing folder": (["model", "pack", "missing/model.tar.gz"], "missing"),
    "pack: under a file": (["model", "pack", "afile/model.zip"], "afile"),
    "pack: target is a folder": (["model", "pack", "folder.tar.gz", "--force"], "folder.tar.gz"),
    "pack: missing --model": (["model", "pack", "m.tar.gz", "--model", "missing"], "missing"),
    "pack: --model is a file": (["model", "pack", "m.tar.gz", "--model", "afile"], "afile"),
    # run (refused before pytest starts)
    "run: no candidate": (["run"], "--cmd"),
    "run: blank --cmd": (["run", "--cmd", " "], "--cmd is empty"),
    "run: --cmd and --image": (["run", "--cmd", "true", "--image", "x"], "--image"),
    "run: --cmd and a manifest": (["run", "--cmd", "true", "--service-manifest", SERVICE], "--service-manifest"),
    "run: job manifest as service": (["run", "--service-manifest", JOB], "InferenceJob"),
    "run: missing service manifest": (["run", "--service-manifest", "missing.yaml"], "missing.yaml"),
    "run: service manifest not YAML": (["run", "--service-manifest", "garbage.yaml"], "garbage.yaml"),
    "run: service manifest is a folder": (["run", "--service-manifest", "adir"], "adir"),
    "run: missing --model": (["run", "--cmd", "true", "--model", "missing"], "missing"),
    "run: missing --fixtures": (["run", "--cmd", "true", "--fixtures", "missing"], "missing"),
    "run: --report unwritable": (["run", "--cmd", "true", "--report", UNWRITABLE / "r.json"], str(UNWRITABLE)),
    "run: --report under a file": (["run", "--cmd", "true", "--report", "afile/r.json"], "afile"),
    "run: --report is a folder": (["run", "--cmd", "true", "--report", "adir"], "adir"),
    "run: --workspace-dir under a file": (["run", "--cmd", "true", "--workspace-dir", "afile/ws"], "afile"),
    "run: unknown --oracle": (["run", "--cmd", "true", "--oracle", "nonsense"], "--oracle nonsense"),
    "run: --oracle python: missing module": (["run", "--cmd", "true", "--oracle", "python:missing.py:f"], "missing.py"),
    "run: missing --signature": (["run", "--cmd", "true", "--oracle", "signature", "--signature", "missing.json"],
                                 "missing.json"),
    "run: --signature not JSON": (["run", "--cmd", "true", "--oracle", "signature", "--signature", "garbage.yaml"],
                                  "garbage.yaml"),
    "run: bad --output-tolerance": (["run", "--cmd", "true", "--output-tolerance", "p=x"], "--output-tolerance"),
    "run: negative --rtol": (["run", "--cmd", "true", "--rtol", "-1"], "--rtol"),
    "run: model without multiplier.txt": (["run", "--cmd", "true", "--model", "adir"], "no multiplier.txt"),
    # fixtures record
    "record: missing --requests": (["fixtures", "record", "--cmd", "true", "--model", kit_model(), "--requests",
                                    "missing", "--out", "o"], "missing"),
    "record: no requests": (["fixtures", "record", "--cmd", "true", "--model", kit_model(), "--requests", "adir",
                             "--out", "o"], "adir"),
    "record: --out is a file": (["fixtures", "record", "--cmd", "true", "--model", kit_model(), "--requests",
                                 kit_fixtures() / "input", "--out", "afile"], "afile"),
    "record: missing --model": (["fixtures", "record", "--cmd", "true", "--model", "missing", "--requests",
                                 kit_fixtures() / "input", "--out", "o"], "missing"),
    "record: predictor cannot start": (["fixtures", "record", "--cmd", "no-such-predictor-anywhere", "--model",
                                        kit_model(), "--requests", kit_fixtures() / "input", "--out", "o"],
                                       "no-such-predictor-anywhere"),
    # job (refused before the first progress line)
    "job: missing service": (job_args(service="missing.yaml"), "missing.yaml"),
    "job: job manifest as service": (job_args(service=JOB), str(JOB)),
    "job: service manifest as job": (job_args(job=SERVICE), str(SERVICE)),
    "job: service not YAML": (job_args(service="garbage.yaml"), "garbage.yaml"),
    "job: missing connection folder": (job_args(models="missing"), "missing"),
    "job: connection is a file": (job_args(models="afile"), "afile"),
    "job: connection without =": (["job", "--service", SERVICE, "--job", JOB, "--connection", "adir"], "adir"),
}


@pytest.mark.parametrize("argv,names", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_and_exit_2(argv, names, place):
    if any(str(a).startswith("/proc/") for a in argv) and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc for an unwritable folder")
    done = cli(*argv, cwd=place)
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout[-1500:], done.stderr[-1500:])
    assert len(lines) == 1 and lines[0].startswith("odahu-conformance: "), done.stderr
    assert names in lines[0], lines[0]


def test_nothing_is_left_behind_by_a_refused_pack(place):
    assert cli("model", "pack", "afile/model.zip", cwd=place).returncode == 2
    assert cli("model", "pack", "missing/model.tar.gz", cwd=place).returncode == 2
    assert sorted(p.name for p in place.iterdir()) == ["adir", "afile", "folder.tar.gz", "garbage.yaml"]


def test_generate_without_out_writes_a_new_folder_never_the_kits_fixtures(place):
    before = sorted(p.name for p in (kit_fixtures() / "input").iterdir())
    done = cli("fixtures", "generate", "--count", "2", "--seed", "3", cwd=place)
    assert done.returncode == 0, done.stderr
    assert "fixtures-generated" in done.stdout
    assert sorted(p.name for p in (place / "fixtures-generated" / "input").iterdir()) == [
        "gen-3-0000.json", "gen-3-0001.json"]
    assert sorted(p.name for p in (kit_fixtures() / "input").iterdir()) == before
    again = cli("fixtures", "generate", "--count", "2", "--seed", "3", cwd=place)
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1 and "--force" in again.stderr


@needs_proc
def test_the_kits_model_is_packable_and_unwritable_targets_name_the_target(place):
    done = cli("model", "pack", "/proc/model.tar.gz", "--model", kit_model(), cwd=place)
    assert done.returncode == 2 and "/proc/model.tar.gz" in done.stderr and ".partial" not in done.stderr


# ---------------------------------------------------------------------------------------------------------------
# argument hygiene: each bad value is one exact line, exit status 2, and nothing is made on disk

BLANK = "is blank: give a path (a blank value, e.g. an unset variable, would mean the current folder)"
RECORD = ["fixtures", "record", "--model", kit_model(), "--requests", kit_fixtures() / "input"]
RUN = ["run", "--cmd", "true"]
SIGNATURE = kit_model().parent / "examples" / "iris" / "model" / "model-settings.json"

HYGIENE = {
    # a blank path is refused everywhere a path is taken (it would be the current folder)
    "validate: blank SRC": (["validate", "output", ""], f"SRC: {BLANK}"),
    "validate: blank -d": (["validate", "output", "adir", "-d", " "], f"-d/--dest: {BLANK}"),
    "generate: blank --out": (["fixtures", "generate", "--count", "1", "--out", ""], f"--out: {BLANK}"),
    "generate: blank --model": (["fixtures", "generate", "--count", "1", "--model", "", "--out", "g"],
                                f"--model: {BLANK}"),
    "check: blank --fixtures": (["fixtures", "check", "--fixtures", ""], f"--fixtures: {BLANK}"),
    "check: blank --signature": (["fixtures", "check", "--signature", ""], f"--signature: {BLANK}"),
    "record: blank --out": ([*RECORD, "--cmd", "true", "--out", ""], f"--out: {BLANK}"),
    "record: blank --requests": (["fixtures", "record", "--cmd", "true", "--model", kit_model(), "--requests", "",
                                  "--out", "o"], f"--requests: {BLANK}"),
    "pack: blank target": (["model", "pack", ""], f"TARGET: {BLANK}"),
    "pack: blank --model": (["model", "pack", "m.zip", "--model", ""], f"--model: {BLANK}"),
    "run: blank --model": ([*RUN, "--model", ""], f"--model: {BLANK}"),
    "run: blank --fixtures": ([*RUN, "--fixtures", ""], f"--fixtures: {BLANK}"),
    "run: blank --report": ([*RUN, "--report", ""], f"--report: {BLANK}"),
    "run: blank --workspace-dir": ([*RUN, "--workspace-dir", ""], f"--workspace-dir: {BLANK}"),
    "run: blank --service-manifest": (["run", "--service-manifest", ""], f"--service-manifest: {BLANK}"),
    "run: blank --baseline": ([*RUN, "--baseline", ""], f"--baseline: {BLANK}"),
    "job: blank --service": (["job", "--service", "", "--job", JOB], f"--service: {BLANK}"),
    "job: blank connection folder": (["job", "--service", SERVICE, "--job", JOB, "--connection", "models-bucket= "],
                                     "connection 'models-bucket= ': the DIR after '=' is blank"),
    # numbers: finite, and in range where a value outside it means nothing
    "validate: negative --max-bytes": (["validate", "output", "adir", "--max-bytes", "-1"],
                                       "--max-bytes: must be at least 1, got -1"),
    "validate: zero --max-bytes": (["validate", "output", "adir", "--max-bytes", "0"],
                                   "--max-bytes: must be at least 1, got 0"),
    "run: negative --keep-workspaces": ([*RUN, "--keep-workspaces", "-1"], "--keep-workspaces: must not be negative, got -1"),
    "run: --keep-workspaces not a number": ([*RUN, "--keep-workspaces", "x"],
                                            "--keep-workspaces: expected a whole number, got 'x'"),
    "run: --run-timeout inf": ([*RUN, "--run-timeout", "inf"], "--run-timeout: must be a finite number, got 'inf'"),
    "run: --run-timeout nan": ([*RUN, "--run-timeout", "nan"], "--run-timeout: must be a finite number, got 'nan'"),
    "run: negative --run-timeout": ([*RUN, "--run-timeout", "-5"],
                                    "--run-timeout: must be at least 1 s (a predictor needs time to start), got -5"),
    "run: zero --run-timeout": ([*RUN, "--run-timeout", "0"],
                                "--run-timeout: must be at least 1 s (a predictor needs time to start), got 0"),
    "run: tiny --run-timeout": ([*RUN, "--run-timeout", "1e-9"],
                                "--run-timeout: must be at least 1 s (a predictor needs time to start), got 1e-9"),
    "record: tiny --run-timeout": ([*RECORD, "--cmd", "true", "--out", "o", "--run-timeout", "0.5"],
                                   "--run-timeout: must be at least 1 s (a predictor needs time to start), got 0.5"),
    "job: --run-timeout inf": ([*job_args(), "--run-timeout", "inf"], "--run-timeout: must be a finite number, got 'inf'"),
    "run: --rtol inf": ([*RUN, "--rtol", "inf"], "--rtol: must be a finite number, got 'inf'"),
    "run: --atol nan": ([*RUN, "--atol", "nan"], "--atol: must be a finite number, got 'nan'"),
    "run: negative --atol": ([*RUN, "--atol", "-0.001"], "--atol: must not be negative, got -0.001"),
    # a file or folder to write: made at most one folder deep, and only once the command is accepted
    "run: --report in a missing folder's folder": ([*RUN, "--report", "missing/dir/r.json"],
                                                   "--report missing/dir/r.json: missing does not exist (only the "
                                                   "last folder of a path is made)"),
    "run: --write-baseline in a missing folder's folder": ([*RUN, "--write-baseline", "missing/dir/b.json"],
                                                           "--write-baseline missing/dir/b.json: missing does not "
                                                           "exist (only the last folder of a path is made)"),
    "run: --workspace-dir two folders deep": ([*RUN, "--workspace-dir", "missing/ws"],
                                              "--workspace-dir missing/ws: missing does not exist (only the last "
                                              "folder of a path is made)"),
    "generate: --out two folders deep": (["fixtures", "generate", "--count", "1", "--out", "missing/g"],
                                         "--out missing/g: missing does not exist (only the last folder of a path "
                                         "is made)"),
    "validate: -d two folders deep": (["validate", "output", "adir", "-d", "missing/d"],
                                      "-d missing/d: missing does not exist (only the last folder of a path is made)"),
    "record: --out two folders deep": ([*RECORD, "--cmd", "true", "--out", "missing/o"],
                                       "--out missing/o: missing does not exist (only the last folder of a path is "
                                       "made)"),
    # the option the user typed is the one named
    "record: blank --cmd": ([*RECORD, "--cmd", "", "--out", "o"],
                            "--cmd is empty: give the predictor to record from (a blank value, e.g. an unset "
                            "variable, is refused)"),
    "record: blank --image": ([*RECORD, "--image", " ", "--out", "o"],
                              "--image is empty: give the predictor to record from (a blank value, e.g. an unset "
                              "variable, is refused)"),
    "record: a missing argument": (["fixtures", "record", "--cmd", "true"],
                                   "the following arguments are required: --model, --requests, --out (see "
                                   "odahu-conformance fixtures record --help)"),
    # --signature is refused where it would be ignored: the multiplier's oracle needs no signature
    "run: --signature for the multiplier": ([*RUN, "--signature", SIGNATURE],
                                            f"--signature {SIGNATURE}: the multiplier's oracle takes any tensor and "
                                            "needs no signature; give --oracle signature to check this model by a "
                                            "signature only"),
    "check: --signature for the multiplier": (["fixtures", "check", "--signature", SIGNATURE],
                                              f"--signature {SIGNATURE}: the multiplier's goldens are checked against "
                                              "its oracle, which needs no signature; give --oracle signature (with "
                                              "--model) to check them by one"),
    # run's baseline options are checked before the suite starts
    "run: missing --baseline": ([*RUN, "--baseline", "known.json"],
                                "--baseline known.json: cannot read the baseline: No such file or directory"),
    "run: --baseline not a baseline": ([*RUN, "--baseline", "garbage.yaml"], "--baseline garbage.yaml: not JSON: "
                                       "Expecting value: line 1 column 1 (char 0)"),
}


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("argv,line", HYGIENE.values(), ids=HYGIENE.keys())
def test_a_bad_argument_is_one_exact_line_exit_2_and_nothing_made(argv, line, place):
    before = _tree(place)
    done = cli(*argv, cwd=place)
    assert (done.returncode, done.stderr, done.stdout) == (2, f"odahu-conformance: {line}\n", "")
    assert _tree(place) == before


def test_a_report_under_a_missing_folder_at_the_root_makes_nothing_there(place):
    """The issue's case: ``--report /nonexistent/dir/r.json`` made folders at ``/``."""
    root = Path("/odahu-conformance-nonexistent")
    if root.exists():
        pytest.skip(f"{root} exists")
    done = cli("run", "--cmd", "true", "--report", root / "dir" / "r.json", cwd=place)
    assert (done.returncode, done.stderr) == (2, f"odahu-conformance: --report {root}/dir/r.json: {root} does not "
                                                 f"exist (only the last folder of a path is made)\n")
    assert not root.exists()


RECORD_REFUSALS = {
    # (arguments after RECORD, exit status): every refusal leaves --out unmade
    "predictor cannot start": (["--cmd", "no-such-predictor-anywhere"], 2),
    "predictor not fit to record from": (["--cmd", f"{sys.executable} {Path(__file__).parent / 'mutants' / 'mutant.py'} "
                                                   "exit-one"], 1),
    "bad --signature": (["--cmd", "true", "--signature", "garbage.yaml"], 2),
}


@pytest.mark.parametrize("more,status", RECORD_REFUSALS.values(), ids=RECORD_REFUSALS.keys())
def test_a_refused_recording_makes_no_out_folder(more, status, place):
    done = cli(*RECORD, *more, "--out", "o", cwd=place)
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines()[-1].startswith("odahu-conformance: ") and "Traceback" not in done.stderr
    assert not (place / "o").exists()
