"""One run's workspace, laid out as the platform lays out an InferenceJob pod's folders.

:func:`new_workspace` makes the folders (``input/`` exists, ``model/`` and ``raw-output/`` do not yet);
:func:`stage_requests` copies requests through the platform's input filter; :func:`stage_model` /
:func:`stage_model_text` put a model in place; :func:`folder_digest` and :func:`changes` tell what a run changed;
:func:`collect_outputs` reads everything a run left in the output folder; :func:`remove_workspace` deletes it all.
Bad input raises :class:`StagingProblem` with a one-line message naming the file, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from conformance import _fs
from conformance._fs import DIR_MODE, EXEC_MODE, FILE_MODE
from conformance.contract.problems import ConformanceProblem
from conformance.odahu import archives, platform_rules
from conformance.odahu.model import MULTIPLIER_FILE
from conformance.run.workspace import Workspace
from conformance.text import integer_text
from conformance.v2.documents import DEFAULT_MAX_BYTES

PREFIX = "odahu-conformance-"
INPUT_DIR, MODEL_DIR, OUTPUT_DIR = "input", "model", "raw-output"
DEFAULT_MAX_FILE_BYTES = 512 << 20


class StagingProblem(ConformanceProblem):
    """A workspace cannot be staged as asked; ``str()`` is one line naming the file."""


# ------------------------------------------------------------------------------------------------- workspace


def new_workspace(base: str | os.PathLike | None = None) -> Workspace:
    """A fresh workspace in a new temporary folder (under ``base`` when given).

    ``input/`` exists and is empty; ``model/`` and ``raw-output/`` are only paths: the model is staged later, and
    the output folder does not exist before a run, as on the platform. Staged files get mode 0644 and folders
    0755, whatever the umask."""
    try:
        root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    except OSError as exc:
        raise StagingProblem(f"{base}: cannot make a workspace there: {exc.strerror or exc}") from None
    workspace = Workspace(root=root, input=root / INPUT_DIR, output=root / OUTPUT_DIR, model=root / MODEL_DIR)
    workspace.input.mkdir()
    os.chmod(workspace.input, DIR_MODE)
    return workspace


def remove_workspace(ws: Workspace) -> None:
    """Delete the workspace's folder and everything in it, also files and folders a candidate made read-only,
    however deep it nested them.

    A workspace already gone is fine; raise :class:`StagingProblem` naming what could not be removed."""
    root = ws.root
    if not os.path.lexists(root):
        return
    failures = _remove_tree(root)
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise StagingProblem(f"cannot remove the workspace {root}: {failures[0]}{more}")


def _remove_tree(root: Path) -> list[str]:
    """Delete ``root`` and everything under it (owner access restored first, no recursion); return one line per
    entry that could not be removed."""
    failures: list[str] = []
    is_folder = root.is_dir() and not root.is_symlink()
    if is_folder:
        _make_writable(root)
        found = [(Path(entry.path), entry.is_dir(follow_symlinks=False))
                 for _, entry in _fs.walk(root, lambda relative, exc: failures.append(f"{root / relative}: {exc.strerror or exc}"))]
        for path, is_dir in reversed(found):  # children before their folder
            _remove_one(path, is_dir, failures)
    _remove_one(root, is_folder, failures)
    return failures


def _remove_one(path: Path, is_dir: bool, failures: list[str]) -> None:
    try:
        if is_dir:
            os.rmdir(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        failures.append(f"{path}: {exc.strerror or exc}")


def _make_writable(folder: Path) -> None:
    """Give the owner full access to ``folder`` and every folder under it (links are not followed)."""
    if folder.is_symlink() or not folder.is_dir():
        return
    _add_owner_access(folder)
    for _, entry in _fs.walk(folder):
        if entry.is_dir(follow_symlinks=False):
            _add_owner_access(Path(entry.path))


def _add_owner_access(folder: Path) -> None:
    try:
        os.chmod(folder, stat.S_IMODE(folder.lstat().st_mode) | stat.S_IRWXU)
    except OSError:
        pass


# -------------------------------------------------------------------------------------------------- requests


def stage_requests(ws: Workspace, source: str | os.PathLike | Iterable[tuple[str, bytes]]) -> list[str]:
    """Copy requests into ``ws.input`` through the platform's input filter; return the names staged, in order.

    ``source`` is a folder (its entries, not recursive, in name order) or an iterable of ``(name, bytes)``.
    Kept are ``*.json`` regular files that the platform's lax validator accepts (requests that are invalid for the
    contract but that the platform passes on are kept too: the candidate must face them); their bytes are copied
    exactly. Every other entry is left out with one line ``"NAME: reason"`` appended to ``ws.skipped``."""
    staged: list[str] = []
    for name, raw in filter_requests(ws, source):
        _write_new(ws.input / name, raw)
        staged.append(name)
    return staged


def filter_requests(ws: Workspace, source: str | os.PathLike | Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The ``(name, bytes)`` requests of ``source`` that the platform's input filter keeps, in order, written
    nowhere (:func:`stage_requests` writes them); a line in ``ws.skipped`` for each one left out."""
    if isinstance(source, (str, os.PathLike)):
        pairs = _folder_requests(Path(source), ws.skipped)
    else:
        pairs = _named_requests(source, ws.skipped)
    kept: list[tuple[str, bytes]] = []
    for name, raw in pairs:
        keeps, reason = platform_rules.accepts(raw, "request")
        if not keeps:
            ws.skipped.append(f"{name}: {reason}")
            continue
        kept.append((name, raw))
    return kept


