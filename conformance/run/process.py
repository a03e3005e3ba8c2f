"""Running one process for a candidate: bounded capture of its output, the timeout, killing its process group,
the output-size watchdog, containment of whatever the candidate leaves running, and the fingerprints and
collection around a run that both runners share.

Containment (local candidates, ``run_process(..., isolation=...)``): the candidate runs under a small supervisor
(:data:`_SUPERVISOR`, a Python one-off) that spawns it with the unchanged environment, reports its exit status
on a private pipe and stays alive until the kit is done. With ``isolation="namespace"`` the supervisor is the
init of a new PID namespace (``unshare --pid --fork --kill-child --mount-proc``, plus ``--user
--map-current-user`` when not root): every process the candidate starts, daemons included, lives in that
namespace, is listed from the host's ``/proc`` by its namespace and dies with the supervisor. With
``isolation="sweep"`` (no ``unshare``, or the kernel refuses the namespace) the supervisor is a child
subreaper (``PR_SET_CHILD_SUBREAPER``), so that orphans, double-forked daemons included, are re-parented to it:
the leftovers are the processes whose parent chain reaches the supervisor, or whose session or process group is
the run's; they are killed one by one. ``"auto"`` picks the namespace when it works here, else the sweep.

The runners (:mod:`.local`, :mod:`.container`) share one interface, :class:`Runner`. See :mod:`conformance.run`
for the whole picture; the two runners' own docstrings say how each runs its candidate.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Mapping, Protocol, cast

from conformance import _fs
from conformance.run.observe import changes, collect_outputs, folder_digest
from conformance.run.workspace import RunResult, Workspace
from conformance.text import last_lines

#: At most this many bytes of stdout and of stderr are kept per run (the rest is read and counted, not kept).
OUTPUT_LIMIT = 1024 * 1024

#: A run that writes more than this into its output folder is stopped (it would fill the host's disk).
MAX_OUTPUT_BYTES = 4 << 30
_WATCH_EVERY = 0.5  # seconds between looks at the output folder's size

_TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL on a timeout
_DRAIN = 1.0  # seconds to read what is left in the pipes after the process is gone
NOTE = "[odahu-conformance]"


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
            text += f"\n{NOTE} output truncated: kept the first {len(self.kept)} of {self.total} bytes\n"
        return text


@dataclass
class Outcome:
    """What running one process gave (before the workspace is looked at)."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    start_error: str | None = None
    stopped: str | None = None  # why the run was stopped early (other than its timeout)
    leftovers: list[str] = field(default_factory=list)  # processes left running after the main one: "pid N: cmd"


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


def _pump(sel: selectors.BaseSelector, until: float, exited: Callable[[], bool] | None,
          watch: Callable[[], str | None] | None = None) -> str | None:
    """Read the registered pipes until they are all closed, ``until`` (monotonic) passes, or ``exited()``.

    Every half second ``watch`` (when given) may return a reason to stop the run; that reason is returned."""
    next_look = time.monotonic() + _WATCH_EVERY
    while sel.get_map() or (exited is not None and watch is not None):
        remaining = until - time.monotonic()
        if remaining <= 0:
            return None
        if exited is not None and exited():
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
                _close(sel, key)
    return None


def _start(argv: list[str], env: Mapping[str, str] | None, cwd: str | os.PathLike | None,
           pass_fds: tuple[int, ...] = (), preexec: Callable[[], None] | None = None) -> subprocess.Popen:
    """Start ``argv`` in a session (and process group) of its own, with no input and its output on pipes
    (``preexec`` runs in the child before the exec); OSError when it cannot start."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=cwd, start_new_session=True, close_fds=True, pass_fds=pass_fds, preexec_fn=preexec)


def _register_pipes(sel: selectors.BaseSelector, proc: subprocess.Popen, out: _Capture, err: _Capture) -> None:
    """Have :func:`_pump` read ``proc``'s stdout into ``out`` and its stderr into ``err``."""
    sel.register(cast(IO[bytes], proc.stdout), selectors.EVENT_READ, out)  # started with stdout=PIPE
    sel.register(cast(IO[bytes], proc.stderr), selectors.EVENT_READ, err)  # and stderr=PIPE


