"""Tests of conformance.run.runners: local programs and containers (podman, and docker through podman's socket).

Container tests skip, with the reason, when the engine cannot run containers here or the reference images are
missing (build them with ``predictor/build-image.sh``).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import usable_engine

from conformance.run import candidate as candidate_module
from conformance.run import staging
from conformance.run.container import (
    CONTAINER_PREFIX,
    POD_DECOYS,
    ContainerRunner,
    engine_available,
)
from conformance.run.decoys import stage_decoys
from conformance.run.local import LocalRunner
from conformance.run.process import OUTPUT_LIMIT, containment, run_process
from conformance.run.workspace import (
    DOC_ONLY_NAMES,
    ENV_INPUT,
    ENV_MODEL,
    ENV_OUTPUT,
    POD_INPUT,
    POD_MODEL,
    POD_OUTPUT,
    Workspace,
)

REPO = Path(__file__).resolve().parent.parent
PREDICTOR = REPO / "predictor" / "fast.py"
IMAGE = "localhost/odahu/multiplier-predictor:dev"
EMBEDDED_IMAGE = "localhost/odahu/multiplier-predictor-embedded:dev"

REQUEST = {"id": "r1", "inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [10, 20]}]}


# ---------------------------------------------------------------------------------------------------------------
# helpers


def make_workspace(tmp_path: Path, requests: dict | None = None, model: bool = True) -> Workspace:
    """A workspace laid out by hand: input/ with the requests, model/ with multiplier 2, output/ absent."""
    root = tmp_path / "ws"
    (root / "input").mkdir(parents=True)
    for name, body in (requests if requests is not None else {"req.json": REQUEST}).items():
        (root / "input" / name).write_text(json.dumps(body))
    model_dir = None
    if model:
        model_dir = root / "model"
        model_dir.mkdir()
        (model_dir / "multiplier.txt").write_text("2\n")
        (model_dir / "odahuflow.project.yaml").write_text('model:\n  name: multiplier\n  version: "1"\n')
    return Workspace(root=root, input=root / "input", output=root / "output", model=model_dir)


def python_script(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "candidate.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for a reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_dead(pid: int, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def read_pid(path: Path) -> int:
    return int(path.read_text().strip())


def assert_multiplied(result) -> None:
    assert result.start_error is None, result.start_error
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert not result.timed_out
    files = result.json_files()
    assert set(files) == {"req.json"}, [e.path for e in result.entries]
    response = json.loads((result.workspace.output / "req.json").read_bytes())
    assert response["id"] == "r1"
    assert response["model_name"] == "multiplier"
    (out,) = response["outputs"]
    assert (out["name"], out["datatype"], out["shape"], out["data"]) == ("x", "INT32", [2], [20, 40])
    assert result.input_changes == [] and result.model_changes == []


# ---------------------------------------------------------------------------------------------------------------
# local runner


def test_local_reference_predictor_multiplies(tmp_path):
    ws = make_workspace(tmp_path)
    result = LocalRunner([sys.executable, str(PREDICTOR)]).run(ws, timeout=60)
    assert_multiplied(result)
    assert result.output_exists
    assert result.command == [sys.executable, str(PREDICTOR)]


def test_local_environment_has_exactly_the_three_odahu_variables(tmp_path, monkeypatch):
    for name in (*DOC_ONLY_NAMES, "ODAHU_SOMETHING_ELSE", ENV_MODEL, ENV_INPUT):
        monkeypatch.setenv(name, "/from/the/host")
    monkeypatch.setenv("KIT_TEST_KEEP", "kept")
    dump = tmp_path / "ws" / "env.json"  # in the workspace: the rest of the host is read-only for the run
    argv = [sys.executable, "-c", f"import json, os; json.dump(dict(os.environ), open({str(dump)!r}, 'w'))"]
    ws = make_workspace(tmp_path)
    result = LocalRunner(argv).run(ws, timeout=30)
    assert result.exit_code == 0, result.stderr
    env = json.loads(dump.read_text())
    odahu = {k: v for k, v in env.items() if k.startswith("ODAHU_")}
    assert odahu == {ENV_MODEL: str(ws.model), ENV_INPUT: str(ws.input), ENV_OUTPUT: str(ws.output)}
    assert env["KIT_TEST_KEEP"] == "kept"  # the rest of the host environment is passed on


def test_local_model_in_image_path_is_used_when_no_model_is_staged(tmp_path):
    ws = make_workspace(tmp_path, model=False)
    ws.model_in_image = str(tmp_path / "elsewhere")
    dump = tmp_path / "ws" / "model_path.txt"
    argv = [sys.executable, "-c", f"import os; open({str(dump)!r}, 'w').write(os.environ['{ENV_MODEL}'])"]
    result = LocalRunner(argv).run(ws, timeout=30)
    assert result.exit_code == 0, result.stderr
    assert dump.read_text() == ws.model_in_image
    assert result.model_changes == []


def test_local_timeout_kills_the_script_its_child_and_a_double_forked_grandchild(tmp_path):
    pids = tmp_path / "ws" / "pids"
    argv = python_script(
        tmp_path,
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen(["sleep", "60"])
        first = os.fork()
        if first == 0:                       # double fork: the grandchild is orphaned but stays in the group
            grand = os.fork()
            if grand == 0:
                import signal
                signal.signal(signal.SIGTERM, signal.SIG_IGN)   # only SIGKILL ends this one
                time.sleep(60)
                os._exit(0)
            open({str(pids)!r} + ".grand", "w").write(str(grand))
            os._exit(0)
        os.waitpid(first, 0)
        open({str(pids)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(60)
        """,
    )
    ws = make_workspace(tmp_path)
    started = time.monotonic()
    result = LocalRunner(argv).run(ws, timeout=2)
    elapsed = time.monotonic() - started
    assert result.timed_out
    assert result.exit_code is None
    assert result.start_error is None
    assert "started" in result.stdout
    assert elapsed < 10, elapsed
    # The pids the script wrote are those of its own PID namespace: the leftovers give the host's. The child
    # ended with the group's SIGTERM, with the script, so only the grandchild (which ignores it) is left over.
    grand = leftover_host_pid(result, read_pid(Path(str(pids) + ".grand")))
    assert len(result.leftovers) == 1 and "sleep 60" not in result.leftovers[0], result.leftovers
    assert wait_dead(grand), f"grandchild {grand} still running"


