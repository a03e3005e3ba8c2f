"""Option values checked as they are parsed, alike by the command line (:mod:`conformance.cli`) and the pytest
plugin (:mod:`conformance.plugin`).

- A path given blank (``--out ""``, an unset variable) is refused: it is never read as the current folder.
- Numbers must be finite and in range: a count of workspaces is not negative, a byte limit is positive, a tolerance
  is finite and not negative, a run timeout is finite and at least :data:`MIN_RUN_TIMEOUT` seconds (a shorter one
  could not even start a predictor, and would blame the candidate for the kit's setting: P-TIMELY).
- A file or folder the kit will write (a report, a baseline, an output folder) is made at most one level deep:
  its folder must exist, or be missing in a folder that exists. Nothing is made while checking.

Each check returns the value or raises :class:`ArgumentProblem`, whose ``str()`` is the one-line reason; the front
end puts the option's name before it.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from conformance.contract.problems import ConformanceProblem

#: The shortest run timeout an option accepts, in seconds.
MIN_RUN_TIMEOUT = 1.0


class ArgumentProblem(ConformanceProblem, argparse.ArgumentTypeError):
    """An option's value is unusable; ``str()`` is one line saying why (argparse shows it after the option)."""


def path(text: str) -> Path:
    """``text`` as a path; refused when blank (it would name the current folder)."""
    if not text.strip():
        raise ArgumentProblem("is blank: give a path (a blank value, e.g. an unset variable, would mean the "
                              "current folder)")
    return Path(text)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ArgumentProblem(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArgumentProblem(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ArgumentProblem(f"must be a finite number, got {text!r}")
    return value


def count(text: str) -> int:
    """A whole number, 0 or more."""
    value = _integer(text)
    if value < 0:
        raise ArgumentProblem(f"must not be negative, got {value}")
    return value


def positive(text: str) -> int:
    """A whole number, 1 or more."""
    value = _integer(text)
    if value < 1:
        raise ArgumentProblem(f"must be at least 1, got {value}")
    return value


def workers(text: str) -> str:
    """pytest-xdist's ``-n``: a whole number, 0 or more (0: no workers), or ``auto`` (one per core)."""
    if text.strip() in ("auto", "logical"):
        return text.strip()
    return str(count(text))


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    value = _integer(text)
    if not 1 <= value <= 65535:
        raise ArgumentProblem(f"must be a port from 1 to 65535, got {value}")
    return value


def grpc_port(text: str) -> int:
    """A TCP port for a server's gRPC endpoint, 1 to 65535, or ``auto`` (0: a free one for a local command, 8081,
    KServe's and MLServer's, inside a container)."""
    return 0 if text.strip() == "auto" else port(text)


def tolerance(text: str) -> float:
    """A finite number, 0 or more."""
    value = _number(text)
    if value < 0:
        raise ArgumentProblem(f"must not be negative, got {text}")
    return value


def run_timeout(text: str) -> float:
    """A finite number of seconds, at least :data:`MIN_RUN_TIMEOUT`."""
    value = _number(text)
    if not value >= MIN_RUN_TIMEOUT:
        raise ArgumentProblem(f"must be at least {MIN_RUN_TIMEOUT:g} s (a predictor needs time to start), got {text}")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds, more than 0."""
    value = _number(text)
    if not value > 0:
        raise ArgumentProblem(f"must be a positive number of seconds, got {text}")
    return value


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (made if missing, in a folder that exists), or None. The reason
    names the path at fault. Nothing is left behind: an existing folder is probed with a temporary file, a missing
    one is not made."""
    try:  # (a name too long, a folder that cannot be looked into: one line, not a traceback)
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                return f"{folder} exists and is not a folder"
            where = folder
        else:
            parent = folder.parent
            if not parent.is_dir():
                state = "is not a folder" if parent.exists() else "does not exist"
                return f"{parent} {state} (only the last folder of a path is made)"
            where = parent
    except OSError as exc:
        return f"cannot look at {exc.filename or folder}: {exc.strerror or exc}"
    try:
        handle, probe = tempfile.mkstemp(dir=where, prefix=".odahu-conformance-probe.", suffix=".partial")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write in {where}: {exc.strerror or exc}"
    return None


def file_problem(target: Path) -> str | None:
    """Why the file ``target`` cannot be written (its folder made if missing, in a folder that exists), or None."""
    try:
        if target.is_dir():
            return "is a folder; give a file name"
    except OSError as exc:
        return f"cannot look at it: {exc.strerror or exc}"
    return folder_problem(target.parent)