def _close(sel: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
    """Stop reading a pipe and close it."""
    sel.unregister(key.fileobj)
    cast(IO[bytes], key.fileobj).close()  # only pipes are registered


def _close_all(sel: selectors.BaseSelector) -> None:
    """Close every pipe still registered, then the selector."""
    for key in list(sel.get_map().values()):
        _close(sel, key)
    sel.close()


def output_watch(folder: Path, limit: int = MAX_OUTPUT_BYTES) -> Callable[[], str | None]:
    """A ``watch`` for :func:`run_process`: a reason once ``folder`` holds more than ``limit`` bytes."""

    def look() -> str | None:
        total = 0
        for _, entry in _fs.walk(folder):  # a folder that cannot be listed is skipped
            if entry.is_dir(follow_symlinks=False):
                continue
            try:
                total += entry.stat(follow_symlinks=False).st_size
            except OSError:  # gone since it was listed
                continue
            if total > limit:
                return f"stopped: it wrote more than {limit} bytes into the output folder (the kit's limit, to keep the host's disk)"
        return None

    return look


# --------------------------------------------------------------------------------------------------------------
# The memory limit of a local run: the image's, so that a command and an image get the same verdict

#: An image's memory limit (``--memory`` and ``--memory-swap``), and a local run's.
MEMORY_LIMIT = "2g"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_CGROUP_ROOT = Path("/sys/fs/cgroup")


def memory_bytes(limit: str) -> int:
    """``"2g"`` -> 2147483648, as docker and podman read ``--memory`` (b, k, m, g; binary units); ValueError."""
    text = limit.strip().lower()
    unit = text[-1:] if text[-1:] in _UNITS and not text[-1:].isdigit() else ""
    number = text[:-1] if unit else text
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"not a memory size: {limit!r} (a positive number with b, k, m or g)")
    return int(number) * _UNITS[unit]


def oom_note(limit: str) -> str:
    """The line both runners add to the captured stderr when the kernel killed the candidate at its limit."""
    return f"the candidate was killed for exceeding its memory limit ({limit})"


class _MemoryCage:
    """A fresh memory cgroup (v2 ``memory.max``, else v1 ``memory.limit_in_bytes``) limited to ``limit`` bytes,
    no swap, as a container's; when none can be made here (no write access to the kit's own cgroup), the address
    space data limit (RLIMIT_DATA) of the candidate's processes stands in for it (a failed allocation, not the
    OOM killer). ``enter`` runs in the child before exec; ``oom_kills`` counts the kernel's kills."""

    def __init__(self, limit: int):
        self.limit = limit
        self.folder: Path | None = None
        self.events = ""
        self.note = ""
        try:
            self.folder, self.events = self._make()
        except OSError as exc:
            self.folder = None
            self.note = f"memory limited by RLIMIT_DATA (no memory cgroup: {exc.strerror or exc})"

    def _make(self) -> tuple[Path, str]:
        name = f"odahu-conformance-{os.getpid()}-{time.monotonic_ns()}"
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        v1 = [line.split(":", 2)[2] for line in lines if "memory" in line.split(":", 2)[1].split(",")]
        if v1 and (_CGROUP_ROOT / "memory").is_dir():
            folder = _CGROUP_ROOT / "memory" / v1[0].lstrip("/") / name
            folder.mkdir()
            try:
                (folder / "memory.limit_in_bytes").write_text(str(self.limit))
                try:
                    (folder / "memory.memsw.limit_in_bytes").write_text(str(self.limit))
                except OSError:  # no swap accounting: nothing to limit
                    pass
            except OSError:
                folder.rmdir()
                raise
            return folder, "memory.oom_control"
        v2 = [line[3:] for line in lines if line.startswith("0::")]
        if not v2:
            raise OSError(0, "no cgroup v2 hierarchy and no v1 memory controller")
        folder = _CGROUP_ROOT / v2[0].lstrip("/") / name
        folder.mkdir()
        try:
            (folder / "memory.max").write_text(str(self.limit))
            try:
                (folder / "memory.swap.max").write_text("0")
            except OSError:
                pass
        except OSError:
            folder.rmdir()
            raise
        return folder, "memory.events"

    def enter(self) -> None:
        """In the child, before exec: join the cgroup (or set RLIMIT_DATA). Never raises: a child that cannot
        join runs with RLIMIT_DATA instead. (``resource`` is imported with the module: an import in a forked
        child can deadlock on a lock another thread held at the fork.)"""
        if self.folder is not None:
            try:
                (self.folder / "cgroup.procs").write_text(str(os.getpid()))
                return
            except OSError:
                pass
        try:
            resource.setrlimit(resource.RLIMIT_DATA, (self.limit, self.limit))
        except (OSError, ValueError):
            pass

    def oom_kills(self) -> int:
        """How many processes the kernel killed at the limit (0 without a cgroup)."""
        if self.folder is None:
            return 0
        try:
            for line in (self.folder / self.events).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        """Remove the cgroup once its processes are gone (they were killed: wait a moment for the kernel)."""
        if self.folder is None:
            return
        for _ in range(100):
            try:
                self.folder.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