def _folder_requests(folder: Path, skipped: list[str]) -> Iterable[tuple[str, bytes]]:
    """``(name, bytes)`` for each entry of ``folder`` the platform's input step keeps
    (:func:`conformance.odahu.platform_rules.decide_entry`: ``*.json`` entries, not recursive, a symbolic link
    judged by its target); a skipped line for each entry it drops. An entry that would fail the platform's whole
    step (a dangling link, a link to a folder, a FIFO) is a :class:`StagingProblem`: on the platform the job fails
    there and no request reaches the predictor."""
    if not folder.is_dir():
        raise StagingProblem(f"{folder}: " + ("not a folder" if folder.exists() else "does not exist"))
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise StagingProblem(f"{folder}: cannot list: {exc.strerror or exc}") from None
    for path in entries:
        decision = platform_rules.decide_entry(path, "request", DEFAULT_MAX_BYTES)
        if decision.fails_step:
            raise StagingProblem(f"{path}: the platform's input step fails on it ({decision.reason}): the job "
                                 f"would fail and no request reach the predictor")
        if not decision.kept:
            skipped.append(decision.line())
            continue
        try:
            raw = _read_capped(path, DEFAULT_MAX_BYTES)
        except OSError as exc:
            skipped.append(f"{path.name}: cannot read ({exc.strerror or exc})")
            continue
        yield path.name, raw


