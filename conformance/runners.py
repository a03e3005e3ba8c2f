"""Run a candidate predictor on a staged ``Workspace``, the way the ODAHU operator runs the predictor step.

Two runners share one interface, ``run(ws, timeout) -> RunResult``, and one ``describe(ws=None)``:

- ``LocalRunner``: a local program (no shell), in its own process group, with the host environment minus every
  ``ODAHU_*`` variable plus exactly ``ODAHU_MODEL_PATH`` / ``ODAHU_INPUT_PATH`` / ``ODAHU_OUTPUT_PATH``.
- ``ContainerRunner``: an OCI image under ``docker`` or ``podman``: no network, memory / CPU / pid limits, a
  non-root user, input and model mounted read-only at the pod's paths, and a writable ``/workspace`` in which
  ``/workspace/odahu-ws-raw-output`` does not exist beforehand (as in the pod).

Both enforce the timeout (the whole process group, or the container, is killed and the run marked
``timed_out``), capture stdout and stderr (bounded), fingerprint the input and model folders before and after
(P-READONLY), and collect every entry of the output folder. Problems starting the candidate (program not found,
engine missing, image missing) come back as ``RunResult.start_error``, never as exceptions.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from .staging import changes, collect_outputs, folder_digest
from .workspace import ENV_INPUT, ENV_MODEL, ENV_OUTPUT, POD_INPUT, POD_MODEL, POD_OUTPUT, RunResult, Workspace

__all__ = ["Runner", "LocalRunner", "ContainerRunner", "engine_available", "CONTAINER_PREFIX", "OUTPUT_LIMIT"]

#: At most this many bytes of stdout and of stderr are kept per run (the rest is read and counted, not kept).
OUTPUT_LIMIT = 1024 * 1024
#: Every container the kit starts is named ``CONTAINER_PREFIX + random``, so leftovers are easy to find.
CONTAINER_PREFIX = "odahu-conformance-"
#: The writable folder the pod has; the output folder is created inside it by the candidate.
POD_WORKSPACE = str(Path(POD_OUTPUT).parent)
#: Container rlimits no higher than the engine's own hard limits (see the design notes on podman here).
ULIMITS = ("nofile=20000:20000", "nproc=32768:32768")

#: A run that writes more than this into its output folder is stopped (it would fill the host's disk).
MAX_OUTPUT_BYTES = 4 << 30
_WATCH_EVERY = 0.5  # seconds between looks at the output folder's size

_TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL on a timeout
_DRAIN = 1.0  # seconds to read what is left in the pipes after the process is gone
_ENGINE_CALL_TIMEOUT = 60.0  # inspect / kill / rm / info
_NOTE = "[odahu-conformance]"


class Runner(Protocol):
    """What every runner offers."""

    def run(self, ws: Workspace, timeout: float) -> RunResult:  # pragma: no cover - protocol
        ...

    def describe(self, ws: Workspace | None = None) -> str:  # pragma: no cover - protocol
        ...


# --------------------------------------------------------------------------------------------------------------
# Process handling shared by both runners


class _Capture:
    """Bounded capture of one stream: keeps the first ``limit`` bytes, counts the rest."""

    def __init__(self, limit: int = OUTPUT_LIMIT):
        self.limit = limit
        self.kept = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        if self.total > len(self.kept):
            text += f"\n{_NOTE} output truncated: kept the first {len(self.kept)} of {self.total} bytes\n"
        return text


@dataclass
class _Outcome:
    """What running one process gave (before the workspace is looked at)."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    start_error: str | None = None
    stopped: str | None = None  # why the run was stopped early (other than its timeout)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate_group(proc: subprocess.Popen, grace: float = _TERM_GRACE) -> None:
    """SIGTERM the process group, give the leader ``grace`` seconds, then SIGKILL whatever is left of the group."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL (D state)
        pass


def _pump(sel: selectors.BaseSelector, until: float, proc: subprocess.Popen | None,
          watch: Callable[[], str | None] | None = None) -> str | None:
    """Read the registered pipes until they are all closed, ``until`` (monotonic) passes, or ``proc`` exits.

    Every half second ``watch`` (when given) may return a reason to stop the run; that reason is returned."""
    next_look = time.monotonic() + _WATCH_EVERY
    while sel.get_map() or (proc is not None and watch is not None):
        remaining = until - time.monotonic()
        if remaining <= 0:
            return None
        if proc is not None and proc.poll() is not None:
            return None
        if watch is not None and time.monotonic() >= next_look:
            next_look = time.monotonic() + _WATCH_EVERY
            reason = watch()
            if reason:
                return reason
        if not sel.get_map():
            time.sleep(min(remaining, 0.1))
            continue
        for key, _ in sel.select(min(remaining, 0.1)):
            data = os.read(key.fd, 65536)
            if data:
                key.data.add(data)
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()
    return None


def output_watch(folder: Path, limit: int = MAX_OUTPUT_BYTES) -> Callable[[], str | None]:
    """A ``watch`` for :func:`_run_process`: a reason once ``folder`` holds more than ``limit`` bytes."""

    def look() -> str | None:
        total, stack = 0, [str(folder)]
        while stack:
            try:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            if total > limit:
                return f"stopped: it wrote more than {limit} bytes into the output folder (the kit's limit, to keep the host's disk)"
        return None

    return look


def _run_process(
    argv: list[str],
    env: dict[str, str] | None,
    cwd: str | os.PathLike | None,
    timeout: float,
    on_timeout: Callable[[], None] | None = None,
    watch: Callable[[], str | None] | None = None,
) -> _Outcome:
    """Run ``argv`` (no shell) in a new session / process group and wait at most ``timeout`` seconds.

    On a timeout ``on_timeout`` runs first (a container runner kills its container there), then the process
    group gets SIGTERM and, after a short grace, SIGKILL. After the leader exits, whatever is left of its group
    (children that double-forked but stayed in the group) is SIGKILLed too, as a pod's processes end with it.
    """
    if not argv:
        return _Outcome(None, "", "", False, "empty command: nothing to run")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError as exc:
        where = f" (in {cwd})" if cwd is not None and exc.filename is None else ""
        return _Outcome(None, "", "", False, f"cannot start {argv[0]!r}: command not found{where}")
    except PermissionError:
        return _Outcome(None, "", "", False, f"cannot start {argv[0]!r}: permission denied (not executable?)")
    except OSError as exc:
        return _Outcome(None, "", "", False, f"cannot start {argv[0]!r}: {exc.strerror or exc}")

    out, err = _Capture(), _Capture()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    deadline = time.monotonic() + timeout
    timed_out = False
    stopped = None
    try:
        stopped = _pump(sel, deadline, proc, watch)
        try:
            if stopped:
                raise subprocess.TimeoutExpired(argv, 0)
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = not stopped
            if on_timeout is not None:
                on_timeout()
            _terminate_group(proc)
        _signal_group(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
        _pump(sel, time.monotonic() + _DRAIN, None)
    finally:
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
            key.fileobj.close()
        sel.close()
        if proc.poll() is None:  # pragma: no cover - only when something above raised
            _terminate_group(proc, grace=0)
    killed = timed_out or stopped
    return _Outcome(None if killed else proc.returncode, out.text(), err.text(), timed_out, stopped=stopped)


def _one_line(text: str, default: str = "") -> str:
    """The last non-empty line of ``text`` (error messages of engines end with the useful line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else default


def _run_collected(ws: Workspace, command: list[str], body: Callable[[], _Outcome]) -> RunResult:
    """The part every runner shares: fingerprint input and model, run ``body``, fingerprint again, collect output."""
    input_before = folder_digest(ws.input)
    model_before = folder_digest(ws.model) if ws.model is not None else None
    started = time.monotonic()
    outcome = body()
    duration = time.monotonic() - started
    input_changes = changes(input_before, folder_digest(ws.input))
    model_changes = changes(model_before, folder_digest(ws.model)) if model_before is not None else []
    output_exists, entries = collect_outputs(ws.output)
    return RunResult(
        exit_code=outcome.exit_code,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        duration=duration,
        timed_out=outcome.timed_out,
        output_exists=output_exists,
        entries=entries,
        input_changes=input_changes,
        model_changes=model_changes,
        command=list(command),
        workspace=ws,
        start_error=outcome.start_error,
        stopped=outcome.stopped,
    )


# --------------------------------------------------------------------------------------------------------------
# Local programs


class LocalRunner:
    """A candidate that is a local program, run without a shell.

    ``argv`` is the program and its arguments (split like a shell would: see ``from_string``); ``cwd`` the
    working directory (default: the caller's). The program sees the host environment without any ``ODAHU_*``
    variable, plus exactly ``ODAHU_MODEL_PATH`` (``ws.model``, or ``ws.model_in_image`` when the model is not
    staged), ``ODAHU_INPUT_PATH`` and ``ODAHU_OUTPUT_PATH``. ``RunResult.command`` is ``argv``.
    """

    #: Stop the run once the output folder holds more than this many bytes.
    max_output_bytes = MAX_OUTPUT_BYTES

    def __init__(self, argv: list[str], cwd: str | os.PathLike | None = None):
        self.argv = list(argv)
        self.cwd = cwd

    @classmethod
    def from_string(cls, cmd: str, cwd: str | os.PathLike | None = None) -> "LocalRunner":
        """A runner for ``cmd``, split like a POSIX shell would (quotes, backslashes), but run without a shell.
        Raises ValueError with a one-line reason when ``cmd`` cannot be split or is empty."""
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise ValueError(f"cannot split {cmd!r}: {exc}") from None
        if not argv:
            raise ValueError("the command is empty")
        return cls(argv, cwd=cwd)

    @staticmethod
    def variables(ws: Workspace) -> dict[str, str]:
        """The three ODAHU variables for ``ws`` (host paths)."""
        model = ws.model if ws.model is not None else ws.model_in_image
        return {ENV_MODEL: str(model), ENV_INPUT: str(ws.input), ENV_OUTPUT: str(ws.output)}

    def environment(self, ws: Workspace) -> dict[str, str]:
        """The whole environment the program gets."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("ODAHU_")}
        env.update(self.variables(ws))
        return env

    def describe(self, ws: Workspace | None = None) -> str:
        """A shell line that reproduces the run (with placeholders when no workspace is given)."""
        if ws is None:
            variables = {ENV_MODEL: "MODEL_DIR", ENV_INPUT: "INPUT_DIR", ENV_OUTPUT: "OUTPUT_DIR"}
        else:
            variables = self.variables(ws)
        line = "env " + " ".join(f"{key}={shlex.quote(value)}" for key, value in variables.items())
        line += " " + shlex.join(self.argv)
        if self.cwd is not None:
            line = f"cd {shlex.quote(str(self.cwd))} && {line}"
        return line

    def run(self, ws: Workspace, timeout: float) -> RunResult:
        def body() -> _Outcome:
            if ws.model is None and ws.model_in_image is None:
                return _Outcome(None, "", "", False, "the workspace has no model (neither model nor model_in_image)")
            return _run_process(self.argv, self.environment(ws), self.cwd, timeout, watch=output_watch(ws.output, self.max_output_bytes))

        return _run_collected(ws, self.argv, body)

    def __repr__(self) -> str:
        return f"LocalRunner({self.argv!r}, cwd={self.cwd!r})"


# --------------------------------------------------------------------------------------------------------------
# Containers


def engine_available(engine: str) -> tuple[bool, str]:
    """Whether ``engine`` (``docker`` or ``podman``) can run containers here; the reason when it cannot.

    ``docker`` only needs a daemon answering ``docker info`` (on machines without a Docker engine, podman's
    socket: ``podman system service --time=0 unix:///run/docker.sock``).
    """
    path = shutil.which(engine)
    if path is None:
        return False, f"{engine} is not installed (not found on PATH)"
    try:
        done = subprocess.run(
            [path, "info"], stdin=subprocess.DEVNULL, capture_output=True, timeout=_ENGINE_CALL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return False, f"'{engine} info' did not answer within {_ENGINE_CALL_TIMEOUT:.0f} s"
    except OSError as exc:
        return False, f"cannot run '{engine} info': {exc}"
    if done.returncode != 0:
        reason = _one_line(done.stderr.decode("utf-8", "replace"), f"exit status {done.returncode}")
        return False, f"'{engine} info' failed: {reason}"
    return True, f"{engine} is available ({path})"


def _make_readable(folder: Path) -> None:
    """Add read (and, for folders, search) permission for everyone, so that a non-root container user can read."""
    for path in [folder, *folder.rglob("*")]:
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        wanted = st.st_mode | (0o555 if stat.S_ISDIR(st.st_mode) else 0o444)
        if wanted != st.st_mode:
            os.chmod(path, stat.S_IMODE(wanted))


class ContainerRunner:
    """A candidate that is an OCI image, run with ``docker`` or ``podman`` as the ODAHU operator runs the step.

    ``command`` (like the InferenceService's ``spec.command``) replaces the image's entrypoint: ``command[0]`` is
    the entrypoint, ``command[1:] + args`` the arguments; without a command, ``args`` (if any) replace the image's
    CMD. ``memory``, ``cpus`` and ``pids`` are the limits; ``user`` is ``"auto"`` (run as ``1000:1000``), None
    (the image's own user) or any ``--user`` value.

    Host layout of a run: a fresh folder ``<ws.output.parent>/.odahu-pod-<name>`` (mode 0777) is mounted at
    ``/workspace``; ``ws.input`` and ``ws.model`` are mounted read-only inside it at the pod's paths (or no model
    mount when ``ws.model`` is None: then ``ODAHU_MODEL_PATH=ws.model_in_image``). The output folder the candidate
    creates there is moved to ``ws.output`` afterwards (and an ``ws.output`` that exists beforehand is moved in
    first), then the pod folder is removed. ``RunResult.command`` is the full engine command line.
    """

    ENGINES = ("docker", "podman")

    #: Stop the run once the output folder holds more than this many bytes.
    max_output_bytes = MAX_OUTPUT_BYTES

    def __init__(
        self,
        engine: str,
        image: str,
        command: list[str] | None = None,
        args: list[str] | None = None,
        memory: str = "2g",
        cpus: str = "1",
        pids: int = 512,
        user: str | None = "auto",
    ):
        if engine not in self.ENGINES:
            raise ValueError(f"engine must be one of {', '.join(self.ENGINES)}, not {engine!r}")
        if command is not None and not command:
            raise ValueError("command, when given, needs at least the entrypoint")
        self.engine = engine
        self.image = image
        self.command = list(command) if command is not None else None
        self.args = list(args) if args is not None else None
        self.memory = memory
        self.cpus = str(cpus)
        self.pids = int(pids)
        self.user = user

    # -- command line ------------------------------------------------------------------------------------------

    def _user(self) -> str | None:
        return "1000:1000" if self.user == "auto" else (self.user or None)

    def _argv(self, ws: Workspace | None, name: str, pod: str) -> list[str]:
        model_path = POD_MODEL
        if ws is None:
            input_dir, model_dir = "INPUT_DIR", "MODEL_DIR"
        else:
            input_dir = str(ws.input)
            model_dir = str(ws.model) if ws.model is not None else None
            if ws.model is None:
                model_path = str(ws.model_in_image)
        argv = [self.engine, "run", "--name", name, "--network", "none"]
        argv += ["--memory", self.memory, "--memory-swap", self.memory, "--cpus", self.cpus]
        argv += ["--pids-limit", str(self.pids)]
        for limit in ULIMITS:
            argv += ["--ulimit", limit]
        user = self._user()
        if user:
            argv += ["--user", user]
        argv += ["-v", f"{pod}:{POD_WORKSPACE}"]
        argv += ["-v", f"{input_dir}:{POD_INPUT}:ro"]
        if model_dir is not None:
            argv += ["-v", f"{model_dir}:{POD_MODEL}:ro"]
        argv += ["-e", f"{ENV_MODEL}={model_path}", "-e", f"{ENV_INPUT}={POD_INPUT}", "-e", f"{ENV_OUTPUT}={POD_OUTPUT}"]
        rest: list[str] = []
        if self.command is not None:
            argv += ["--entrypoint", self.command[0]]
            rest = self.command[1:] + (self.args or [])
        elif self.args is not None:
            rest = list(self.args)
        return argv + [self.image, *rest]

    @staticmethod
    def _pod_dir(ws: Workspace, name: str) -> Path:
        return ws.output.parent / f".odahu-pod-{name}"

    def describe(self, ws: Workspace | None = None) -> str:
        """The engine command line (with placeholders when no workspace is given; the name is per run)."""
        name = CONTAINER_PREFIX + "NAME"
        pod = str(self._pod_dir(ws, name)) if ws is not None else "WORKSPACE_DIR"
        return shlex.join(self._argv(ws, name, pod))

    def __repr__(self) -> str:
        return (
            f"ContainerRunner({self.engine!r}, {self.image!r}, command={self.command!r}, args={self.args!r}, "
            f"memory={self.memory!r}, cpus={self.cpus!r}, pids={self.pids!r}, user={self.user!r})"
        )

    # -- engine calls --------------------------------------------------------------------------------------------

    def _call(self, *args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [self.engine, *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_ENGINE_CALL_TIMEOUT,
            )
        except (subprocess.TimeoutExpired, OSError) as exc:
            return subprocess.CompletedProcess([self.engine, *args], 1, b"", str(exc).encode())

    def _state(self, name: str) -> dict | None:
        done = self._call("inspect", "--format", "{{json .State}}", name)
        if done.returncode != 0:
            return None
        try:
            state = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[0])
        except (ValueError, IndexError):
            return None
        return state if isinstance(state, dict) else None

    # -- running -------------------------------------------------------------------------------------------------

    def run(self, ws: Workspace, timeout: float) -> RunResult:
        name = CONTAINER_PREFIX + secrets.token_hex(6)
        pod = self._pod_dir(ws, name)
        argv = self._argv(ws, name, str(pod))
        problem = self._preflight(ws)
        if problem is None:
            # Before the fingerprints, so that the permission change is not taken for the candidate's doing.
            problem = self._make_mounts_readable(ws)
        if problem is not None:
            return _run_collected(ws, argv, lambda: _Outcome(None, "", "", False, problem))
        return _run_collected(ws, argv, lambda: self._run_container(ws, timeout, name, pod, argv))

    @staticmethod
    def _make_mounts_readable(ws: Workspace) -> str | None:
        try:
            _make_readable(ws.input)
            if ws.model is not None:
                _make_readable(ws.model)
        except OSError as exc:
            return f"cannot make the input and model readable for the container user: {exc}"
        return None

    def _preflight(self, ws: Workspace) -> str | None:
        """Why the run cannot start, or None."""
        if shutil.which(self.engine) is None:
            return f"{self.engine} is not installed (not found on PATH)"
        if ws.model is None and not ws.model_in_image:
            return "the workspace has no model (neither model nor model_in_image)"
        for path in (ws.input, ws.model, ws.output.parent):
            if path is not None and (":" in str(path) or "," in str(path)):
                return f"cannot mount {path}: the path contains ':' or ','"
        done = self._call("image", "inspect", "--format", "{{.Id}}", self.image)
        if done.returncode != 0:
            reason = _one_line(done.stderr.decode("utf-8", "replace"), f"exit status {done.returncode}")
            return f"image {self.image} is not available to {self.engine}: {reason}"
        return None

    def _run_container(self, ws: Workspace, timeout: float, name: str, pod: Path, argv: list[str]) -> _Outcome:
        inside = pod / Path(POD_OUTPUT).name
        try:
            pod.mkdir(parents=True)
            os.chmod(pod, 0o777)
            if os.path.lexists(ws.output):  # the platform's folder normally does not exist; honour one that does
                os.rename(ws.output, inside)
                if inside.is_dir() and not inside.is_symlink():
                    os.chmod(inside, 0o777)
        except OSError as exc:
            shutil.rmtree(pod, ignore_errors=True)
            return _Outcome(None, "", "", False, f"cannot prepare the container's workspace {pod}: {exc}")

        def kill() -> None:
            self._call("kill", name)

        try:
            outcome = _run_process(argv, None, None, timeout, on_timeout=kill, watch=output_watch(inside, self.max_output_bytes))
            if outcome.start_error is not None or outcome.timed_out or outcome.stopped:
                return outcome
            state = self._state(name)
            notes: list[str] = []
            if state is None:
                # The container never came to be: an engine error (bad flag, mount, ...).
                outcome.start_error = (
                    f"{self.engine} could not create the container (exit {outcome.exit_code}): "
                    + _one_line(outcome.stderr, "no message")
                )
                outcome.exit_code = None
                return outcome
            if str(state.get("StartedAt", "")).startswith("0001-01-01") or state.get("Status") == "created":
                reason = _one_line(state.get("Error") or outcome.stderr, "no message")
                outcome.start_error = (
                    f"the container did not start (exit {outcome.exit_code}): {reason}"
                    " (is the entrypoint present and executable in the image?)"
                )
                outcome.exit_code = None
                return outcome
            engine_code = state.get("ExitCode")
            if self.engine == "docker" and isinstance(engine_code, int) and engine_code != outcome.exit_code:
                # podman's docker-compatible socket can report a wrong status to the client: trust inspect.
                notes.append(f"the {self.engine} client exited {outcome.exit_code}; the container's exit code is {engine_code}")
                outcome.exit_code = engine_code
            if outcome.exit_code == 137:
                if state.get("OOMKilled"):
                    notes.append(f"exit 137: the container was killed for exceeding its memory limit ({self.memory})")
                else:
                    notes.append(
                        f"exit 137: the container was killed with SIGKILL, most likely by the kernel's OOM killer "
                        f"at its memory limit ({self.memory}); the engine did not confirm it"
                    )
            if notes:
                outcome.stderr += "".join(f"\n{_NOTE} {note}" for note in notes) + "\n"
            return outcome
        finally:
            self._call("rm", "-f", name)
            try:
                if os.path.lexists(inside):
                    os.rename(inside, ws.output)
            finally:
                shutil.rmtree(pod, ignore_errors=True)