# --------------------------------------------------------------------------------------------------------------
# SIGTERM: what a cancelled CI job sends, handled as Ctrl-C is


_deferring = 0  # how many _hold_sigterm() calls the main thread has not released


def _hold_sigterm() -> None:
    """Until :func:`_release_sigterm`, a SIGTERM only marks its KeyboardInterrupt as pending."""
    global _deferring
    _deferring += 1


def _release_sigterm() -> None:
    """End a :func:`_hold_sigterm`; raise the KeyboardInterrupt of a SIGTERM that came meanwhile."""
    global _deferring
    _deferring = max(0, _deferring - 1)
    handler = signal.getsignal(signal.SIGTERM)
    if _deferring == 0 and isinstance(handler, _Sigterm) and handler.pending:
        handler.pending = False
        raise KeyboardInterrupt("SIGTERM")


class _Sigterm:
    """The SIGTERM handler :func:`interrupt_on_sigterm` installs: the first SIGTERM raises KeyboardInterrupt in
    the main thread (so every ``finally`` that stops a candidate or removes a container runs, and pytest writes
    its report as interrupted); later ones are ignored, so that they cannot break that clean-up half way."""

    def __init__(self) -> None:
        self.received = False
        self.pending = False  # received inside _sigterm_deferred(): raised on its way out

    def __call__(self, signum: int, frame: object) -> None:
        if not self.received:
            self.received = True
            if _deferring:  # see _hold_sigterm
                self.pending = True
                return
            raise KeyboardInterrupt("SIGTERM")


def interrupt_on_sigterm() -> Callable[[], None] | None:
    """Handle SIGTERM like Ctrl-C (KeyboardInterrupt) from now on; returns a function that puts the previous
    handler back, or None when nothing was changed (not the main thread, or SIGTERM is already handled or
    ignored by whoever runs the kit)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _Sigterm())

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


# --------------------------------------------------------------------------------------------------------------
# Starting a program: the reasons it cannot start, found before and after trying


def program_problem(program: str, env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None) -> str | None:
    """Why ``program`` (an argv[0]) cannot be started with ``env``'s PATH from ``cwd``, one line; None if it can.

    Resolved like ``subprocess`` / ``execvp`` do: a name with a ``/`` is a path (relative to ``cwd``), any
    other name is looked up in ``PATH``."""
    if not program:
        return "empty command: nothing to run"
    if cwd is not None and not os.path.isdir(cwd):
        return f"cannot start {program!r}: the working directory {cwd} does not exist"
    if "/" in program:
        path = os.path.join(cwd, program) if cwd is not None else program
        if not os.path.exists(path):
            where = f" (in {cwd})" if cwd is not None and not os.path.isabs(program) else ""
            return f"cannot start {program!r}: command not found{where}"
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            return f"cannot start {program!r}: permission denied (not executable?)"
        return None
    search = (env if env is not None else os.environ).get("PATH", os.defpath)
    found_not_executable = False
    for folder in search.split(os.pathsep):
        path = os.path.join(folder or ".", program)
        if cwd is not None and not os.path.isabs(path):
            path = os.path.join(cwd, path)
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return None
            found_not_executable = True
    if found_not_executable:
        return f"cannot start {program!r}: permission denied (not executable?)"
    return f"cannot start {program!r}: command not found"


def _start_problem(program: str, exc: OSError, cwd: str | os.PathLike | None = None) -> str:
    """The one-line start error for an ``exec`` that failed with ``exc``."""
    if exc.errno == errno.ENOENT:
        where = f" (in {cwd})" if cwd is not None and getattr(exc, "filename", None) is None else ""
        return f"cannot start {program!r}: command not found{where}"
    if exc.errno == errno.EACCES:
        return f"cannot start {program!r}: permission denied (not executable?)"
    return f"cannot start {program!r}: {exc.strerror or exc}"


# --------------------------------------------------------------------------------------------------------------
# Containment: a supervisor that outlives the candidate, in a PID namespace or as a subreaper

#: The supervisor, run as ``python -I -S -c _SUPERVISOR STATUS_FD MODE VIEW ARGV...``. In its own mount
#: namespace, with VIEW a JSON list of folders (else ``--``), it first makes the host read-only for the candidate:
#: every mount point but /proc, /sys and /dev is remounted read-only (keeping its other flags), /dev/shm becomes
#: a private tmpfs, /tmp the host's under a private writable overlay ("notmp ERRNO" and the host's /tmp,
#: writable, where no overlay can be made), and the VIEW folders (opened beforehand) are bound back writable at
#: their paths; when that fails it writes "noview ERRNO" and goes on. It spawns ARGV with the
#: environment it was itself started with (read back from /proc/self/environ: Python's start-up may add
#: LC_CTYPE to os.environ), the signal dispositions a directly started program would have (SIGPIPE and SIGXFSZ
#: default, the ones it ignores itself default unless they were ignored already) and no blocked signal (fork and
#: exec, not posix_spawn: glibc's leaves its internal signals 32 and 33 ignored in the new program); writes
#: "started PID", then "exit CODE" (CODE as subprocess gives it: negative for a signal) and "clean" when nothing
#: else was left running, or "error ERRNO" when ARGV cannot be spawned; then reaps whatever is re-parented to
#: it until the kit kills it (it ignores SIGTERM, SIGINT, SIGHUP and SIGQUIT, so the group's signals only reach
#: the candidate). When the kit itself dies without stopping it (SIGKILL, a crash: no reader is left on the
#: STATUS_FD pipe), it kills the run itself: what was re-parented to it, its process group, and then itself (the
#: init of a PID namespace takes every process in it along).
_SUPERVISOR = r"""
import os, signal, sys
fd, mode, view, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
os.set_inheritable(fd, False)
def say(text):
    try:
        os.write(fd, text.encode() + b"\n")
    except OSError:
        pass