def test_local_normal_exit_does_not_wait_for_background_children_and_ends_them(tmp_path):
    pids = tmp_path / "ws" / "pids"
    argv = python_script(
        tmp_path,
        f"""
        import subprocess
        child = subprocess.Popen(["sleep", "60"])   # inherits stdout/stderr: holds the pipes open
        open({str(pids)!r}, "w").write(str(child.pid))
        """,
    )
    ws = make_workspace(tmp_path)
    result = LocalRunner(argv).run(ws, timeout=30)
    assert result.exit_code == 0 and not result.timed_out
    assert result.duration < 10, result.duration
    assert wait_dead(leftover_host_pid(result, read_pid(pids)))


@pytest.mark.parametrize("kind", ["missing", "not-executable"])
def test_local_command_that_cannot_start_gives_a_start_error(tmp_path, kind):
    if kind == "missing":
        argv = [str(tmp_path / "no-such-predictor"), "--flag"]
    else:
        script = tmp_path / "predictor.sh"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o644)
        argv = [str(script)]
    ws = make_workspace(tmp_path)
    result = LocalRunner(argv).run(ws, timeout=10)
    assert result.exit_code is None
    assert not result.timed_out
    assert result.start_error and "\n" not in result.start_error
    assert argv[0] in result.start_error
    assert not result.output_exists


def test_local_empty_command_is_a_start_error(tmp_path):
    result = LocalRunner([]).run(make_workspace(tmp_path), timeout=10)
    assert result.exit_code is None and result.start_error


@pytest.mark.parametrize("cmd, reason", [("   ", "the command is empty"), ("python 'unclosed", "cannot split")])
def test_local_from_string_refuses_what_it_cannot_split(cmd, reason):
    with pytest.raises(ValueError, match=reason) as caught:
        LocalRunner.from_string(cmd)
    assert "\n" not in str(caught.value)


def test_local_writes_into_the_input_folder_are_reported(tmp_path):
    argv = python_script(
        tmp_path,
        """
        import os
        open(os.path.join(os.environ["ODAHU_INPUT_PATH"], "evil.json"), "w").write("{}")
        open(os.path.join(os.environ["ODAHU_INPUT_PATH"], "req.json"), "a").write(" ")
        """,
    )
    ws = make_workspace(tmp_path)
    result = LocalRunner(argv).run(ws, timeout=30)
    assert result.exit_code == 0, result.stderr
    assert result.input_changes == ["added evil.json", "modified req.json"]
    assert result.model_changes == []


def test_local_writes_into_the_model_folder_are_reported(tmp_path):
    argv = python_script(
        tmp_path,
        """
        import os
        os.remove(os.path.join(os.environ["ODAHU_MODEL_PATH"], "multiplier.txt"))
        """,
    )
    ws = make_workspace(tmp_path)
    result = LocalRunner(argv).run(ws, timeout=30)
    assert result.model_changes == ["removed multiplier.txt"]
    assert result.input_changes == []


def test_local_output_entries_include_non_json_files_and_subfolders(tmp_path):
    argv = python_script(
        tmp_path,
        """
        import os
        out = os.environ["ODAHU_OUTPUT_PATH"]
        os.makedirs(os.path.join(out, "nested"))
        open(os.path.join(out, "req.json"), "w").write("{}")
        open(os.path.join(out, "req.txt"), "w").write("not json")
        open(os.path.join(out, "nested", "deep.json"), "w").write("{}")
        """,
    )
    ws = make_workspace(tmp_path)
    result = LocalRunner(argv).run(ws, timeout=30)
    assert result.exit_code == 0, result.stderr
    assert result.output_exists
    kinds = {e.path: e.kind for e in result.entries}
    assert kinds == {"req.json": "file", "req.txt": "file", "nested": "dir", "nested/deep.json": "file"}
    assert set(result.json_files()) == {"req.json"}
    (txt,) = [e for e in result.entries if e.path == "req.txt"]
    assert txt.size == len(b"not json")


def test_local_output_folder_absent_when_the_candidate_writes_nothing(tmp_path):
    ws = make_workspace(tmp_path)
    result = LocalRunner([sys.executable, "-c", "pass"]).run(ws, timeout=30)
    assert result.exit_code == 0
    assert not result.output_exists
    assert result.entries == []
    assert not ws.output.exists()


def test_local_exit_code_and_streams_are_captured(tmp_path):
    argv = [sys.executable, "-c", "import sys; print('to out'); print('to err', file=sys.stderr); sys.exit(5)"]
    result = LocalRunner(argv).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code == 5
    assert result.stdout.strip() == "to out" and result.stderr.strip() == "to err"


def test_local_stdout_is_bounded_and_says_it_was_truncated(tmp_path):
    size = 3 * OUTPUT_LIMIT
    argv = [sys.executable, "-c", f"import sys; sys.stdout.write('z' * {size}); sys.stderr.write('done')"]
    result = LocalRunner(argv).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code == 0
    assert result.stdout.count("z") == OUTPUT_LIMIT
    assert "truncated" in result.stdout and str(size) in result.stdout
    assert result.stderr == "done"


