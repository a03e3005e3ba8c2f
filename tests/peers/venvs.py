"""A cached virtual environment per real V2 peer (MLServer, KServe), made by the test setup.

The two servers cannot share one environment, so each gets its own venv under ``cache_root()``
(``$ODAHU_CONFORMANCE_PEERS_CACHE``, else ``~/.cache/odahu-conformance/peers``), named ``<name>-<version>``,
outside the checkout so that it survives between runs. A venv is reused when its ``COMPLETE`` marker exists: the
marker is written last, after pip and an import check succeeded, so an interrupted install is never reused (it
is removed and made again). A file lock makes two test sessions wait for each other instead of installing twice.

When a venv cannot be made (no network, a resolution error, the time limit), ``ensure`` raises
``PeerUnavailable`` with a one-line reason; the tests skip with it. A session tries each peer at most once.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

#: How long one pip install may take before the peer is declared unavailable (a cold install downloads ~70
#: packages, a few hundred MB).
INSTALL_TIMEOUT = float(os.environ.get("ODAHU_CONFORMANCE_PEERS_INSTALL_TIMEOUT", "1200"))
MARKER = "COMPLETE"


@dataclasses.dataclass(frozen=True)
class Peer:
    """A V2 server from the package registry: ``requirements`` are pip arguments, ``module`` is imported to
    check the install."""

    name: str
    version: str
    requirements: tuple[str, ...]
    module: str


PEERS = {
    "mlserver": Peer("mlserver", "1.7.1", ("mlserver==1.7.1",), "mlserver"),
    "kserve": Peer("kserve", "0.21.0", ("kserve==0.21.0",), "kserve"),
}


class PeerUnavailable(Exception):
    """The peer's venv could not be made; the message is one line."""


def cache_root() -> Path:
    """The folder holding the peers' venvs."""
    configured = os.environ.get("ODAHU_CONFORMANCE_PEERS_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "odahu-conformance" / "peers"


def venv_dir(peer: Peer) -> Path:
    return cache_root() / f"{peer.name}-{peer.version}"


def python_of(folder: Path) -> Path:
    return folder / "bin" / "python"


_failures: dict[str, str] = {}


def ensure(peer: Peer, timeout: float = INSTALL_TIMEOUT) -> Path:
    """The python executable of ``peer``'s complete venv, made now if missing; ``PeerUnavailable`` otherwise.

    A failure is remembered for the rest of the process, so that every test of an unavailable peer skips at
    once with the same reason."""
    if peer.name in _failures:
        raise PeerUnavailable(_failures[peer.name])
    folder = venv_dir(peer)
    if (folder / MARKER).is_file():
        return python_of(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing it: wait, then reuse its work
        if (folder / MARKER).is_file():
            return python_of(folder)
        try:
            _build(peer, folder, timeout)
        except PeerUnavailable as error:
            _failures[peer.name] = str(error)
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return python_of(folder)


def _build(peer: Peer, folder: Path, timeout: float) -> None:
    shutil.rmtree(folder, ignore_errors=True)  # a half-made venv (no marker) is never trusted
    deadline = time.monotonic() + timeout
    _run([sys.executable, "-m", "venv", str(folder)], deadline, f"{peer.name}: making the venv")
    python = str(python_of(folder))
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *peer.requirements],
         deadline, f"{peer.name} {peer.version}: pip install")
    _run([python, "-c", f"import {peer.module}"], deadline, f"{peer.name} {peer.version}: import {peer.module}")
    (folder / MARKER).write_text(" ".join(peer.requirements) + "\n")


def _run(command: list[str], deadline: float, what: str) -> None:
    """Run ``command`` (its own process group, killed whole at the deadline); PeerUnavailable on failure."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PeerUnavailable(f"{what}: no time left")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise PeerUnavailable(f"{what}: not finished after {remaining:.0f} s") from None
    if process.returncode != 0:
        raise PeerUnavailable(f"{what} failed (exit {process.returncode}): {reason(output)}")


def reason(output: str) -> str:
    """The one line of pip's output that says why it failed (its last ERROR line, else its last line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    line = (errors or lines or ["no output"])[-1]
    return line if len(line) <= 300 else line[:297] + "..."
