"""A candidate that is a local program: no shell, its own PID namespace (or a subreaper sweep), exactly the three
ODAHU variables."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from conformance.run.process import (
    ISOLATIONS,
    MAX_OUTPUT_BYTES,
    MEMORY_LIMIT,
    Outcome,
    containment,
    memory_bytes,
    output_watch,
    program_problem,
    run_collected,
    run_process,
)
from conformance.run.workspace import (
    ENV_INPUT,
    ENV_MODEL,
    ENV_OUTPUT,
    RunResult,
    Workspace,
)


class LocalRunner:
    """A candidate that is a local program, run without a shell.

    ``argv`` is the program and its arguments (split like a shell would: see ``from_string``); ``cwd`` the
    working directory (default: the caller's). The program sees the host environment without any ``ODAHU_*``
    variable, plus exactly ``ODAHU_MODEL_PATH`` (``ws.model``, or ``ws.model_in_image`` when the model is not
    staged), ``ODAHU_INPUT_PATH`` and ``ODAHU_OUTPUT_PATH``. ``RunResult.command`` is ``argv``.

    ``isolation`` says how what the program leaves running is found and killed (``RunResult.leftovers``):
    ``"auto"`` (its own PID namespace when ``unshare`` can make one here, else a subreaper sweep),
    ``"namespace"`` or ``"sweep"``; see :mod:`conformance.run.process`. ``offline=True`` runs it without
    network as well (a network namespace; the run cannot start when none can be made here).

    ``memory`` is the whole run's memory limit, an image's by default (``"2g"``, as ``--memory`` reads it): a
    memory cgroup of its own where the kit can make one, else RLIMIT_DATA; a run the kernel kills at the limit
    says so at the end of its stderr, as an image's does (see :func:`conformance.run.process.run_process`).

    ``readonly_host`` (in a PID namespace, which brings a mount namespace) makes the run see the host read-only,
    as an image sees only its mounts: only the workspace folder that holds the output folder stays writable
    (input and model are in it, fingerprinted for P-READONLY), /tmp and /dev/shm are private and empty. Under a
    subreaper sweep the host stays writable (:meth:`containment` says so).
    """

    #: Stop the run once the output folder holds more than this many bytes.
    max_output_bytes = MAX_OUTPUT_BYTES

    def __init__(self, argv: list[str], cwd: str | os.PathLike | None = None, isolation: str = "auto",
                 offline: bool = False, memory: str = MEMORY_LIMIT, readonly_host: bool = True):
        self.argv = list(argv)
        memory_bytes(memory)  # ValueError when it is not a size
        self.cwd = cwd
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, not {isolation!r}")
        self.isolation = isolation
        self.offline = offline
        self.memory = memory
        self.readonly_host = readonly_host

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
        env.update({name: str(path) for name, path in ws.decoys.items()})
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
        def body() -> Outcome:
            if ws.model is None and ws.model_in_image is None:
                return Outcome(None, "", "", False, "the workspace has no model (neither model nor model_in_image)")
            writable = None
            if self.readonly_host:
                writable = sorted({ws.output.parent, *(Path(path).parent for path in ws.decoys.values())})
            return run_process(self.argv, self.environment(ws), self.cwd, timeout,
                               watch=output_watch(ws.output, self.max_output_bytes),
                               isolation=self.isolation, offline=self.offline, memory=self.memory,
                               writable=writable)

        return run_collected(ws, self.argv, body)

    def containment(self) -> str:
        """How runs are contained here, one line (``own PID namespace, host read-only``, ``subreaper sweep (why),
        host writable``), or why they cannot be."""
        mode, _, note = containment(self.isolation, self.offline)
        if mode is None:
            return f"cannot contain the candidate: {note}"
        return note + (", host read-only" if self.readonly_host and mode == "namespace" else ", host writable")

    def preflight(self) -> str | None:
        """Why no run can start (program not found or not executable, no containment possible), one line; or None."""
        problem = program_problem(self.argv[0] if self.argv else "", os.environ, self.cwd)
        if problem is not None:
            return problem
        mode, _, note = containment(self.isolation, self.offline)
        return None if mode is not None else f"cannot contain the candidate: {note}"

    def __repr__(self) -> str:
        extra = "" if self.isolation == "auto" else f", isolation={self.isolation!r}"
        extra += ", offline=True" if self.offline else ""
        extra += "" if self.memory == MEMORY_LIMIT else f", memory={self.memory!r}"
        extra += "" if self.readonly_host else ", readonly_host=False"
        return f"LocalRunner({self.argv!r}, cwd={self.cwd!r}{extra})"