def test_local_from_string_splits_like_a_shell_and_describe_reproduces(tmp_path):
    runner = LocalRunner.from_string(f"{sys.executable} -c 'import sys; print(sys.argv[1:])' 'two words'")
    result = runner.run(make_workspace(tmp_path), timeout=30)
    assert result.stdout.strip() == "['two words']"
    ws = make_workspace(tmp_path / "other")
    line = runner.describe(ws)
    assert f"{ENV_INPUT}={ws.input}" in line and "'two words'" in line
    assert "\n" not in runner.describe()


# ---------------------------------------------------------------------------------------------------------------
# local runner: containment of what a candidate leaves running, start problems found beforehand


def isolations() -> list:
    """Both containment modes; the PID namespace one skips (with the reason) where it cannot be made."""
    mode, _, reason = containment("namespace")
    namespace = pytest.param("namespace", marks=pytest.mark.skipif(mode is None, reason=reason or "no namespace"))
    return [namespace, "sweep"]


DAEMON = """
import os, sys, time
pid_file = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pid_file + ".tmp", pid_file)
        os.execvp("sleep", ["sleep", "60"])
    os._exit(0)
os.wait()
while not os.path.exists(pid_file):
    time.sleep(0.01)
print("main done")
"""


def leftover_host_pid(result, own_pid: int) -> int:
    """The host pid of the leftover whose own pid (inside its namespace, or on the host) is ``own_pid``."""
    for line in result.leftovers:
        head = line.split(":", 1)[0]  # "pid H" or "pid H (pid N in the run's namespace)"
        numbers = [int(word.strip("()")) for word in head.split() if word.strip("()").isdigit()]
        if own_pid in numbers:
            return numbers[0]
    raise AssertionError(f"pid {own_pid} is not among the leftovers {result.leftovers}")


@pytest.mark.parametrize("isolation", isolations())
def test_local_daemon_is_killed_and_reported(tmp_path, isolation):
    pid_file = tmp_path / "ws" / "daemon.pid"
    argv = [sys.executable, "-c", DAEMON, str(pid_file)]
    result = LocalRunner(argv, isolation=isolation).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code == 0 and result.start_error is None, (result.stderr, result.start_error)
    assert result.stdout.strip() == "main done"
    assert len(result.leftovers) == 1 and "sleep 60" in result.leftovers[0], result.leftovers
    host_pid = leftover_host_pid(result, read_pid(pid_file))
    assert wait_dead(host_pid, within=2), f"the daemon {host_pid} is still running"
    assert "\n" not in result.leftovers[0]


@pytest.mark.parametrize("isolation", isolations())
def test_local_background_child_is_killed_and_reported(tmp_path, isolation):
    pid_file = tmp_path / "ws" / "child.pid"
    script = f"import subprocess; p = subprocess.Popen(['sleep', '61']); open({str(pid_file)!r}, 'w').write(str(p.pid))"
    result = LocalRunner([sys.executable, "-c", script], isolation=isolation).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code == 0, result.stderr
    host_pid = leftover_host_pid(result, read_pid(pid_file))
    assert "sleep 61" in result.leftovers[0]
    assert wait_dead(host_pid, within=2)


@pytest.mark.parametrize("isolation", isolations())
def test_local_normal_candidate_leaves_nothing(tmp_path, isolation):
    ws = make_workspace(tmp_path)
    result = LocalRunner([sys.executable, str(PREDICTOR)], isolation=isolation).run(ws, timeout=60)
    assert_multiplied(result)
    assert result.leftovers == []
    script = "import subprocess; subprocess.run(['true'], check=True)"  # children that ended are no leftovers
    result = LocalRunner([sys.executable, "-c", script], isolation=isolation).run(make_workspace(tmp_path / "b"), timeout=30)
    assert result.exit_code == 0 and result.leftovers == []


@pytest.mark.parametrize("isolation", isolations())
def test_local_timeout_kills_the_main_process_and_its_daemon(tmp_path, isolation):
    pid_file = tmp_path / "ws" / "daemon.pid"
    # the main process ignores SIGTERM, so it is only killed by the SIGKILL after the grace
    argv = [sys.executable, "-c", DAEMON + "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n",
            str(pid_file)]
    started = time.monotonic()
    result = LocalRunner(argv, isolation=isolation).run(make_workspace(tmp_path), timeout=2)
    assert result.timed_out and result.exit_code is None
    assert time.monotonic() - started < 10
    assert len(result.leftovers) == 1 and "sleep 60" in result.leftovers[0], result.leftovers  # not the main one
    assert wait_dead(leftover_host_pid(result, read_pid(pid_file)), within=2)
    mine = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and str(pid_file).encode() in _cmdline(p)]
    assert all(wait_dead(pid, within=2) for pid in mine), [_cmdline(Path(f"/proc/{pid}"))[:300] for pid in mine]


def _cmdline(proc_dir: Path) -> bytes:
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("isolation", isolations())
def test_local_exit_status_and_signals_are_as_without_containment(tmp_path, isolation):
    cases = {
        "import sys; sys.exit(3)": 3,
        "import os, signal; os.kill(os.getpid(), signal.SIGTERM)": -signal.SIGTERM,  # SIGTERM has its default action
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)": -signal.SIGKILL,
        "import os; os.close(1); os.close(2)": 0,
    }
    for i, (script, code) in enumerate(cases.items()):
        result = LocalRunner([sys.executable, "-c", script], isolation=isolation).run(make_workspace(tmp_path / str(i)), timeout=30)
        assert result.exit_code == code, (script, result.stderr)
        assert not result.timed_out and result.start_error is None and result.leftovers == []
    # the signal dispositions and mask a directly started program gets
    look = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]
    plain = run_process(look, None, None, 30)
    contained = LocalRunner(look, isolation=isolation).run(make_workspace(tmp_path / "sig"), timeout=30)
    assert contained.stdout == plain.stdout and plain.stdout.count("Sig") == 2