def make_view(writable):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    keep = 2 | 4 | 8 | 16 | 64 | 1024 | 2048 | 4096  # nosuid nodev noexec sync mandlock noatime nodiratime relatime
    def mount(source, target, kind, flags, data=None):
        if libc.mount(source and os.fsencode(source), os.fsencode(target), kind and kind.encode(), flags,
                      data and data.encode()) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), target)
    opened = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in writable]
    mount(None, "/", None, (1 << 14) | (1 << 18))  # MS_REC | MS_PRIVATE: nothing reaches the host
    with open("/proc/self/mountinfo", "rb") as f:
        points = [line.split()[4].decode("unicode_escape") for line in f]
    for point in points:
        if point.split("/")[1:2] in (["proc"], ["sys"], ["dev"]):
            continue
        try:
            flags = os.statvfs(point).f_flag & keep
            mount(None, point, None, 32 | 4096 | 1 | flags)  # MS_REMOUNT | MS_BIND | MS_RDONLY
        except OSError:
            if point == "/":
                raise
    mount("tmpfs", "/dev/shm", "tmpfs", 2 | 4, "mode=1777")  # nosuid, nodev
    host_tmp = os.open("/tmp", os.O_PATH | os.O_DIRECTORY)
    mount("tmpfs", "/tmp", "tmpfs", 2 | 4, "mode=1777")
    try:  # the host's /tmp seen through a private writable layer: programs kept there still run
        os.mkdir("/tmp/upper")
        os.mkdir("/tmp/work")
        scratch = os.open("/tmp", os.O_PATH | os.O_DIRECTORY)
        mount("overlay", "/tmp", "overlay", 0, "lowerdir=/proc/self/fd/%d,upperdir=/proc/self/fd/%d/upper,"
              "workdir=/proc/self/fd/%d/work" % (host_tmp, scratch, scratch))
    except OSError as exc:  # no overlay here: the host's /tmp, writable
        say("notmp %d" % (exc.errno or 0))
        libc.umount2(b"/tmp", 2)  # MNT_DETACH
        opened.append(("/tmp", host_tmp))
    for path, handle in opened:
        os.makedirs(path, exist_ok=True)  # inside the fresh /tmp, when it was there
        mount("/proc/self/fd/%d" % handle, path, None, 4096)  # MS_BIND
        mount(None, path, None, 32 | 4096 | (os.statvfs(path).f_flag & keep))  # writable again
        os.close(handle)
