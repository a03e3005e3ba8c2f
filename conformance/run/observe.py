"""What a run left behind: fingerprints of the input and model folders before and after (P-READONLY), and every
entry of the output folder (P-EVERY, P-NAME)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from conformance import _fs
from conformance.run.workspace import OutputEntry

_CHUNK = 1 << 20


def folder_digest(folder: str | os.PathLike | None) -> dict[str, str]:
    """``{relative posix path: fingerprint}`` for every entry under ``folder``, recursively, links not followed.

    The fingerprint is the sha256 of a file's content, ``"dir"``, ``"symlink:TARGET"``, ``"other"`` (device,
    fifo, socket) or ``"unreadable: reason"``. None or a missing folder gives ``{}`` (a model inside an image)."""
    if folder is None or not Path(folder).is_dir():
        return {}
    digest: dict[str, str] = {}

    def unreadable(relative: str, exc: OSError) -> None:
        if relative:
            digest[relative] = f"dir (unreadable: {exc.strerror or exc})"

    for relative, entry in _fs.walk(Path(folder), unreadable):
        if entry.is_symlink():
            digest[relative] = "symlink:" + _readlink(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            digest[relative] = "dir"
        elif entry.is_file(follow_symlinks=False):
            digest[relative] = _sha256(entry.path)
        else:
            digest[relative] = "other"
    return digest


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError as exc:
        return f"(unreadable: {exc.strerror or exc})"


def _sha256(path: str) -> str:
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                hasher.update(chunk)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    return hasher.hexdigest()


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed between two :func:`folder_digest` results: ``"added PATH"``, ``"removed PATH"``,
    ``"modified PATH"`` (content or kind), one line per path, sorted by path."""
    lines = []
    for path in sorted(set(before) | set(after)):
        if path not in before:
            lines.append(f"added {path}")
        elif path not in after:
            lines.append(f"removed {path}")
        elif before[path] != after[path]:
            lines.append(f"modified {path}")
    return lines


# --------------------------------------------------------------------------------------------------- outputs


def _allocated(info: os.stat_result | None) -> int:
    """Bytes of disk an entry takes: its allocated blocks (``st_blocks`` counts 512-byte units), or, where the
    system does not say, its size rounded up to 4 KiB."""
    if info is None:
        return 0
    blocks = getattr(info, "st_blocks", None)
    return blocks * 512 if blocks is not None else -(-info.st_size // 4096) * 4096


def collect_outputs(output: str | os.PathLike) -> tuple[bool, list[OutputEntry]]:
    """``(exists, entries)``: whether ``output`` is a folder (a real one, not a link), and every entry under it,
    recursively, sorted by path, links not followed.

    Each entry has its relative posix path, its kind (file, dir, symlink, other), for a file its size, and the
    disk space it takes (allocated blocks: many tiny files take far more than their sizes add up to).
    Nothing is read here: the judge reads each response once, through :func:`conformance.v2.documents.load`,
    with one size limit."""
    output = Path(output)
    if output.is_symlink() or not output.is_dir():
        return False, []
    entries: list[OutputEntry] = []
    for relative, entry in _fs.walk(output):
        try:
            info: os.stat_result | None = entry.stat(follow_symlinks=False)
        except OSError:
            info = None
        disk = _allocated(info)
        if entry.is_symlink():
            entries.append(OutputEntry(relative, "symlink", disk=disk))
        elif entry.is_dir(follow_symlinks=False):
            entries.append(OutputEntry(relative, "dir", disk=disk))
        elif entry.is_file(follow_symlinks=False):
            entries.append(OutputEntry(relative, "file", info.st_size if info is not None else 0, disk))
        else:
            entries.append(OutputEntry(relative, "other", disk=disk))
    return True, entries