@pytest.mark.parametrize("isolation", isolations())
def test_local_environment_is_exactly_the_runners(tmp_path, monkeypatch, isolation):
    # a C locale makes Python coerce LC_CTYPE at start-up: the kit's supervisor must not pass that on
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.setenv("LANG", "C")
    monkeypatch.setenv("KIT_ODD_VALUE", "two\nlines = and spaces")
    dump = tmp_path / "ws" / "environ"
    runner = LocalRunner(["cp", "/proc/self/environ", str(dump)], isolation=isolation)
    ws = make_workspace(tmp_path)
    result = runner.run(ws, timeout=30)
    assert result.exit_code == 0, result.stderr
    seen = dict(item.split("=", 1) for item in dump.read_text().split("\0") if item)
    assert seen == runner.environment(ws)


@pytest.mark.parametrize("isolation", isolations())
def test_local_stdout_and_stderr_captured_under_containment(tmp_path, isolation):
    argv = [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)"]
    result = LocalRunner(argv, isolation=isolation).run(make_workspace(tmp_path), timeout=30)
    assert (result.exit_code, result.stdout, result.stderr) == (4, "out\n", "err\n")


@pytest.mark.parametrize("isolation", isolations())
def test_local_offline_runs_without_network_and_composes_with_an_unshare_prefix(tmp_path, isolation):
    mode, _, reason = containment(isolation, offline=True)
    if mode is None:
        pytest.skip(reason)
    look = [sys.executable, "-c", "print(len(open('/proc/net/dev').read().splitlines()) - 2)"]  # interfaces
    result = LocalRunner(look, isolation=isolation, offline=True).run(make_workspace(tmp_path / "a"), timeout=30)
    assert (result.exit_code, result.stdout.strip()) == (0, "1"), result.stderr  # only lo
    # the P-OFFLINE test's own prefix (unshare --net -- ARGV) still runs, and leftovers are still found
    prefix = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    pid_file = tmp_path / "b" / "ws" / "daemon.pid"
    result = LocalRunner([*prefix, "--", sys.executable, "-c", DAEMON, str(pid_file)], isolation=isolation).run(
        make_workspace(tmp_path / "b"), timeout=30)
    assert result.exit_code == 0, (result.stderr, result.start_error)
    assert wait_dead(leftover_host_pid(result, read_pid(pid_file)), within=2)


def test_local_containment_overhead_is_small(tmp_path):
    """Per run, on a trivial candidate: the supervisor (and namespace) cost a few milliseconds."""

    def per_run(isolation: str | None) -> float:
        times = []
        for i in range(10):
            ws = make_workspace(tmp_path / f"{isolation}-{i}")
            started = time.perf_counter()
            if isolation is None:
                run_process([sys.executable, "-c", "pass"], None, None, 30)
            else:
                LocalRunner([sys.executable, "-c", "pass"], isolation=isolation).run(ws, timeout=30)
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    plain, auto = per_run(None), per_run("auto")
    print(f"median per run: {plain * 1000:.1f} ms without containment, {auto * 1000:.1f} ms with "
          f"({LocalRunner(['true']).containment()})")
    assert auto - plain < 0.25


def test_local_unknown_isolation_is_refused():
    with pytest.raises(ValueError):
        LocalRunner(["true"], isolation="chroot")


@pytest.mark.parametrize("isolation", isolations())
def test_local_programs_that_cannot_start(tmp_path, monkeypatch, isolation):
    not_executable = tmp_path / "predict.sh"
    not_executable.write_text("#!/bin/sh\necho hi\n")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    (path_dir / "on-path-not-executable").write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", f"{path_dir}{os.pathsep}{os.environ['PATH']}")
    cases = [
        ([str(tmp_path / "no-such-predictor")], "command not found"),
        (["no-such-predictor-anywhere"], "command not found"),
        ([str(not_executable)], "permission denied"),
        ([str(folder)], "permission denied"),
        (["on-path-not-executable"], "permission denied"),
    ]
    for i, (argv, why) in enumerate(cases):
        runner = LocalRunner(argv, isolation=isolation)
        problem = runner.preflight()
        assert problem and why in problem and "\n" not in problem, (argv, problem)
        result = runner.run(make_workspace(tmp_path / f"ws{i}"), timeout=30)
        assert result.exit_code is None and result.start_error == problem, (argv, result.start_error)
    runner = LocalRunner(["predict.sh"], cwd=tmp_path / "missing-folder", isolation=isolation)
    assert "does not exist" in runner.preflight()
    relative = LocalRunner(["./predict.sh"], cwd=tmp_path, isolation=isolation)
    assert "permission denied" in relative.preflight()
    not_executable.chmod(0o755)
    assert relative.preflight() is None
    result = relative.run(make_workspace(tmp_path / "ok"), timeout=30)
    assert (result.exit_code, result.stdout) == (0, "hi\n")
    assert LocalRunner([sys.executable, str(PREDICTOR)], isolation=isolation).preflight() is None


def test_local_exec_failure_after_the_checks_is_a_start_error(tmp_path):
    bad = tmp_path / "bad-interpreter"
    bad.write_text("#!/no/such/interpreter\n")
    bad.chmod(0o755)
    result = LocalRunner([str(bad)]).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code is None and result.start_error and "command not found" in result.start_error


def test_candidate_preflight_of_a_local_command(tmp_path):
    assert candidate_module.from_options(cmd=f"{sys.executable} {PREDICTOR}").preflight() is None
    problem = candidate_module.from_options(cmd="no-such-predictor-anywhere --fast").preflight()
    assert problem == "cannot start 'no-such-predictor-anywhere': command not found"


