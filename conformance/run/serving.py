"""The kit starting a candidate as a V2 REST server (``--serve``), waiting until it is ready, and stopping it.

Two ways to start one, one handle (:class:`Served`) for both:

- :func:`serve_command`: a local program, contained as a batch local run is (:mod:`conformance.run.process`):
  under the kit's supervisor in its own PID namespace where ``unshare`` can make one (else a subreaper sweep),
  in a session and process group of its own, with an image's memory limit (a memory cgroup of its own, else
  RLIMIT_DATA) and, in a PID namespace, the host read-only but for a private ``/tmp`` layer. It listens on
  loopback; ``{port}`` and ``{model}`` in its arguments become the port and the model folder, and it also gets
  ``PORT`` and ``ODAHU_MODEL_PATH``. Its stdout and stderr go to one log file in a temporary folder.
- :func:`serve_image`: an OCI image under docker or podman, run as KServe runs a predictor: the model folder
  mounted read-only at ``/mnt/models``, the server on ``port`` inside the container, memory / CPU / pid limits,
  a non-root user, on an internal network (:data:`NETWORK`: reachable from the kit, no route out; like a pod
  reaching its node, it can still connect to what the host serves on all its addresses, through the network's
  gateway, but not to what it serves on loopback only).

Either is ready once ``GET /v2/health/ready`` answers 200 (polled with the standard library's ``http.client``,
every :data:`POLL_EVERY` seconds). A server that ends first, or is not ready in time, is a :class:`ServeProblem`
(one line, with the server's last output), and nothing of it is left running. :meth:`Served.stop` sends SIGTERM,
then SIGKILL after a grace, and returns once the whole process tree, or the container, is gone.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from conformance.contract.problems import ConformanceProblem
from conformance.run.container import (
    CONTAINER_PREFIX,
    ULIMITS,
    ContainerRunner,
    _make_readable,
    engine_available,
)
from conformance.run.process import (
    MEMORY_LIMIT,
    _Capture,
    _hold_sigterm,
    _MemoryCage,
    _release_sigterm,
    _signal_group,
    _stat,
    _start_problem,
    _Supervised,
    _SUPERVISOR,
    containment,
    memory_bytes,
    program_problem,
)
from conformance.run.workspace import ENV_MODEL
from conformance.text import last_lines, one_line

#: The route whose 200 says the server is ready.
READY_PATH = "/v2/health/ready"
#: Seconds between two looks at the ready route.
POLL_EVERY = 0.05
#: At most this many seconds for one look (connect and answer).
ATTEMPT_TIMEOUT = 1.0
#: Seconds between SIGTERM and SIGKILL when a server is stopped.
STOP_GRACE = 5.0
#: The same for a server that never became ready (nobody waits on its clean stop).
FAILED_GRACE = 1.0
#: The environment variable that names the port (besides ``{port}`` in the arguments).
ENV_PORT = "PORT"
#: The same for the gRPC port of a server asked to serve gRPC too (``{grpc_port}``).
ENV_GRPC_PORT = "GRPC_PORT"
#: The gRPC port inside a container when none is given (KServe's and MLServer's).
IMAGE_GRPC_PORT = 8081
#: Where an image's server finds its model (KServe's storage initializer mounts it there).
IMAGE_MODEL = "/mnt/models"
#: The internal network every served container is on (``ENGINE network create --internal``; made once, reused).
NETWORK = "odahu-conformance-serve"
#: An image server's limits: an ODAHU predictor's memory, KServe's usual CPU, a generous pid limit.
IMAGE_CPUS = "2"
IMAGE_PIDS = 4096
_TAIL_BYTES = 64 * 1024  # how much of the end of a local server's log output() reads
_LOG_LINES = 200  # how many lines of a container's log output() asks the engine for
_KEPT_LINES = 20  # at least this many lines of a container's log are kept when it is removed (when it has them)
_ENGINE_TIMEOUT = 60.0
_STATE_EVERY = 0.5  # seconds between two looks at a container's state while waiting for it to be ready
_GONE_WAIT = 10.0  # seconds stop() waits for the kernel to take the killed processes away
_AVAILABLE: set[str] = set()  # the engines found able to run containers in this process


class ServeProblem(ConformanceProblem):
    """The server could not be started or did not become ready; ``str()`` is one line, with its last output."""


class _Backend(Protocol):
    def alive(self) -> bool: ...  # pragma: no cover - protocol

    def output(self, lines: int) -> str: ...  # pragma: no cover - protocol

    def exit_status(self) -> int | None: ...  # pragma: no cover - protocol

    def stop(self, grace: float) -> None: ...  # pragma: no cover - protocol


@dataclass
class Served:
    """A V2 server the kit started and answered ``GET /v2/health/ready`` with 200.

    ``url`` is ``http://127.0.0.1:PORT`` (a local command) or ``http://CONTAINER_IP:PORT`` (an image), without a
    trailing slash; ``command`` what was run (the program and its arguments, or the engine's command line);
    ``start_seconds`` how long it took from the start until it was ready.``served_before_ready`` says how an
    inference was answered 200 while the ready route did not answer 200 yet (see ``probe``)."""

    url: str
    command: list[str]
    start_seconds: float
    _backend: _Backend = field(repr=False, compare=False)
    #: How the server answered an inference before it said it was ready (kserve#2775), one line; None if not
    #: seen (or no probe was given).
    served_before_ready: str | None = None
    #: Seconds :meth:`stop` waits after SIGTERM before SIGKILL.
    stop_grace: float = field(default=STOP_GRACE, repr=False, compare=False)
    #: ``HOST:PORT`` of its gRPC endpoint, when it was asked to serve gRPC too (``grpc_port``); else None.
    grpc: str | None = None

    def alive(self) -> bool:
        """Whether the server's main process (or its container) still runs."""
        return self._backend.alive()

    def output(self, lines: int = 3) -> str:
        """The server's last ``lines`` non-empty output lines (stdout and stderr together) on one line, joined by
        `` | ``; ``(nothing)`` when it wrote nothing. Still readable after :meth:`stop`."""
        return self._backend.output(lines)

    def exit_status(self) -> int | None:
        """The main process's (or container's) exit status once it ended (negative: killed by that signal, for
        a local command), else None."""
        return self._backend.exit_status()

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after :attr:`stop_grace` seconds; when it returns, every process
        the server started is gone (a local command) or the container is removed (an image). Idempotent."""
        self._backend.stop(self.stop_grace)

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------------------
# Waiting until ready


def _look(host: str, port: int, timeout: float) -> tuple[int | None, str]:
    """One ``GET /v2/health/ready``: (status, ``status N``) or (None, why no status came, with the address: a
    server listening elsewhere than the kit said is told by it)."""
    connection = http.client.HTTPConnection(host, port, timeout=max(timeout, 0.01))
    try:
        connection.request("GET", READY_PATH, headers={"Connection": "close"})
        answer = connection.getresponse()
        answer.read(65536)
        return answer.status, f"status {answer.status}"
    except ConnectionRefusedError:
        return None, f"connection refused at {host}:{port}"
    except (socket.timeout, TimeoutError):
        return None, f"no answer within {timeout:g} s from {host}:{port}"
    except (OSError, http.client.HTTPException) as exc:
        reason = one_line(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc, 120)
        return None, f"{reason} ({host}:{port})"
    finally:
        connection.close()


def _infer_before_ready(host: str, port: int, probe: tuple[str, bytes], timeout: float) -> int | None:
    """The status a POST of ``probe`` (route, body) gets, or None when none came."""
    connection = http.client.HTTPConnection(host, port, timeout=max(timeout, 0.01))
    try:
        connection.request("POST", probe[0], body=probe[1], headers={"Content-Type": "application/json",
                                                                    "Connection": "close"})
        answer = connection.getresponse()
        answer.read(65536)
        return answer.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _status_text(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        try:
            return f"{code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


def _wait_ready(backend: _Backend, host: str, port: int, started: float, ready_timeout: float, grace: float,
                check_every: float = 0.0, probe: tuple[str, bytes] | None = None) -> str | None:
    """Poll the ready route until 200. The server stopped and a ServeProblem when it ends first or is not ready
    within ``ready_timeout`` seconds of ``started`` (monotonic). ``check_every``: seconds between looks at
    whether it still runs (0: at every poll). ``probe`` (an infer route and a request it serves): sent while
    the ready route answers but not 200; the return value says how, when it was answered 200 all the same."""
    deadline = started + ready_timeout
    last = "no answer yet"
    early: str | None = None
    next_check = started
    while True:
        now = time.monotonic()
        if now >= next_check:
            next_check = now + check_every
            if not backend.alive():
                break
        status, last = _look(host, port, min(ATTEMPT_TIMEOUT, max(deadline - time.monotonic(), 0.05)))
        if status == 200 and backend.alive():
            return early
        if status is not None and probe is not None and early is None:
            if _infer_before_ready(host, port, probe, ATTEMPT_TIMEOUT) == 200:
                early = f"POST {probe[0]} was answered 200 while GET {READY_PATH} answered {status}"
        if time.monotonic() >= deadline:
            backend.stop(grace)
            raise ServeProblem(f"the server was not ready within {ready_timeout:g} s (GET {READY_PATH}: {last}): "
                               f"{backend.output(3)}")
        time.sleep(POLL_EVERY)
    backend.stop(grace)
    raise ServeProblem(f"the server exited with status {_status_text(backend.exit_status())} before it was ready: "
                       f"{backend.output(3)}")


# --------------------------------------------------------------------------------------------------------------
# A local command


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_problem(port: int) -> str | None:
    """Why a server cannot listen on ``port`` at 127.0.0.1 (one line), or None. Bound as servers bind
    (SO_REUSEADDR), so that a port only in TIME_WAIT is free and a listening one is not."""
    if not 0 < port < 65536:
        return f"port {port} is not a TCP port (1 to 65535)"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is in use on 127.0.0.1"
            return f"cannot use port {port} on 127.0.0.1: {one_line(exc.strerror or exc)}"
    return None


def fill(argv: list[str], port: int, model: str, grpc_port: int | None = None) -> list[str]:
    """``argv`` with ``{port}``, ``{model}`` (and ``{grpc_port}`` when given) replaced in every item (other braces
    left alone)."""
    filled = [item.replace("{port}", str(port)).replace("{model}", model) for item in argv]
    return [item.replace("{grpc_port}", str(grpc_port)) for item in filled] if grpc_port is not None else filled


class _LocalServer:
    """A server process under the kit's supervisor (see :mod:`conformance.run.process`), its log in ``folder``."""

    def __init__(self, argv: list[str], proc: subprocess.Popen, mode: str, status_fd: int,
                 cage: _MemoryCage | None, folder: Path):
        self.argv = argv
        self.proc = proc
        self.status = _Capture()
        self.supervised = _Supervised(mode, proc, self.status)
        self.status_fd: int | None = status_fd
        os.set_blocking(status_fd, False)
        self.cage = cage
        self.folder = folder
        self.log = folder / "server.log"
        self.kept_output: str | None = None  # the log's tail, kept when the folder is removed
        self.stopped = False
        self.killed = False  # stop() had to kill the main process (it outlived SIGTERM's grace)

    def _refresh(self) -> None:
        """Read what the supervisor said since the last look."""
        while self.status_fd is not None:
            try:
                data = os.read(self.status_fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                os.close(self.status_fd)
                self.status_fd = None
                return
            self.status.add(data)

    def started(self) -> bool:
        self._refresh()
        return self.supervised._value("started") is not None

    def start_error(self) -> int | None:
        self._refresh()
        return self.supervised.start_error()

    def alive(self) -> bool:
        self._refresh()
        if self.supervised.mode == "namespace" and self.supervised.namespace is None and self.proc.poll() is None:
            self.supervised._members()  # learn the namespace while unshare still runs, to find its members later
        return not self.stopped and not self.supervised.exited()

    def exit_status(self) -> int | None:
        self._refresh()
        code = self.supervised.exit_code()
        if code is None and self.killed:
            return -signal.SIGKILL  # it outlived the grace: killed with everything else
        if code is None and self.proc.poll() is not None and self.supervised.start_error() is None:
            return self.proc.returncode  # the supervisor ended without telling (killed)
        return code

    def output(self, lines: int) -> str:
        if self.kept_output is not None:
            return last_lines(self.kept_output, lines, "(nothing)")
        return last_lines(self._tail(), lines, "(nothing)")

    def _tail(self) -> str:
        try:
            with open(self.log, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _TAIL_BYTES))
                data = f.read(_TAIL_BYTES)
        except OSError:
            return ""
        if size > _TAIL_BYTES:  # the first line read is most likely cut
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        return data.decode("utf-8", "replace")

    def stop(self, grace: float) -> None:
        if self.stopped:
            return
        self.stopped = True
        try:
            self._refresh()
            if not self.supervised.exited():
                # The candidate's whole group (unshare blocks SIGTERM; the supervisor ignores it).
                _signal_group(self.proc.pid, signal.SIGTERM)
                end = time.monotonic() + grace
                while time.monotonic() < end:
                    self._refresh()
                    if self.supervised.exited():
                        break
                    time.sleep(0.02)
                self._refresh()
                self.killed = not self.supervised.exited()
            if self.supervised.mode == "namespace":
                # The namespace's init first: the kernel kills every process of the namespace with it, and unshare
                # reaps it, so that no zombie of the server's group is left for the host's init to reap. What is
                # left is frozen first, so that the log ends where the server's processes stopped: unshare's own
                # complaint about its child's SIGKILL is cut off.
                frozen: set[int] = set()
                for _ in range(50):
                    fresh = [pid for pid, _ in self.supervised._members() if pid not in frozen]
                    if not fresh:
                        break
                    for pid in fresh:
                        frozen.add(pid)
                        try:
                            os.kill(pid, signal.SIGSTOP)
                        except (ProcessLookupError, PermissionError):
                            pass
                    time.sleep(0.01)
                try:
                    written = self.log.stat().st_size
                except OSError:
                    written = None
                for pid in _children(self.proc.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                try:
                    self.proc.wait(timeout=_GONE_WAIT)
                except subprocess.TimeoutExpired:  # pragma: no cover - finish() kills it
                    pass
                if written is not None:
                    try:
                        os.truncate(self.log, written)
                    except OSError:
                        pass
            self.supervised.finish()  # freezes and kills what is left, the supervisor last, and waits for it
            self._wait_gone()
        finally:
            self._refresh()
            if self.status_fd is not None:
                os.close(self.status_fd)
                self.status_fd = None
            if self.cage is not None:
                self.cage.remove()
            self.kept_output = self._tail()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _wait_gone(self) -> None:
        """Until no process of the server is left running (the kernel takes a namespace's processes after its
        init; a zombie re-parented to the host's init is not running)."""
        end = time.monotonic() + _GONE_WAIT
        while time.monotonic() < end:
            if not self.supervised._members() and not _running_in_group(self.proc.pid):
                return
            time.sleep(0.01)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _stat(name)
            if info is not None and info[1] == pid:
                found.append(int(name))
    return found


def _running_in_group(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _stat(name)
            if info is not None and info[2] == pgid and info[0] not in "ZX":
                return True
    return False


def serve_command(argv: list[str], model: Path, port: int | None = None, ready_timeout: float = 60.0, *,
                  cwd: str | os.PathLike | None = None, readonly_host: bool = True, isolation: str = "auto",
                  probe: tuple[str, bytes] | None = None, grpc_port: int | None = None) -> Served:
    """Start ``argv`` (no shell) as a V2 server on ``model`` and return it once ``GET /v2/health/ready`` answers 200
    at ``http://127.0.0.1:PORT``.

    ``{port}`` and ``{model}`` in ``argv``'s items become the port and ``model``'s path; the program gets the
    host environment without any ``ODAHU_*`` variable, plus ``PORT`` and ``ODAHU_MODEL_PATH``. ``port`` None: a
    free loopback port. Contained as a batch local run (see the module's docstring); ``readonly_host`` False
    leaves the host writable; ``isolation`` (``auto``, ``namespace``, ``sweep``) is the batch runs' option of
    that name (:func:`conformance.run.process.containment`). ``Served.command`` is ``argv`` filled in.
    ``probe`` (an infer route and a request the model serves) is sent while the server says it is not ready
    yet (``Served.served_before_ready``). ``grpc_port`` (0: a free one) asks for gRPC too: ``{grpc_port}`` in
    ``argv`` and ``GRPC_PORT`` name it, and ``Served.grpc`` is ``127.0.0.1:GRPC_PORT``.

    ServeProblem (one line, nothing left running) when: ``port`` is in use at 127.0.0.1 (before anything is
    started), the program cannot be started or contained, it exits before it is ready (its status and last
    output), or it is not ready within ``ready_timeout`` seconds (the last answer or connection error of the
    ready route, and its last output; it is stopped first)."""
    if not argv:
        raise ServeProblem("empty server command: nothing to run")
    if port is None:
        port = free_port()
    else:
        problem = port_problem(port)
        if problem is not None:
            raise ServeProblem(problem)
    if grpc_port is not None:
        if grpc_port == 0:
            grpc_port = free_port()
            while grpc_port == port:
                grpc_port = free_port()
        else:
            problem = port_problem(grpc_port) if grpc_port != port else f"port {port} is the REST port too"
            if problem is not None:
                raise ServeProblem(f"--grpc-port: {problem}")
    model_path = str(Path(model).resolve())
    filled = fill(argv, port, model_path, grpc_port)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ODAHU_")}
    env.update({ENV_MODEL: model_path, ENV_PORT: str(port)})
    if grpc_port is not None:
        env[ENV_GRPC_PORT] = str(grpc_port)
    problem = program_problem(filled[0], env, cwd)
    if problem is not None:
        raise ServeProblem(problem)
    mode, prefix, note = containment(isolation)
    if mode is None:
        raise ServeProblem(f"cannot contain the server: {note}")
    view = "[]" if readonly_host and mode == "namespace" else "--"  # read-only host, nothing writable but /tmp
    command = [*prefix, "--", sys.executable, "-I", "-S", "-c", _SUPERVISOR, "STATUS", mode, view, *filled]
    if not prefix:
        command = command[1:]

    folder = Path(tempfile.mkdtemp(prefix="odahu-conformance-serve-"))
    cage = _MemoryCage(memory_bytes(MEMORY_LIMIT))
    status_read, status_write = os.pipe()
    command[command.index("STATUS")] = str(status_write)
    started = time.monotonic()
    _hold_sigterm()  # a SIGTERM in the middle of the start would leave the started server running
    try:
        with open(folder / "server.log", "wb") as log:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd, start_new_session=True, close_fds=True,
                                    pass_fds=(status_write,), preexec_fn=cage.enter)
    except BaseException as exc:
        os.close(status_read)
        cage.remove()
        shutil.rmtree(folder, ignore_errors=True)
        _release_sigterm()
        if not isinstance(exc, OSError):
            raise
        raise ServeProblem(f"cannot start the kit's supervisor {command[0]!r}: {exc.strerror or exc}") from None
    finally:
        os.close(status_write)
    server = _LocalServer(filled, proc, mode, status_read, cage, folder)
    try:
        _release_sigterm()  # a SIGTERM held during the start is raised here, where the server is stopped
        while not server.started() and server.start_error() is None and proc.poll() is None:
            if time.monotonic() - started > ready_timeout:
                break
            time.sleep(0.005)
        error = server.start_error()
        if error is not None:
            server.stop(0)
            raise ServeProblem(_start_problem(filled[0], OSError(error, os.strerror(error)), cwd))
        early = _wait_ready(server, "127.0.0.1", port, started, ready_timeout, FAILED_GRACE, probe=probe)
    except BaseException:
        server.stop(0)  # idempotent; on Ctrl-C too
        raise
    return Served(f"http://127.0.0.1:{port}", filled, time.monotonic() - started, server, served_before_ready=early,
                  grpc=f"127.0.0.1:{grpc_port}" if grpc_port is not None else None)


# --------------------------------------------------------------------------------------------------------------
# An image


def _engine(engine: str, *args: str, timeout: float = _ENGINE_TIMEOUT) -> subprocess.CompletedProcess:
    """``ENGINE ARGS...``: its status, stdout and stderr (a failure to run it is status 1 with the reason)."""
    try:
        return subprocess.run([engine, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError) as exc:
        return subprocess.CompletedProcess([engine, *args], 1, b"", one_line(exc).encode())


def _said(done: subprocess.CompletedProcess) -> str:
    """The engine's last line of error, for a message."""
    return last_lines(done.stderr.decode("utf-8", "replace"), 1, f"exit status {done.returncode}")


def ensure_network(engine: str, name: str = NETWORK) -> None:
    """Make the internal network ``name`` unless it exists (another run may make it at the same time); a
    ServeProblem when it cannot be made or exists but is not internal (it would give the server a route out)."""
    done = _engine(engine, "network", "inspect", name)
    if done.returncode != 0:
        made = _engine(engine, "network", "create", "--internal", name)
        done = _engine(engine, "network", "inspect", name)
        if done.returncode != 0:
            raise ServeProblem(f"cannot create the {engine} network {name}: {_said(made)}")
    try:
        found = json.loads(done.stdout.decode("utf-8", "replace"))
        info = found[0] if isinstance(found, list) else found
        internal = {key.lower(): value for key, value in info.items()}.get("internal")
    except (ValueError, IndexError, AttributeError, TypeError):
        internal = None
    if internal is not True:
        raise ServeProblem(f"the {engine} network {name} exists but is not internal (it would give the server a "
                           f"route out): remove it ('{engine} network rm {name}') and the kit makes it again")


class _Container:
    """A detached container of ``engine`` named ``name``."""

    def __init__(self, engine: str, name: str):
        self.engine = engine
        self.name = name
        self.removed = False
        self.kept_output: str | None = None
        self.kept_status: int | None = None
        self.running_seen = True

    def state(self) -> dict | None:
        done = _engine(self.engine, "inspect", "--format", "{{json .State}}", self.name)
        if done.returncode != 0:
            return None
        try:
            state = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[0])
        except (ValueError, IndexError):
            return None
        return state if isinstance(state, dict) else None

    def address(self) -> str | None:
        """The container's IP address on :data:`NETWORK`, None when it has none (it is not running)."""
        done = _engine(self.engine, "inspect", "--format", "{{json .NetworkSettings.Networks}}", self.name)
        try:
            networks = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[0])
            address = networks[NETWORK]["IPAddress"]
        except (ValueError, IndexError, KeyError, TypeError):
            return None
        return address if isinstance(address, str) and address else None

    def alive(self) -> bool:
        if self.removed:
            return False
        state = self.state()
        return bool(state and state.get("Running"))

    def exit_status(self) -> int | None:
        if self.removed:
            return self.kept_status
        state = self.state()
        if state is None or state.get("Running"):
            return None
        code = state.get("ExitCode")
        return code if isinstance(code, int) else None

    def _logs(self, lines: int = _LOG_LINES) -> str:
        """The end of the container's output (stdout and stderr as the engine logged them). podman's own log
        file when it keeps one (:meth:`_podman_log`), else ``logs --tail``; podman's ``--tail`` (4.3, also behind
        its docker socket) garbles a line logged in pieces and answers an empty line when the log ends with one,
        so an answer with fewer than ``lines`` lines is checked against the whole log, read to its end but only
        its last :data:`_TAIL_BYTES` kept."""
        kept = self._podman_log()
        if kept is not None:
            return kept
        tail = self._read_logs(["--tail", str(_LOG_LINES)])
        if len([line for line in tail.splitlines() if line.strip()]) >= lines:
            return tail
        whole = self._read_logs([])
        return whole if whole.strip() else tail

    def _podman_log(self) -> str | None:
        """The last :data:`_TAIL_BYTES` of podman's ``k8s-file`` log of the container, its lines logged in pieces
        (``P``) joined; None when the engine is not podman, or the log is not such a file or cannot be read."""
        if self.engine != "podman":
            return None
        done = _engine(self.engine, "inspect", "--format", "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Path}}",
                       self.name)
        kind, _, path = done.stdout.decode("utf-8", "replace").strip().partition(" ")
        if done.returncode != 0 or kind != "k8s-file" or not path:
            return None
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _TAIL_BYTES))
                data = f.read(_TAIL_BYTES)
        except OSError:
            return None
        records = data.split(b"\n")
        if size > _TAIL_BYTES:
            records = records[1:]  # the first record read is most likely cut
        text = []
        for record in records:
            parts = record.split(b" ", 3)  # TIME STREAM P|F MESSAGE
            if len(parts) >= 3 and parts[2] in (b"P", b"F"):
                text.append((parts[3] if len(parts) == 4 else b"") + (b"\n" if parts[2] == b"F" else b""))
        return b"".join(text).decode("utf-8", "replace")

    def _read_logs(self, options: list[str]) -> str:
        try:
            reader = subprocess.Popen([self.engine, "logs", *options, self.name], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError:
            return ""
        kept = b""
        cut = False
        end = time.monotonic() + _ENGINE_TIMEOUT
        try:
            assert reader.stdout is not None  # started with stdout=PIPE
            while time.monotonic() < end:
                data = os.read(reader.stdout.fileno(), 65536)
                if not data:
                    break
                kept = (kept + data)[-_TAIL_BYTES:]
                cut = cut or len(kept) == _TAIL_BYTES
        finally:
            reader.kill()
            reader.wait()
            if reader.stdout is not None:
                reader.stdout.close()
        if reader.returncode not in (0, -signal.SIGKILL):
            return ""
        if cut:  # the first line kept is most likely cut
            kept = kept.split(b"\n", 1)[1] if b"\n" in kept else b""
        return kept.decode("utf-8", "replace")

    def output(self, lines: int) -> str:
        text = self.kept_output if self.removed and self.kept_output is not None else self._logs(lines)
        return last_lines(text, lines, "(nothing)")

    def stop(self, grace: float) -> None:
        if self.removed:
            return
        try:
            _engine(self.engine, "stop", "--time", str(max(int(round(grace)), 0)), self.name,
                    timeout=_ENGINE_TIMEOUT + grace)
            self.kept_output = self._logs(_KEPT_LINES)
            self.kept_status = self.exit_status()
        finally:
            _engine(self.engine, "rm", "--force", self.name)
            self.removed = True


def serve_image(engine: str, image: str, model: Path, port: int = 8080, ready_timeout: float = 60.0,
                command: list[str] | None = None, args: list[str] | None = None,
                probe: tuple[str, bytes] | None = None, grpc_port: int | None = None) -> Served:
    """Start ``image`` under ``engine`` (docker or podman) as a V2 server on ``model``, as KServe runs a
    predictor, and return it once ``GET /v2/health/ready`` answers 200 at ``http://CONTAINER_IP:PORT``.

    The container is detached, on the internal network :data:`NETWORK` (made when missing: the kit reaches it,
    it has no route out), with ``model`` mounted read-only at ``/mnt/models`` (made readable for everyone, for
    the container's user), ``ODAHU_MODEL_PATH=/mnt/models`` and ``PORT=port``, ``--memory 2g`` (no swap), ``--cpus
    2``, ``--pids-limit 4096``, the batch runs' ulimits and ``--user 1000:1000``. Its server must listen on
    ``port`` on all its addresses. ``command`` replaces the image's entrypoint (``command[0]``; the rest and
    ``args`` are the arguments); ``args`` alone replace its CMD; ``{port}`` and ``{model}`` in them become
    ``port`` and ``/mnt/models``. ``Served.command`` is the engine's command line. ``grpc_port`` asks for gRPC
    too, on that port inside the container (0: :data:`IMAGE_GRPC_PORT`; ``{grpc_port}``, ``GRPC_PORT``;
    ``Served.grpc`` is ``CONTAINER_IP:GRPC_PORT``).

    ServeProblem (one line; the container removed) when the engine cannot run containers, the image is not
    there, the container cannot be started, exits before it is ready, or is not ready within ``ready_timeout``."""
    if engine not in ContainerRunner.ENGINES:
        raise ServeProblem(f"engine must be one of {', '.join(ContainerRunner.ENGINES)}, not {engine!r}")
    if command is not None and not command:
        raise ServeProblem("the server command, when given, needs at least the entrypoint")
    if not 0 < port < 65536:
        raise ServeProblem(f"port {port} is not a TCP port (1 to 65535)")
    model_dir = Path(model).resolve()
    if not model_dir.is_dir():
        raise ServeProblem(f"the model folder {model_dir} does not exist")
    if ":" in str(model_dir) or "," in str(model_dir):
        raise ServeProblem(f"cannot mount {model_dir}: the path contains ':' or ','")
    if engine not in _AVAILABLE:  # asked once per engine (``info`` is the slowest of the engine's answers)
        available, reason = engine_available(engine)
        if not available:
            raise ServeProblem(reason)
        _AVAILABLE.add(engine)
    problem = ContainerRunner(engine, image, command, args)._image_problem()
    if problem is not None:
        raise ServeProblem(problem)
    try:
        _make_readable(model_dir)
    except OSError as exc:
        raise ServeProblem(f"cannot make the model folder readable for the container user: {exc}") from None
    ensure_network(engine)

    name = CONTAINER_PREFIX + "serve-" + secrets.token_hex(6)
    argv = [engine, "run", "--detach", "--name", name, "--network", NETWORK]
    argv += ["--memory", MEMORY_LIMIT, "--memory-swap", MEMORY_LIMIT, "--cpus", IMAGE_CPUS]
    argv += ["--pids-limit", str(IMAGE_PIDS)]
    for limit in ULIMITS:
        argv += ["--ulimit", limit]
    argv += ["--user", "1000:1000", "-v", f"{model_dir}:{IMAGE_MODEL}:ro"]
    argv += ["-e", f"{ENV_MODEL}={IMAGE_MODEL}", "-e", f"{ENV_PORT}={port}"]
    if grpc_port == 0:
        grpc_port = IMAGE_GRPC_PORT
    if grpc_port is not None:
        if not 0 < grpc_port < 65536 or grpc_port == port:
            raise ServeProblem(f"--grpc-port {grpc_port}: a TCP port (1 to 65535) other than the REST port {port}")
        argv += ["-e", f"{ENV_GRPC_PORT}={grpc_port}"]
    rest: list[str] = []
    if command is not None:
        argv += ["--entrypoint", command[0]]
        rest = command[1:] + (args or [])
    elif args is not None:
        rest = list(args)
    argv += [image, *fill(rest, port, IMAGE_MODEL, grpc_port)]

    container = _Container(engine, name)
    started = time.monotonic()
    _hold_sigterm()
    try:
        done = _engine(engine, *argv[1:])
    finally:
        try:
            _release_sigterm()
        except BaseException:
            container.stop(0)
            raise
    try:
        if done.returncode != 0:
            state = container.state()
            if state is not None and not str(state.get("StartedAt", "")).startswith("0001-01-01"):
                pass  # it started and ended at once: said below with its status and output
            else:
                raise ServeProblem(f"{engine} could not start the container: {_said(done)}")
        address = container.address()
        if address is None:
            if container.alive():
                raise ServeProblem(f"the container has no address on the {engine} network {NETWORK}")
            raise ServeProblem(f"the server exited with status {_status_text(container.exit_status())} before it "
                               f"was ready: {container.output(3)}")
        early = _wait_ready(container, address, port, started, ready_timeout, FAILED_GRACE, check_every=_STATE_EVERY,
                            probe=probe)
    except BaseException:
        container.stop(0)
        raise
    return Served(f"http://{address}:{port}", argv, time.monotonic() - started, container, served_before_ready=early,
                  grpc=f"{address}:{grpc_port}" if grpc_port is not None else None)
