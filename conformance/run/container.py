"""A candidate that is an OCI image, run under docker or podman the way the ODAHU operator runs the predictor step.

(The whole picture of both runners:)

Two runners share one interface, ``run(ws, timeout) -> RunResult``, and one ``describe(ws=None)``:

- ``LocalRunner``: a local program (no shell), in its own process group under the kit's supervisor (in its own
  PID namespace where ``unshare`` can make one, else a subreaper sweep), with the host environment minus every
  ``ODAHU_*`` variable plus exactly ``ODAHU_MODEL_PATH`` / ``ODAHU_INPUT_PATH`` / ``ODAHU_OUTPUT_PATH``. What it
  leaves running after its main process exits is frozen at once, killed and listed in ``RunResult.leftovers``
  (an image's end unseen with its container). It has an image's memory limit and, in a PID namespace, sees the
  host read-only but for its workspace folder, a private ``/tmp`` layer and ``/dev/shm``.
- ``ContainerRunner``: an OCI image under ``docker`` or ``podman``: no network, memory / CPU / pid limits, a
  non-root user, input and model mounted read-only at the pod's paths, and a writable ``/workspace`` in which
  ``/workspace/odahu-ws-raw-output`` does not exist beforehand (as in the pod).

Both enforce the timeout (the whole process group, or the container, is killed and the run marked
``timed_out``), capture stdout and stderr (bounded), fingerprint the input and model folders before and after
(P-READONLY), and collect every entry of the output folder. Problems starting the candidate (program not found,
engine missing, image missing, nothing to run in the image) come back as ``RunResult.start_error``, never as
exceptions; each runner's ``preflight()`` finds the same problems before any run.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

from conformance.run.process import (
    MAX_OUTPUT_BYTES,
    MEMORY_LIMIT,
    NOTE,
    Outcome,
    oom_note,
    output_watch,
    run_collected,
    run_process,
)
from conformance.run.workspace import (
    ENV_INPUT,
    ENV_MODEL,
    ENV_OUTPUT,
    POD_INPUT,
    POD_MODEL,
    POD_OUTPUT,
    RunResult,
    Workspace,
)
from conformance.text import last_lines

#: Every container the kit starts is named ``CONTAINER_PREFIX + random``, so leftovers are easy to find.
CONTAINER_PREFIX = "odahu-conformance-"
#: The writable folder the pod has; the output folder is created inside it by the candidate.
POD_WORKSPACE = str(Path(POD_OUTPUT).parent)
#: Where a decoy (see ``conformance.run.decoys``) is mounted in the container, by the variable that names it:
#: input and model read-only; the output path inside the writable pod folder, absent beforehand.
POD_DECOYS = {"ODAHU_MODEL": "/decoy/model", "ODAHU_MODEL_INPUT": "/decoy/input",
              "ODAHU_MODEL_OUTPUT": f"{POD_WORKSPACE}/decoy-output"}
#: Container rlimits no higher than the engine's own hard limits (see the design notes on podman here).
ULIMITS = ("nofile=20000:20000", "nproc=32768:32768")
_ENGINE_CALL_TIMEOUT = 60.0  # inspect / kill / rm / info


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
        reason = last_lines(done.stderr.decode("utf-8", "replace"), 1, f"exit status {done.returncode}")
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
    first), then the pod folder is removed. Decoys (``ws.decoys``, for P-ENV) are mounted read-only at
    ``POD_DECOYS``' paths, named by their variables; a decoy output folder written in the pod is moved to its
    host path. ``RunResult.command`` is the full engine command line.
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
        memory: str = MEMORY_LIMIT,
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
        model_dir: str | None  # None: the model is in the image
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
        for variable, path in sorted(ws.decoys.items()) if ws is not None else ():
            inside = POD_DECOYS[variable]
            if not inside.startswith(POD_WORKSPACE + "/"):
                argv += ["-v", f"{path}:{inside}:ro"]
            argv += ["-e", f"{variable}={inside}"]
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
        """A shell line that reproduces the run and can be pasted twice: it makes a fresh pod folder
        ``WS/repro-pod`` (mode 0777, as the run had; the output lands in ``WS/repro-pod/odahu-ws-raw-output``),
        then runs the engine with the same mounts, variables and limits, and ``--rm`` instead of a fixed name
        (placeholders when no workspace is given)."""
        pod = str(ws.root / "repro-pod") if ws is not None else "WORKSPACE_DIR"
        argv = self._argv(ws, CONTAINER_PREFIX + "NAME", pod)
        at = argv.index("--name")
        argv[at:at + 2] = ["--rm"]
        prepare = f"rm -rf {shlex.quote(pod)} && mkdir -m 0777 {shlex.quote(pod)} && " if ws is not None else ""
        return prepare + shlex.join(argv)

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
            return run_collected(ws, argv, lambda: Outcome(None, "", "", False, problem))
        return run_collected(ws, argv, lambda: self._run_container(ws, timeout, name, pod, argv))

    @staticmethod
    def _make_mounts_readable(ws: Workspace) -> str | None:
        try:
            for folder in (ws.input, ws.model, *ws.decoys.values()):
                if folder is not None and folder.exists():
                    _make_readable(folder)
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
        return self._image_problem()

    def preflight(self) -> str | None:
        """Why no run can start, one line, or None: the engine cannot run containers (not installed, no daemon,
        engine error), the image is not available locally, or it has neither ENTRYPOINT nor CMD while no command
        (nor args) is given."""
        available, reason = engine_available(self.engine)
        if not available:
            return reason
        return self._image_problem()

    def _image_problem(self) -> str | None:
        """Why the image cannot run (missing, or nothing to run in it), from ``ENGINE image inspect``; or None."""
        done = self._call("image", "inspect", self.image)
        if done.returncode != 0:
            reason = last_lines(done.stderr.decode("utf-8", "replace"), 1, f"exit status {done.returncode}")
            return f"image {self.image} is not available to {self.engine}: {reason}"
        if self.command is not None or self.args:
            return None
        try:
            found = json.loads(done.stdout.decode("utf-8", "replace"))
            info = found[0] if isinstance(found, list) else found
            config = info.get("Config") or {}
        except (ValueError, IndexError, AttributeError, TypeError):
            return None  # an answer this kit does not understand: let the run tell
        if not isinstance(config, dict) or config.get("Entrypoint") or config.get("Cmd"):
            return None
        return (f"image {self.image} has neither ENTRYPOINT nor CMD and no command is given "
                "(the InferenceService's spec.command, via --service-manifest)")

    def _run_container(self, ws: Workspace, timeout: float, name: str, pod: Path, argv: list[str]) -> Outcome:
        inside = pod / Path(POD_OUTPUT).name
        # decoy output folders written in the pod, and where the judge looks for them
        decoy_outputs = {pod / Path(POD_DECOYS[variable]).name: path for variable, path in ws.decoys.items()
                         if POD_DECOYS[variable].startswith(POD_WORKSPACE + "/")}
        try:
            pod.mkdir(parents=True)
            os.chmod(pod, 0o777)
            if os.path.lexists(ws.output):  # the platform's folder normally does not exist; honour one that does
                os.rename(ws.output, inside)
                if inside.is_dir() and not inside.is_symlink():
                    os.chmod(inside, 0o777)
        except OSError as exc:
            shutil.rmtree(pod, ignore_errors=True)
            return Outcome(None, "", "", False, f"cannot prepare the container's workspace {pod}: {exc}")

        def kill() -> None:
            self._call("kill", name)

        try:
            outcome = run_process(argv, None, None, timeout, on_timeout=kill, watch=output_watch(inside, self.max_output_bytes))
            if outcome.start_error is not None or outcome.timed_out or outcome.stopped:
                return outcome
            state = self._state(name)
            notes: list[str] = []
            if state is None:
                # The container never came to be: an engine error (bad flag, mount, ...).
                outcome.start_error = (
                    f"{self.engine} could not create the container (exit {outcome.exit_code}): "
                    + last_lines(outcome.stderr, 1, "no message")
                )
                outcome.exit_code = None
                return outcome
            if str(state.get("StartedAt", "")).startswith("0001-01-01") or state.get("Status") == "created":
                reason = last_lines(state.get("Error") or outcome.stderr, 1, "no message")
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
                    notes.append(oom_note(self.memory))  # the same line as a local run's
                else:
                    notes.append(
                        f"exit 137: the container was killed with SIGKILL, most likely by the kernel's OOM killer "
                        f"at its memory limit ({self.memory}); the engine did not confirm it"
                    )
            if notes:
                outcome.stderr += "".join(f"\n{NOTE} {note}" for note in notes) + "\n"
            return outcome
        finally:
            self._call("rm", "-f", name)
            try:
                if os.path.lexists(inside):
                    os.rename(inside, ws.output)
                for written, path in decoy_outputs.items():
                    if os.path.lexists(written):
                        os.rename(written, path)
            finally:
                shutil.rmtree(pod, ignore_errors=True)