if view != "--":
    import json
    try:
        make_view(json.loads(view))
    except OSError as exc:
        say("noview %d" % (exc.errno or 0))
try:
    with open("/proc/self/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
except OSError:
    env = dict(os.environb)
default = [signal.SIGPIPE, signal.SIGXFSZ]
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    if signal.getsignal(sig) != signal.SIG_IGN:
        default.append(sig)
    signal.signal(sig, signal.SIG_IGN)
if mode == "sweep":
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:  # without it, orphans are still found by their session and process group
        pass
failed, report = os.pipe()  # close-on-exec: empty when the exec succeeded
child = os.fork()
if child == 0:
    try:
        for sig in default:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        os.write(report, b"%d" % (exc.errno or 0))
    finally:
        os._exit(127)
os.close(report)
error = os.read(failed, 32)
if error:
    os.waitpid(child, 0)
    say("error %s" % error.decode())
    sys.exit(127)
say("started %d" % child)
def lifeline():
    import select, threading, time
    def end_run():  # the kit is gone (killed, however): so is its run
        watch = select.poll()
        watch.register(fd, select.POLLERR)  # a pipe's write end reports POLLERR once no reader is left
        while not watch.poll():
            pass
        for _ in range(20):  # a sweep's subreaper: what is re-parented to it, round after round
            for entry in os.listdir("/proc"):
                try:
                    with open("/proc/%s/stat" % entry, "rb") as f:
                        if int(f.read().rsplit(b")", 1)[1].split()[1]) == os.getpid():
                            os.kill(int(entry), signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass
            time.sleep(0.01)
        try:
            os.killpg(0, signal.SIGKILL)
        finally:
            os._exit(137)  # a namespace's init: its end ends every process in it
    threading.Thread(target=end_run, daemon=True).start()
lifeline()
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == child:
        code = os.waitstatus_to_exitcode(status)
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
            say("exit %d" % code)
        except ChildProcessError:
            say("exit %d\nclean" % code)
            break
while True:
    signal.pause()
"""

ISOLATIONS = ("auto", "namespace", "sweep")
#: Said (with why) at the end of a local run's stderr when the host could not be made read-only for it.
NO_VIEW = "the host was writable for this run (a read-only view could not be made)"
_MAX_LEFTOVER_LINES = 20


@functools.cache
def _works(argv: tuple[str, ...]) -> str | None:
    """None when ``argv`` (a probe such as ``unshare ... true``) succeeds here, else its last line of error."""
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return last_lines(done.stderr.decode("utf-8", "replace"), 1, f"exit status {done.returncode}")


def _namespace_prefix(offline: bool) -> tuple[list[str] | None, str]:
    """The ``unshare`` prefix that puts a program into its own PID namespace here (and network namespace when
    ``offline``), or None and why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "unshare is not installed"
    base = ["--pid", "--fork", "--kill-child", "--mount-proc"] + (["--net"] if offline else [])
    tries = [[unshare, *base]] if os.geteuid() == 0 else []
    tries.append([unshare, "--user", "--map-current-user", *base])
    reason = ""
    for prefix in tries:
        reason = _works((*prefix, "true")) or ""
        if not reason:
            return prefix, ""
    return None, f"unshare cannot make a PID namespace here: {reason}"


def _offline_prefix() -> tuple[list[str] | None, str]:
    """A prefix that cuts a program off the network without a PID namespace, or None and why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "unshare is not installed"
    reason = ""
    for prefix in ([unshare, "--net"], [unshare, "--map-root-user", "--net"]):
        reason = _works((*prefix, "true")) or ""
        if not reason:
            return prefix, ""
    return None, f"unshare cannot make a network namespace here: {reason}"


def containment(isolation: str = "auto", offline: bool = False) -> tuple[str | None, list[str], str]:
    """How a local run is contained here: (``"namespace"`` or ``"sweep"``, the prefix before the supervisor,
    a note), or (None, [], the reason) when it cannot be (then the run cannot start)."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, not {isolation!r}")
    if not sys.executable:
        return None, [], "no Python interpreter to run the kit's supervisor (sys.executable is empty)"
    why_not = ""
    if isolation in ("auto", "namespace"):
        prefix, why_not = _namespace_prefix(offline)
        if prefix is not None:
            return "namespace", prefix, "own PID namespace" + (" without network" if offline else "")
        if isolation == "namespace":
            return None, [], why_not
    prefix = []
    if offline:
        net, reason = _offline_prefix()
        if net is None:
            return None, [], f"cannot cut the candidate off the network: {reason}"
        prefix = net
    note = "subreaper sweep" + (f" ({why_not})" if why_not else "") + (" without network" if offline else "")
    return "sweep", prefix, note


def _stat(pid: str) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, sid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])