FAKE_ENGINE = """#!/bin/sh
# An engine that answers 'info' and 'image inspect' from files next to it (no containers are run).
here="$(dirname "$0")"
case "$1" in
  info) exec cat "$here/info" ;;
  image)
    if [ -f "$here/image.json" ]; then cat "$here/image.json"; exit 0; fi
    echo "Error: $4: image not known" >&2; exit 125 ;;
  run) echo "Error: no command specified" >&2; exit 125 ;;
  *) exit 125 ;;
esac
"""


@pytest.fixture
def fake_engine(tmp_path, monkeypatch):
    """Install a fake ``docker`` and ``podman`` on PATH; return the folder that holds their canned answers."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name in ("docker", "podman"):
        (bin_dir / name).write_text(FAKE_ENGINE)
        (bin_dir / name).chmod(0o755)
    (bin_dir / "info").write_text("host: fake\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    return bin_dir


def inspected(entrypoint, cmd) -> str:
    return json.dumps([{"Id": "sha256:0123", "Config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": ["PATH=/bin"]}}])


@pytest.mark.parametrize("name", ["docker", "podman"])
def test_image_preflight_with_a_fake_engine(fake_engine, name, tmp_path):
    runner = ContainerRunner(name, IMAGE)
    assert "not available" in runner.preflight() and "image not known" in runner.preflight()
    (fake_engine / "image.json").write_text(inspected(["python3", "/opt/predictor/fast.py"], None))
    assert runner.preflight() is None
    (fake_engine / "image.json").write_text(inspected(None, ["python3", "/opt/predictor/fast.py"]))
    assert runner.preflight() is None
    (fake_engine / "image.json").write_text(inspected(None, None))
    problem = runner.preflight()
    assert problem and "neither ENTRYPOINT nor CMD" in problem and "\n" not in problem
    assert ContainerRunner(name, IMAGE, command=["python3", "/p.py"]).preflight() is None
    assert ContainerRunner(name, IMAGE, args=["python3", "/p.py"]).preflight() is None
    result = runner.run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code is None and result.start_error == problem
    (fake_engine / "info").unlink()  # 'info' now fails: the engine cannot run containers
    problem = runner.preflight()
    assert problem and problem.startswith(f"'{name} info' failed") and "\n" not in problem


def test_candidate_preflight_of_an_image(fake_engine, tmp_path):
    (fake_engine / "image.json").write_text(inspected(None, None))
    candidate = candidate_module.from_options(image=IMAGE, engine="podman")
    assert "neither ENTRYPOINT nor CMD" in candidate.preflight()
    (fake_engine / "image.json").unlink()
    assert f"image {IMAGE} is not available to podman" in candidate.preflight()


# ---------------------------------------------------------------------------------------------------------------
# containers


@pytest.fixture(scope="module", params=["podman", "docker"])
def engine(request) -> str:
    return usable_engine(request.param, (IMAGE, EMBEDDED_IMAGE))


def container_name(result) -> str:
    return result.command[result.command.index("--name") + 1]


CREATED: list[str] = []  # every container name these tests ran


def assert_removed(engine: str, result) -> None:
    """No container these tests ran is left (listed by the kit's prefix), and the pod folder is gone.

    Only this module's own names are looked for, so that a suite running at the same time does not make it flaky.
    """
    name = container_name(result)
    assert name.startswith(CONTAINER_PREFIX)
    CREATED.append(name)
    listed = subprocess.run(
        [engine, "ps", "-a", "--filter", f"name={CONTAINER_PREFIX}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert [n for n in listed.stdout.split() if n in CREATED] == []
    assert not any(p.name.startswith(".odahu-pod-") for p in result.workspace.output.parent.iterdir())


def test_container_reference_image_multiplies(engine, tmp_path):
    ws = make_workspace(tmp_path)
    result = ContainerRunner(engine, IMAGE).run(ws, timeout=60)
    assert_multiplied(result)
    assert (ws.output / "req.json").is_file()
    for flag in ("--network", "--memory", "--cpus", "--pids-limit", "--user"):
        assert flag in result.command
    assert "--rm" not in result.command
    assert_removed(engine, result)


def test_container_on_a_staged_workspace(engine, tmp_path):
    """The layout staging makes (input/, model/ and raw-output/ side by side in one root) works unchanged."""
    ws = staging.new_workspace(tmp_path)
    staging.stage_requests(ws, [("req.json", json.dumps(REQUEST).encode())])
    staging.stage_model(ws, REPO / "model")
    result = ContainerRunner(engine, IMAGE).run(ws, timeout=60)
    assert_multiplied(result)
    assert sorted(p.name for p in ws.root.iterdir()) == sorted([ws.input.name, ws.model.name, ws.output.name])
    assert_removed(engine, result)
    staging.remove_workspace(ws)


def test_container_embedded_model_image(engine, tmp_path):
    ws = make_workspace(tmp_path, model=False)
    ws.model_in_image = "/opt/model"
    result = ContainerRunner(engine, EMBEDDED_IMAGE).run(ws, timeout=60)
    assert_multiplied(result)
    assert f"{ENV_MODEL}=/opt/model" in result.command
    assert not any(arg.endswith(":/workspace/odahu-ws-model:ro") for arg in result.command)
    assert_removed(engine, result)


def test_container_layout_user_and_fresh_output_folder(engine, tmp_path):
    script = (
        f'test "$(pwd)" != x && test ! -e "${ENV_OUTPUT}" && test "${ENV_OUTPUT}" = {POD_OUTPUT} '
        f'&& test "${ENV_INPUT}" = {POD_INPUT} && test -r "${ENV_INPUT}/req.json" '
        f'&& mkdir -p "${ENV_OUTPUT}/sub" && echo "{{}}" > "${ENV_OUTPUT}/a.json" && id -u'
    )
    ws = make_workspace(tmp_path)
    result = ContainerRunner(engine, IMAGE, command=["sh", "-c", script]).run(ws, timeout=60)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout.strip() == "1000"
    assert result.command[result.command.index("--user") + 1] == "1000:1000"
    assert {e.path: e.kind for e in result.entries} == {"a.json": "file", "sub": "dir"}
    assert_removed(engine, result)


def test_container_output_folder_that_exists_beforehand_is_used_and_kept(engine, tmp_path):
    ws = make_workspace(tmp_path)
    ws.output.mkdir()
    (ws.output / "old.txt").write_text("from before")
    script = f'test -d "${ENV_OUTPUT}" && cat "${ENV_OUTPUT}/old.txt" && echo "{{}}" > "${ENV_OUTPUT}/new.json"'
    result = ContainerRunner(engine, IMAGE, command=["sh", "-c", script]).run(ws, timeout=60)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout.strip() == "from before"
    assert sorted(e.path for e in result.entries) == ["new.json", "old.txt"]
    assert_removed(engine, result)


def test_container_input_and_model_are_read_only(engine, tmp_path):
    # as root inside the container, so that only the read-only mounts can stop the writes
    script = f'for d in "${ENV_INPUT}" "${ENV_MODEL}"; do if echo x > "$d/evil.json"; then exit 0; fi; done; exit 7'
    ws = make_workspace(tmp_path)
    result = ContainerRunner(engine, IMAGE, command=["sh", "-c", script], user="0:0").run(ws, timeout=60)
    assert result.exit_code == 7, (result.stdout, result.stderr)
    assert "Read-only" in result.stderr or "read-only" in result.stderr.lower()
    assert result.input_changes == [] and result.model_changes == []
    assert not (ws.input / "evil.json").exists() and not (ws.model / "evil.json").exists()
    assert_removed(engine, result)


def test_container_exit_code_of_a_failing_container(engine, tmp_path):
    ws = make_workspace(tmp_path)
    result = ContainerRunner(engine, IMAGE, command=["sh", "-c"], args=["echo oops >&2; exit 3"]).run(ws, timeout=60)
    assert result.exit_code == 3
    assert result.start_error is None and not result.timed_out
    assert "oops" in result.stderr
    assert not result.output_exists
    assert_removed(engine, result)


def test_container_timeout_kills_and_removes_the_container(engine, tmp_path):
    ws = make_workspace(tmp_path)
    started = time.monotonic()
    result = ContainerRunner(engine, IMAGE, command=["sleep", "60"]).run(ws, timeout=3)
    elapsed = time.monotonic() - started
    assert result.timed_out and result.exit_code is None
    assert elapsed < 15, elapsed
    assert_removed(engine, result)


def test_container_missing_image_is_a_start_error(engine, tmp_path):
    ws = make_workspace(tmp_path)
    result = ContainerRunner(engine, "localhost/odahu/no-such-image:never").run(ws, timeout=30)
    assert result.exit_code is None
    assert result.start_error and "no-such-image" in result.start_error and "\n" not in result.start_error


def test_container_entrypoint_that_does_not_exist_is_a_start_error(engine, tmp_path):
    ws = make_workspace(tmp_path)
    result = ContainerRunner(engine, IMAGE, command=["/no/such/predictor"]).run(ws, timeout=30)
    assert result.exit_code is None
    assert result.start_error and "\n" not in result.start_error
    assert_removed(engine, result)


FAKE_DOCKER = """#!/bin/sh
# A docker client like podman 4.3's socket can make it: the run's own exit status is wrong (always 0).
echo "$*" >> "$(dirname "$0")/calls.log"
case "$1" in
  image) exit 0 ;;
  run) echo ran; exit 0 ;;
  inspect) echo '{"Status":"exited","ExitCode":3,"OOMKilled":false,"StartedAt":"2024-01-01T00:00:00Z","Error":""}' ;;
  rm|kill) exit 0 ;;
  *) exit 1 ;;