def _read_capped(path: Path, limit: int) -> bytes:
    """A file's bytes (through a link, as the platform reads it); OSError when it holds more than ``limit``."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    with os.fdopen(descriptor, "rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise OSError(f"over the limit of {limit} bytes")
    return raw


def _named_requests(pairs: Iterable[tuple[str, bytes]], skipped: list[str]) -> Iterable[tuple[str, bytes]]:
    """The given pairs with ``*.json`` names; a skipped line for other names, a problem for unusable ones."""
    seen: set[str] = set()
    for name, raw in pairs:
        if not isinstance(name, str) or not _plain_name(name):
            raise StagingProblem(f"{name!r}: not a plain file name for a request")
        if not isinstance(raw, (bytes, bytearray)):
            raise StagingProblem(f"{name}: request content must be bytes, not {type(raw).__name__}")
        if name in seen:
            raise StagingProblem(f"{name}: given twice")
        seen.add(name)
        if not name.endswith(".json"):
            skipped.append(f"{name}: not *.json")
            continue
        yield name, bytes(raw)


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\x00" not in name


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a file that must not exist yet (mode 0644)."""
    try:
        with open(path, "xb") as out:
            out.write(data)
        os.chmod(path, FILE_MODE)
    except FileExistsError:
        raise StagingProblem(f"{path}: already staged") from None
    except OSError as exc:
        raise StagingProblem(f"{path}: cannot write: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------------- models


def stage_model(ws: Workspace, source: str | os.PathLike, multiplier: int | None = None,
                replaced: dict[str, bytes] | None = None) -> Path:
    """Put a copy of the model at ``ws.model`` and return that path.

    ``source`` is a model folder (its files and folders are copied, with modes 0644 or 0755 for executables and
    0755 for folders; a symbolic link is kept only when it points inside the model folder, and then as a relative
    link; links out and special files are refused; all or nothing) or a
    ``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip`` archive, unpacked safely (:func:`conformance.odahu.archives.unpack`).
    With ``multiplier``, the staged ``multiplier.txt`` is replaced by ``f"{multiplier}\\n"``; with ``replaced``
    (``{relative path: content}``), those files of the copy are (e.g. another name in the project file), every
    other file unchanged; ``source`` is never written to."""
    target = _model_target(ws)
    source = Path(source)
    if source.is_dir():
        _copy_model_folder(source, target)
    elif archives.is_archive(source) and source.is_file():
        try:
            archives.unpack(source, target)
        except archives.ArchiveProblem as exc:
            raise StagingProblem(str(exc)) from None
    elif not os.path.lexists(source):
        raise StagingProblem(f"{source}: model does not exist")
    else:
        raise StagingProblem(f"{source}: not a model folder nor a .tar.gz, .tgz, .tar or .zip archive")
    if multiplier is not None:
        _override_multiplier(target, multiplier)
    for name, content in (replaced or {}).items():
        _replace_file(target, _relative_path(name), content)
    return target


def stage_model_text(ws: Workspace, files: dict[str, str | bytes]) -> Path:
    """Stage a synthetic model at ``ws.model`` from ``{relative path: content}`` and return that path.

    Text is written as UTF-8 exactly as given (no newline added); an empty dict gives an empty model folder; all
    or nothing. Meant for bad models: no ``multiplier.txt``, ``"two"``, ``"2.5"``, an empty file."""
    target = _model_target(ws)
    checked: dict[str, str | bytes] = {}
    for name, content in files.items():
        relative = _relative_path(name)
        if relative in checked:
            raise StagingProblem(f"{name!r}: given twice (as {relative!r})")
        checked[relative] = content
    target.mkdir()
    os.chmod(target, DIR_MODE)
    try:
        for relative, content in checked.items():
            _write_model_file(target, relative, content)
    except StagingProblem:
        _remove_tree(target)
        raise
    return target


def _write_model_file(target: Path, relative: str, content: str | bytes) -> None:
    path = target / relative
    try:
        archives.make_folders(target, path.parent)
    except OSError as exc:
        raise StagingProblem(f"{path}: cannot make its folder: {exc.strerror or exc}") from None
    _write_new(path, content.encode("utf-8") if isinstance(content, str) else bytes(content))


def _model_target(ws: Workspace) -> Path:
    if ws.model is None:
        raise StagingProblem(f"{ws.root}: this workspace has no model folder (the model is inside the image)")
    if os.path.lexists(ws.model):
        raise StagingProblem(f"{ws.model}: a model is already staged")
    return ws.model


def _relative_path(name: str) -> str:
    parts = PurePosixPath(name).parts if isinstance(name, str) else ()
    if not parts or name.startswith("/") or any(p in ("..", ".") for p in parts) or "\x00" in name:
        raise StagingProblem(f"{name!r}: not a relative path inside the model folder")
    return "/".join(parts)


def _override_multiplier(target: Path, multiplier: int) -> None:
    """Replace the staged copy's ``multiplier.txt`` (never a file it links to)."""
    path = target / MULTIPLIER_FILE
    if path.is_dir() and not path.is_symlink():
        raise StagingProblem(f"{path}: is a folder; cannot set the multiplier")
    if os.path.lexists(path):
        path.unlink()
    _write_new(path, f"{integer_text(int(multiplier))}\n".encode("ascii"))


def _replace_file(target: Path, relative: str, content: bytes) -> None:
    """Replace a file of the staged copy (a link is replaced itself, never written through)."""
    path = target / relative
    if path.is_dir() and not path.is_symlink():
        raise StagingProblem(f"{path}: is a folder; cannot replace it with a file")
    if os.path.lexists(path):
        path.unlink()
    _write_model_file(target, relative, content)


def _copy_model_folder(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (which must not exist), all or nothing."""
    root = os.path.realpath(source)
    try:
        target.mkdir()
        os.chmod(target, DIR_MODE)
        _copy_tree(source, target, root)
    except BaseException as exc:
        _remove_tree(target)
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if exc.filename else ""
            raise StagingProblem(f"{source}: cannot copy the model: {exc.strerror or exc}{where}") from None
        raise


def _copy_tree(folder: Path, into: Path, root: str) -> None:
    def unreadable(relative: str, exc: OSError) -> None:
        raise exc

    for relative, entry in _fs.walk(folder, unreadable):
        path, copy = Path(entry.path), into / relative
        if entry.is_symlink():
            copy.symlink_to(_inner_link(path, root))
        elif entry.is_dir(follow_symlinks=False):
            copy.mkdir()
            os.chmod(copy, DIR_MODE)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(path, copy, follow_symlinks=False)
            executable = entry.stat(follow_symlinks=False).st_mode & 0o111
            os.chmod(copy, EXEC_MODE if executable else FILE_MODE)
        else:
            raise StagingProblem(f"{path}: is not a regular file (device, fifo or socket); a model holds only files")


def _inner_link(link: Path, root: str) -> str:
    """The relative link text that reaches, from the copy, what ``link`` reaches inside the model folder."""
    resolved = os.path.realpath(link)
    if os.path.commonpath([root, resolved]) != root:
        raise StagingProblem(f"{link}: symbolic link pointing outside the model folder (-> {os.readlink(link)})")
    return os.path.relpath(resolved, os.path.realpath(link.parent))
