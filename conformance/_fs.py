"""Small file-system pieces the kit needs in several places, written once: a non-recursive walk that never
follows links, and atomic writes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def walk(top: Path, on_error: Callable[[str, OSError], None] | None = None) -> Iterator[tuple[str, os.DirEntry]]:
    """``(relative posix path, entry)`` for every entry under ``top``: depth first, names sorted, links not
    followed, without recursion (a candidate may nest folders deeper than Python's stack).

    A folder is listed only after the caller has handled its own entry, so the caller may prepare it first. A
    folder that cannot be listed is passed to ``on_error`` (``""`` for ``top``) and skipped."""
    stack: list[tuple[str, Iterator[os.DirEntry]]] = []
    _push(stack, top, "", on_error)
    while stack:
        prefix, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        relative = prefix + entry.name
        yield relative, entry
        if entry.is_dir(follow_symlinks=False):
            _push(stack, Path(entry.path), relative + "/", on_error)


def _push(stack: list, folder: Path, prefix: str, on_error: Callable[[str, OSError], None] | None) -> None:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        if on_error is not None:
            on_error(prefix.rstrip("/"), exc)
        return
    stack.append((prefix, iter(entries)))


#: Files and folders the kit writes are readable by everyone whatever the umask (a candidate may run as another
#: user); executables keep their execute bits.
FILE_MODE, DIR_MODE, EXEC_MODE = 0o644, 0o755, 0o755


def write_atomically(target: Path, data: bytes | Callable[[IO[bytes]], None], mode: int | None = None) -> None:
    """Write ``data`` (bytes, or a function that writes to the open file) to ``target`` through a temporary file
    in the same folder, then rename it into place; ``mode`` sets its permissions.

    A crash or an interrupt never leaves a partial file under ``target``'s name (the temporary name starts with
    a dot and ends in ``.partial``); OSError propagates for the caller to word."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            if callable(data):
                data(out)
            else:
                out.write(data)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        _unlink_quietly(temporary)
        raise


def copy_atomically(source: Path, target: Path, mode: int | None = None) -> None:
    """Copy ``source`` to ``target`` the way :func:`write_atomically` writes (never a partial ``target``)."""
    def copy(out: IO[bytes]) -> None:
        with open(source, "rb") as handle:
            shutil.copyfileobj(handle, out, 1 << 20)

    write_atomically(target, copy, mode)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
