"""The platform's validate step, done strictly: which files of a folder are conforming V2 documents.

Used by ``odahu-conformance validate`` and by the suite. For every entry of a folder (not recursive) it says
whether the file passes, what is wrong (requirement ID, JSON pointer), and what the platform would have done with
it, so files the platform drops silently are named instead of lost.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from conformance.contract.findings import Finding
from conformance.odahu import platform_rules
from conformance.v2.documents import (
    DEFAULT_MAX_BYTES,
    REQUEST,
    RESPONSE,
    Document,
    load,
    read_bytes,
)

KINDS = {"input": REQUEST, "output": RESPONSE}


@dataclass
class Verdict:
    """The outcome for one folder entry. ``platform_keeps`` is what the lax platform validator would do."""

    path: Path
    findings: list[Finding] = field(default_factory=list)
    platform_keeps: bool = False
    platform_reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings

    def line(self) -> str:
        """One line: the first finding, how many more, and the platform's fate for the file."""
        first = self.findings[0].line()
        more = f" (+{len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
        return f"{first}{more} [{self.fate()}]"

    def fate(self) -> str:
        if self.platform_keeps:
            return "the platform would pass it on"
        return f"the platform would drop it silently: {self.platform_reason}"


def check_entry(path: Path, kind: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Verdict:
    """Check one folder entry as a ``kind`` (request/response) document; never raises for bad content."""
    name = str(path)
    name_id = "P-NAME" if kind == RESPONSE else "F-JSON"
    if path.is_symlink():
        return Verdict(path, [Finding(name_id, name, "", "is a symbolic link")], platform_reason="not a regular file")
    if path.is_dir():
        return Verdict(path, [Finding(name_id, name, "", "is a folder; only files directly in the folder count")],
                       platform_reason="folders are not read (not recursive)")
    if not path.name.endswith(".json"):
        return Verdict(path, [Finding(name_id, name, "", "name does not end in .json")],
                       platform_reason="only *.json files are kept")
    document: Document = load(path, kind, max_bytes)
    if document.ok:
        return Verdict(path, platform_keeps=True)
    try:
        keeps, reason = platform_rules.accepts(read_bytes(path, max_bytes), kind)
    except OSError as exc:
        keeps, reason = False, exc.strerror or str(exc)
    return Verdict(path, document.findings, platform_keeps=keeps, platform_reason=reason)


def entries(folder: Path) -> list[Path]:
    """The folder's entries in name order (what the platform would list)."""
    return sorted(folder.iterdir(), key=lambda p: p.name)


def validate_folder(source: Path, side: str, max_bytes: int = DEFAULT_MAX_BYTES):
    """Yield a :class:`Verdict` for every entry of ``source``, checked as ``side`` ("input" or "output") files.

    One file at a time, so memory stays bounded by the largest file."""
    kind = KINDS[side]
    for path in entries(source):
        yield check_entry(path, kind, max_bytes)


def copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file in ``target``'s folder, then rename it into place."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder, then rename it into place.

    A crash never leaves a partial file under ``target``'s name (the temporary name does not end in .json)."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