def _describe_process(pid: int, inner: bool) -> str:
    """``pid N: command line`` (with its pid inside the namespace when ``inner`` and it differs)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        cmd = ""
    if not cmd:
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                cmd = "[" + f.read().decode("utf-8", "replace").strip() + "]"
        except OSError:
            cmd = "?"
    if len(cmd) > 200:
        cmd = cmd[:197] + "..."
    line = f"pid {pid}"
    if inner:
        ns_pid = _inner_pid(pid)
        if ns_pid is not None and ns_pid != pid:
            line += f" (pid {ns_pid} in the run's namespace)"
    return f"{line}: {cmd}"


def _inner_pid(pid: int) -> int | None:
    """The pid of ``pid`` in its own (innermost) PID namespace."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None


def _pids() -> list[str]:
    try:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


class _Supervised:
    """A candidate started under :data:`_SUPERVISOR`: its status, its leftovers, and its end."""

    def __init__(self, mode: str, proc: subprocess.Popen, status: _Capture):
        self.mode = mode
        self.proc = proc  # unshare (namespace) or the supervisor itself (sweep)
        self.status = status
        self.namespace: str | None = None

    def _lines(self) -> list[str]:
        return self.status.kept.decode("ascii", "replace").splitlines()

    def _value(self, word: str) -> int | None:
        for line in self._lines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == word:
                return int(parts[1])
        return None

    def exited(self) -> bool:
        """Whether the candidate's main process is gone (or could not start, or the supervisor died)."""
        if self._value("exit") is not None or self._value("error") is not None:
            return True
        return self.proc.poll() is not None

    def start_error(self) -> int | None:
        return self._value("error")

    def no_private_tmp(self) -> int | None:
        """The errno when /tmp could not be made private (it was the host's, writable), else None."""
        return self._value("notmp")

    def no_view(self) -> int | None:
        """The errno when the read-only view of the host could not be made, else None."""
        return self._value("noview")

    def exit_code(self) -> int | None:
        return self._value("exit")

    def _members(self) -> list[tuple[int, bool]]:
        """(host pid, is the main process) of the processes of the run still running, without the supervisor."""
        main = self._value("started")
        if "clean" in self._lines():
            return []
        found = []
        if self.mode == "namespace":
            if self.namespace is None:
                try:
                    self.namespace = os.readlink(f"/proc/{self.proc.pid}/ns/pid_for_children")
                    if self.namespace == os.readlink("/proc/self/ns/pid"):
                        self.namespace = None  # unshare has not made it yet
                except OSError:
                    self.namespace = None
                if self.namespace is None:
                    return []
            for name in _pids():
                try:
                    if os.readlink(f"/proc/{name}/ns/pid") != self.namespace:
                        continue
                except OSError:
                    continue
                info = _stat(name)
                inner = _inner_pid(int(name))
                if info is None or info[0] in "ZX" or inner == 1:
                    continue
                found.append((int(name), inner == main))
            return found
        root = self.proc.pid
        table = {}
        for name in _pids():
            info = _stat(name)
            if info is not None:
                table[int(name)] = info
        for pid, (state, ppid, pgid, sid) in table.items():
            if pid == root or state in "ZX":
                continue
            related = sid == root or pgid == root
            seen, up = set(), ppid
            while not related and up > 1 and up not in seen:
                seen.add(up)
                related = up == root
                up = table[up][1] if up in table else 0
            if related:
                found.append((pid, pid == main))
        return found

    def finish(self) -> list[str]:
        """Find what the run left running, kill it all (the supervisor last) and wait; the leftovers' lines."""
        lines: list[str] = []
        seen: set[int] = set()

        def note(members: list[tuple[int, bool]]) -> None:
            for pid, main in members:
                if pid not in seen and not main:  # the main process is not a leftover (it timed out, if alive)
                    seen.add(pid)
                    if len(lines) < _MAX_LEFTOVER_LINES:
                        lines.append(_describe_process(pid, self.mode == "namespace"))

        try:
            # Freeze what is left at once, as a pod's processes end with its main one: what they write later must
            # not be judged. A process that was ending anyway (a pending SIGTERM is taken before SIGSTOP) is gone
            # by the next look and not listed.
            members = self._members()
            frozen: set[int] = set()
            for _ in range(50):
                fresh = [pid for pid, main in members if pid not in frozen and not main]
                if not fresh:
                    break
                for pid in fresh:
                    frozen.add(pid)
                    try:
                        os.kill(pid, signal.SIGSTOP)
                    except (ProcessLookupError, PermissionError):
                        pass
                time.sleep(0.01)
                members = self._members()
            note(members)
            if self.mode == "sweep":
                for _ in range(50):  # freeze, then kill, until no process of the run is left
                    if not members:
                        break
                    for sig in (signal.SIGSTOP, signal.SIGKILL):
                        for pid, _ in members:
                            try:
                                os.kill(pid, sig)
                            except (ProcessLookupError, PermissionError):
                                pass
                    time.sleep(0.01)
                    members = self._members()
                    note(members)
        finally:
            _signal_group(self.proc.pid, signal.SIGKILL)  # unshare and the supervisor (namespace: all of it)
            try:
                self.proc.kill()
            except OSError:  # pragma: no cover
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL (D state)
                pass
        if len(seen) > len(lines):
            lines.append(f"... and {len(seen) - len(lines)} more")
        return lines