esac
"""


def test_container_docker_exit_code_comes_from_inspect_and_the_container_is_removed(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(FAKE_DOCKER)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = ContainerRunner("docker", IMAGE).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code == 3
    assert "client exited 0" in result.stderr
    calls = (bin_dir / "calls.log").read_text().splitlines()
    assert calls[-1] == f"rm -f {container_name(result)}"
    assert "--rm" not in calls[1].split()


@pytest.mark.parametrize("name", ["docker", "podman"])
def test_container_engine_not_installed_is_a_start_error(tmp_path, monkeypatch, name):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    assert engine_available(name)[0] is False
    result = ContainerRunner(name, IMAGE).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code is None
    assert result.start_error == f"{name} is not installed (not found on PATH)"


def test_container_describe_is_one_reproducible_line(tmp_path):
    runner = ContainerRunner("podman", IMAGE, command=["python3", "/opt/predictor/fast.py"], args=["-v"])
    line = runner.describe()
    assert "\n" not in line and line.startswith("podman run ")
    assert "--entrypoint python3" in line and line.endswith(f"{IMAGE} /opt/predictor/fast.py -v")
    ws = make_workspace(tmp_path)
    assert f"{ws.input}:{POD_INPUT}:ro" in runner.describe(ws)
    with pytest.raises(ValueError):
        ContainerRunner("containerd", IMAGE)


def test_container_decoys_are_mounted_and_named_by_the_docs_variables(tmp_path):
    """P-ENV's decoys reach an image too: input and model read-only, the output path in the writable pod."""
    ws = make_workspace(tmp_path)
    stage_decoys(ws)
    argv = shlex.split(ContainerRunner("podman", IMAGE).describe(ws).split(" && ")[-1])
    variables = {argv[i + 1].split("=")[0]: argv[i + 1].split("=", 1)[1] for i, a in enumerate(argv) if a == "-e"}
    assert variables == {"ODAHU_MODEL_PATH": POD_MODEL, "ODAHU_INPUT_PATH": POD_INPUT,
                         "ODAHU_OUTPUT_PATH": POD_OUTPUT, **POD_DECOYS}
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    assert f"{ws.decoys['ODAHU_MODEL_INPUT']}:{POD_DECOYS['ODAHU_MODEL_INPUT']}:ro" in mounts
    assert f"{ws.model}:{POD_DECOYS['ODAHU_MODEL']}:ro" in mounts
    assert not any("decoy-output" in mount for mount in mounts)


