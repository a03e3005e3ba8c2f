"""Running one process for a candidate: bounded capture of its output, the timeout, killing its process group,
the output-size watchdog, and the fingerprints and collection around a run that both runners share.

The runners (:mod:`.local`, :mod:`.container`) share one interface, :class:`Runner`. See :mod:`conformance.run`
for the whole picture; the two runners' own docstrings say how each runs its candidate.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from conformance.run.observe import changes, collect_outputs, folder_digest
from conformance.run.workspace import RunResult, Workspace

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
    """A ``watch`` for :func:`run_process`: a reason once ``folder`` holds more than ``limit`` bytes."""

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


def run_process(
    argv: list[str],
    env: dict[str, str] | None,
    cwd: str | os.PathLike | None,
    timeout: float,
    on_timeout: Callable[[], None] | None = None,
    watch: Callable[[], str | None] | None = None,
) -> Outcome:
    """Run ``argv`` (no shell) in a new session / process group and wait at most ``timeout`` seconds.

    On a timeout ``on_timeout`` runs first (a container runner kills its container there), then the process
    group gets SIGTERM and, after a short grace, SIGKILL. After the leader exits, whatever is left of its group
    (children that double-forked but stayed in the group) is SIGKILLed too, as a pod's processes end with it.
    """
    if not argv:
        return Outcome(None, "", "", False, "empty command: nothing to run")
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
        return Outcome(None, "", "", False, f"cannot start {argv[0]!r}: command not found{where}")
    except PermissionError:
        return Outcome(None, "", "", False, f"cannot start {argv[0]!r}: permission denied (not executable?)")
    except OSError as exc:
        return Outcome(None, "", "", False, f"cannot start {argv[0]!r}: {exc.strerror or exc}")

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
    return Outcome(None if killed else proc.returncode, out.text(), err.text(), timed_out, stopped=stopped)


def last_line(text: str, default: str = "") -> str:
    """The last non-empty line of ``text`` (error messages of engines end with the useful line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else default


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
    )