def run_process(
    argv: list[str],
    env: dict[str, str] | None,
    cwd: str | os.PathLike | None,
    timeout: float,
    on_timeout: Callable[[], None] | None = None,
    watch: Callable[[], str | None] | None = None,
    isolation: str | None = None,
    offline: bool = False,
    memory: str | None = None,
    writable: list[Path] | None = None,
) -> Outcome:
    """Run ``argv`` (no shell) in a new session / process group and wait at most ``timeout`` seconds.

    On a timeout ``on_timeout`` runs first (a container runner kills its container there), then the process
    group gets SIGTERM and, after a short grace, SIGKILL. After the main process exits, whatever is left of its
    group is SIGKILLed too, as a pod's processes end with it.

    ``isolation`` (``auto``, ``namespace`` or ``sweep``; see the module's docstring) runs ``argv`` under the
    kit's supervisor so that every process it leaves behind, daemons included, is found, killed and listed in
    ``Outcome.leftovers``; ``offline`` then also runs it without network. Without ``isolation`` (the container
    runner: the engine client's helpers must outlive it) only the process group is killed.

    ``memory`` (with ``isolation``; ``"2g"``, as an image's ``--memory``) limits the memory of the whole run: a
    memory cgroup of its own where the kit can make one (the kernel's OOM killer stops the run at the limit, and
    the stderr then ends with :func:`oom_note`, as an image's does), else RLIMIT_DATA on each process.

    ``writable`` (with isolation in a PID namespace, which has its own mount namespace) makes the host read-only
    for the run, as an image sees only its mounts: these folders stay writable, /dev/shm is private and empty,
    and what is written in /tmp lands in a private layer over the host's. Under a subreaper sweep it cannot be done (:func:`containment`'s note says so); when the kernel
    refuses, the run goes on and its stderr ends with a line saying so (:data:`NO_VIEW`).
    """
    if not argv:
        return Outcome(None, "", "", False, "empty command: nothing to run")
    if isolation is None:
        return _run_plain(argv, env, cwd, timeout, on_timeout, watch)
    mode, prefix, reason = containment(isolation, offline)
    if mode is None:
        return Outcome(None, "", "", False, f"cannot contain the candidate: {reason}")
    problem = program_problem(argv[0], env, cwd)
    if problem is not None:
        return Outcome(None, "", "", False, problem)
    cage = _MemoryCage(memory_bytes(memory)) if memory is not None else None
    oom_kills = 0
    status_read, status_write = os.pipe()
    shown = json.dumps([os.fspath(path) for path in writable]) if writable is not None and mode == "namespace" else "--"
    command = [*prefix, "--", sys.executable, "-I", "-S", "-c", _SUPERVISOR, str(status_write), mode, shown, *argv]
    if not prefix:
        command = command[1:]
    _hold_sigterm()  # a SIGTERM in the middle of the start would leave the started process running
    try:
        proc = _start(command, env, cwd, pass_fds=(status_write,), preexec=cage.enter if cage else None)
    except BaseException as exc:
        os.close(status_read)
        if cage is not None:
            cage.remove()
        _release_sigterm()
        if not isinstance(exc, OSError):
            raise
        return Outcome(None, "", "", False, f"cannot start the kit's supervisor {command[0]!r}: {exc.strerror or exc}")
    finally:
        os.close(status_write)

    out, err, status = _Capture(), _Capture(), _Capture()
    supervised = _Supervised(mode, proc, status)
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + timeout
    timed_out = False
    stopped = None
    leftovers: list[str] = []
    finished = False
    try:
        _register_pipes(sel, proc, out, err)
        sel.register(os.fdopen(status_read, "rb", buffering=0), selectors.EVENT_READ, status)
        # a SIGTERM held during the start is raised here, where the whole run is stopped (the pipes registered
        # first, so that the finally below closes them)
        _release_sigterm()
        stopped = _pump(sel, deadline, supervised.exited, watch)
        if stopped or not supervised.exited():
            timed_out = not stopped
            if on_timeout is not None:
                on_timeout()
            _signal_group(proc.pid, signal.SIGTERM)  # unshare blocks it, the supervisor ignores it
            _pump(sel, time.monotonic() + _TERM_GRACE, supervised.exited)
        finished = True
        leftovers = supervised.finish()
        _pump(sel, time.monotonic() + _DRAIN, None)
    finally:
        if not finished:  # interrupted (Ctrl-C, SIGTERM): stop the whole run, the sweep's orphans included
            supervised.finish()
        _close_all(sel)
        if proc.poll() is None:  # pragma: no cover - only when something above raised
            _signal_group(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=10)
        if cage is not None:
            oom_kills = cage.oom_kills()
            cage.remove()
    if writable is not None and supervised.no_view() is not None:  # (a sweep says so in its containment note)
        err.add(f"\n{NOTE} {NO_VIEW}: {os.strerror(supervised.no_view() or 0)}\n".encode())
    elif writable is not None and supervised.no_private_tmp() is not None:
        err.add(f"\n{NOTE} /tmp was the host's, writable, for this run (no private overlay: "
                f"{os.strerror(supervised.no_private_tmp() or 0)})\n".encode())
    if cage is not None and oom_kills:
        err.add(f"\n{NOTE} {oom_note(cast(str, memory))}\n".encode())
    error = supervised.start_error()
    if error is not None:
        failure = OSError(error, os.strerror(error))
        return Outcome(None, out.text(), err.text(), False, _start_problem(argv[0], failure), leftovers=leftovers)
    killed = timed_out or stopped
    code = supervised.exit_code()
    if code is None and not killed:  # the supervisor died without telling: say what is known
        code = proc.returncode
        err.add(f"\n{NOTE} the kit's supervisor ended before reporting the exit status (status {code})\n".encode())
    return Outcome(None if killed else code, out.text(), err.text(), timed_out, stopped=stopped, leftovers=leftovers)


def _run_plain(
    argv: list[str],
    env: dict[str, str] | None,
    cwd: str | os.PathLike | None,
    timeout: float,
    on_timeout: Callable[[], None] | None,
    watch: Callable[[], str | None] | None,
) -> Outcome:
    """:func:`run_process` without a supervisor: only the process group is signalled."""
    try:
        proc = _start(argv, env, cwd)
    except OSError as exc:
        return Outcome(None, "", "", False, _start_problem(argv[0], exc, cwd))

    out, err = _Capture(), _Capture()
    sel = selectors.DefaultSelector()
    _register_pipes(sel, proc, out, err)
    deadline = time.monotonic() + timeout
    timed_out = False
    stopped = None
    try:
        stopped = _pump(sel, deadline, lambda: proc.poll() is not None, watch)
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
        _close_all(sel)
        if proc.poll() is None:  # pragma: no cover - only when something above raised
            _terminate_group(proc, grace=0)
    killed = timed_out or stopped
    return Outcome(None if killed else proc.returncode, out.text(), err.text(), timed_out, stopped=stopped)


def run_collected(ws: Workspace, command: list[str], body: Callable[[], Outcome]) -> RunResult:
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
        leftovers=list(outcome.leftovers),
    )