def test_container_reproduction_makes_its_pod_folder_and_can_be_pasted_twice(tmp_path):
    """The printed line makes the pod folder the run had (it is removed after a run), and uses --rm, not a fixed
    name, so a second paste does not hit a name conflict. A fake podman checks what it is given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "podman"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do case "$a" in --name) exit 3;; *:/workspace) '
                    'd="${a%:/workspace}"; [ -d "$d" ] || exit 4; touch "$d/ran";; esac; done\n')
    fake.chmod(0o755)
    ws = make_workspace(tmp_path)
    line = ContainerRunner("podman", IMAGE).describe(ws)
    assert "--rm" in line.split() and "--name" not in line.split()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for _ in range(2):
        done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)
    assert (ws.root / "repro-pod" / "ran").is_file()


def test_kept_workspaces_are_capped_and_a_released_one_gives_its_share_back(tmp_path):
    """At most keep_limit failed workspaces and keep_bytes of their output; releasing one (the shrinker found a
    smaller failure) frees its place and its bytes for the next."""
    candidate = candidate_module.from_options(cmd=f"{sys.executable} {PREDICTOR}", workspace_base=tmp_path)
    candidate.keep_limit, candidate.keep_bytes = 2, 1 << 20
    runs = [candidate.run([("a.json", json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32",
                                                               "data": [i]}]}).encode())]) for i in range(3)]
    kept = [candidate.keep(result) for result in runs]
    assert kept[:2] == [runs[0].workspace.root, runs[1].workspace.root] and kept[2] is None
    assert candidate.not_kept == 1 and not runs[2].workspace.root.exists() and candidate.kept_bytes > 0
    candidate.release(runs[0])
    assert not runs[0].workspace.root.exists() and candidate.kept == [runs[1].workspace.root]
    again = candidate.run([("b.json", b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [5]}]}')])
    assert candidate.keep(again) == again.workspace.root
    candidate.release(runs[1])
    candidate.release(again)
    assert candidate.kept == [] and candidate.kept_bytes == 0


# ---------------------------------------------------------------------------------------------------------------
# SIGTERM (what a cancelled CI job sends) stops the kit as Ctrl-C does

SLEEPER = """
import os, subprocess, sys, time
marker = sys.argv[1]
subprocess.Popen(["sleep", "300", marker], start_new_session=True)  # a daemon of its own, beside the sleeper
time.sleep(300)
"""


def _processes_naming(token: str) -> list[int]:
    """Host pids of live processes whose command line contains ``token``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline and alive(int(name)):
                found.append(int(name))
    return found


