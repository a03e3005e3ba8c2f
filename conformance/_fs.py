"""Small file-system pieces the kit needs in several places, written once: a non-recursive walk that never
follows links, and atomic writes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path


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