@pytest.mark.parametrize("front", ["run", "pytest"])
def test_sigterm_stops_the_candidate_and_writes_an_incomplete_report(tmp_path, front):
    marker = tmp_path / f"sleeper-{os.getpid()}-{time.monotonic_ns()}.pids"
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    report = tmp_path / "r.json"
    cmd = shlex.join([sys.executable, str(script), str(marker)])
    if front == "run":
        argv = ["-m", "conformance", "run", "--cmd", cmd, "--report", str(report), "--run-timeout", "120"]
    else:
        argv = ["-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "--predictor-cmd", cmd,
                "--conformance-report", str(report), "--run-timeout", "120"]
    kit = subprocess.Popen([sys.executable, *argv], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        end = time.monotonic() + 60  # the sleeper and its daemon, seen from the host
        while len(_processes_naming(marker.name)) < 2 and time.monotonic() < end and kit.poll() is None:
            time.sleep(0.05)
        assert len(_processes_naming(marker.name)) >= 2, "the sleeper never started"
        kit.send_signal(signal.SIGTERM)
        out, _ = kit.communicate(timeout=60)
    finally:
        if kit.poll() is None:
            kit.kill()
            kit.wait()
    assert kit.returncode not in (0, -signal.SIGTERM), out.decode(errors="replace")[-2000:]
    assert report.is_file(), (kit.returncode, out.decode(errors="replace")[-3000:])  # (what it said, when not)
    made = json.loads(report.read_text())
    assert made["status"] == "incomplete", made["status"]
    end = time.monotonic() + 5
    while _processes_naming(marker.name) and time.monotonic() < end:
        time.sleep(0.05)
    assert _processes_naming(marker.name) == [], "candidate processes survived the kit"
    from conformance.run.process import _MemoryCage

    probe = _MemoryCage(1 << 30)  # where the kit makes its memory cgroups here
    probe.remove()
    if probe.folder is not None:
        assert list(probe.folder.parent.glob(f"odahu-conformance-{kit.pid}-*")) == [], "a memory cgroup was left"


LATE_WRITER = """
import os, time
out = os.environ["ODAHU_OUTPUT_PATH"]
os.makedirs(out)
parent = os.getpid()
if os.fork() == 0:
    os.setsid()
    while os.getppid() == parent:  # until the main process is gone (the orphan is re-parented)
        time.sleep(0.001)
    for n in range(100):
        open(os.path.join(out, "late-%d.json" % n), "w").close()
        time.sleep(0.01)
    os._exit(0)
"""


@pytest.mark.parametrize("isolation", isolations())
def test_local_leftovers_are_stopped_when_the_main_process_exits_and_later_writes_are_not_judged(tmp_path, isolation):
    # As in a pod, what is left running ends with the main process: a file it writes 0.1 s later is not judged
    # (the kit used to give leftovers 0.2 s to end by themselves, and took what they wrote meanwhile).
    result = LocalRunner([sys.executable, "-c", LATE_WRITER], isolation=isolation).run(make_workspace(tmp_path), timeout=30)
    assert result.exit_code == 0, result.stderr
    assert len(result.leftovers) == 1, result.leftovers
    late = [entry.path for entry in result.entries if entry.path.startswith("late-")]
    assert len(late) < 10, f"{len(late)} files written after the main process exited were collected"


# ---------------------------------------------------------------------------------------------------------------
# memory: a local run has an image's limit, and an OOM kill is reported as an image's is

HOG = "import sys; hog = b'x' * (400 << 20); print('survived', len(hog))"


def test_local_and_image_runs_have_the_same_memory_limit():
    assert LocalRunner(["true"]).memory == ContainerRunner("podman", "img").memory == "2g"
    with pytest.raises(ValueError, match="not a memory size"):
        LocalRunner(["true"], memory="lots")


@pytest.mark.parametrize("isolation", isolations())
def test_local_run_over_its_memory_limit_is_stopped_and_said_so(tmp_path, isolation):
    from conformance.run.process import _MemoryCage, oom_note

    runner = LocalRunner([sys.executable, "-c", HOG], isolation=isolation, memory="200m")
    result = runner.run(make_workspace(tmp_path), timeout=60)
    assert "survived" not in result.stdout and result.exit_code != 0, (result.exit_code, result.stderr[-500:])
    cage = _MemoryCage(200 << 20)
    cage.remove()
    if cage.folder is not None:  # a cgroup: the kernel's OOM killer, said as an image's run says it
        assert result.exit_code == -signal.SIGKILL, (result.exit_code, result.stderr[-500:])
        assert result.stderr.rstrip().endswith(oom_note("200m")), result.stderr[-500:]
    else:  # RLIMIT_DATA: the allocation fails
        assert "MemoryError" in result.stderr, result.stderr[-500:]
    small = LocalRunner([sys.executable, "-c", HOG.replace("400", "20")], isolation=isolation, memory="200m")
    assert small.run(make_workspace(tmp_path / "b"), timeout=60).exit_code == 0


# ---------------------------------------------------------------------------------------------------------------
# a local run sees the host read-only, as an image sees only its mounts

SCRIBBLER = """
import os, sys
out = os.environ["ODAHU_OUTPUT_PATH"]
os.makedirs(out)
for target in sys.argv[1:]:
    try:
        with open(target, "w") as f:
            f.write("scribbled")
        print("wrote", target)
    except OSError as exc:
        print("refused", target, exc.strerror)
with open(os.path.join(out, "a.json"), "w") as f:
    f.write("{}")
"""


def test_local_run_sees_the_host_read_only_but_its_workspace_and_a_private_tmp(tmp_path):
    mode, _, reason = containment("namespace")
    if mode is None:
        pytest.skip(reason)
    token = f"odahu-scribble-{os.getpid()}-{time.monotonic_ns()}"
    home, checkout = Path.home() / token, REPO / token
    in_tmp = Path("/tmp") / token
    beside = tmp_path / token  # next to the workspace, on the host's /tmp
    ws = make_workspace(tmp_path)
    targets = [home, checkout, in_tmp, beside, ws.root / "scratch.txt"]
    try:
        runner = LocalRunner([sys.executable, "-c", SCRIBBLER, *map(str, targets)], cwd=REPO)
        assert runner.containment().endswith("host read-only")
        result = runner.run(ws, timeout=30)
        assert result.exit_code == 0, result.stderr
        said = result.stdout.splitlines()
        assert f"refused {home} Read-only file system" in said
        # the checkout is refused, or, when it lies under /tmp (a CI clone), written into the private /tmp layer
        assert f"refused {checkout} Read-only file system" in said or (
            REPO.resolve().is_relative_to("/tmp") and f"wrote {checkout}" in said)
        assert f"wrote {in_tmp}" in said and f"wrote {beside}" in said  # a private /tmp, as a pod's own
        assert [path for path in targets[:4] if path.exists()] == []
        assert (ws.root / "scratch.txt").read_text() == "scribbled"  # the pod's /workspace
        assert result.json_files() == ["a.json"] or set(result.json_files()) == {"a.json"}
        assert result.stderr == ""
    finally:
        for path in targets[:4]:
            if path.exists():
                path.unlink()
    plain = LocalRunner([sys.executable, "-c", SCRIBBLER, str(beside)], readonly_host=False)
    assert plain.containment().endswith("host writable")
    assert plain.run(make_workspace(tmp_path / "b"), timeout=30).exit_code == 0 and beside.read_text() == "scribbled"


def test_a_local_runs_containment_says_what_of_an_images_limits_is_not_enforced():
    """The report carries the runner's containment line: a subreaper sweep cannot make the host read-only, and
    says so (the digest then prints a 'not enforced' line); a PID namespace can."""
    sweep = LocalRunner([sys.executable, "-c", "pass"], isolation="sweep").containment()
    assert sweep.startswith("subreaper sweep") and sweep.endswith("host writable"), sweep
    if shutil.which("unshare") is not None and LocalRunner([sys.executable], isolation="auto").containment().startswith("own PID"):
        assert LocalRunner([sys.executable, "-c", "pass"]).containment().endswith("host read-only")
