"""Model archives: pack a model folder reproducibly, unpack an archive safely.

The platform unpacks a model archive into the model folder, so members sit at the archive root
(``multiplier.txt``, ``odahuflow.project.yaml``, ...). :func:`pack` writes the same bytes for the same files every
time (sorted members, fixed times, owners and modes). :func:`unpack` checks every member before it writes
anything: no absolute paths, nothing outside the target through ``..`` or links, no device or fifo files, no more
than ``max_bytes`` uncompressed; it unpacks into a fresh folder beside the target and renames it into place, so a
rejected archive leaves nothing behind. Every problem is an :class:`ArchiveProblem` with a one-line message.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, cast

from conformance import _fs
from conformance._fs import DIR_MODE, EXEC_MODE, FILE_MODE
from conformance.contract.problems import ConformanceProblem
from conformance.text import one_line

#: Formats by file name ending (longest first, so ``.tar.gz`` wins over ``.gz``).
_FORMATS = ((".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar", "tar"), (".zip", "zip"))
#: What :func:`pack` can write.
PACK_FORMATS = ("tar.gz", "zip")
#: 1980-01-01T00:00:00Z, the earliest time a zip member can carry; used for tar members too.
FIXED_MTIME = 315532800
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_MAX_MEMBERS = 100_000
_CHUNK = 1 << 20
#: How much padding after a tar's end-of-archive block is read to reach the end of a gzip stream.
_TAIL_LIMIT = 1 << 20
#: What a broken archive raises from tarfile, zipfile, gzip and zlib while it is read.
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                RuntimeError, UnicodeDecodeError, ValueError)


class ArchiveProblem(ConformanceProblem):
    """An archive cannot be packed or unpacked safely; ``str()`` is one line naming the file (and member)."""


def archive_format(path: str | os.PathLike[str]) -> str | None:
    """``"tar.gz"``, ``"tar"`` or ``"zip"`` from the name's ending (case-insensitive), or None."""
    name = Path(path).name.lower()
    for suffix, kind in _FORMATS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    return None


def is_archive(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an archive :func:`unpack` reads (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``).

    Decided by the name; an existing folder is never an archive, whatever its name."""
    return archive_format(path) is not None and not Path(path).is_dir()


# ---------------------------------------------------------------------------------------------------- packing


def pack(model_dir: str | os.PathLike[str], target: str | os.PathLike[str], force: bool = False) -> Path:
    """Write the files of ``model_dir`` into the archive ``target`` and return ``target``.

    The format comes from ``target``'s ending (``.tar.gz``, ``.tgz`` or ``.zip``). The archive is reproducible:
    members sorted by path, times 1980-01-01, owner 0/0 without names, modes 0644 (files) and 0755 (folders), a
    gzip header without time or file name. An existing ``target`` is replaced only with ``force``; it is written
    through a temporary file in its own folder, so a failure never leaves a partial archive under its name.
    Symbolic links and special files in the model folder are refused."""
    model_path, target_path = Path(model_dir), Path(target)
    kind = _pack_format(target_path)
    members = _pack_members(model_path, target_path)
    if target_path.exists() and not force:
        raise ArchiveProblem(f"{target_path}: already exists (use --force to overwrite it)")
    if not target_path.parent.is_dir():
        raise ArchiveProblem(f"{target_path}: the folder {target_path.parent} does not exist")
    writer = _write_tar_gz if kind == "tar.gz" else _write_zip
    try:
        _fs.write_atomically(target_path, lambda handle: writer(handle, model_path, members), FILE_MODE)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ArchiveProblem(f"{target_path}: cannot pack: {exc.strerror or exc}{where}") from None
    return target_path


def _pack_format(target: Path) -> str:
    kind = archive_format(target)
    if kind is None or kind not in PACK_FORMATS:
        raise ArchiveProblem(f"{target}: cannot tell the archive format; name it *.tar.gz, *.tgz or *.zip")
    return kind


def _pack_members(model_dir: Path, target: Path) -> list[tuple[str, bool]]:
    """``(relative posix path, is_dir)`` for every entry under ``model_dir``, sorted by path."""
    if not model_dir.is_dir():
        raise ArchiveProblem(f"{model_dir}: not a model folder")
    root = os.path.realpath(model_dir)
    if os.path.commonpath([root, os.path.realpath(target)]) == root:
        raise ArchiveProblem(f"{target}: the archive must not be written inside the model folder {model_dir}")

    def unlistable(relative: str, exc: OSError) -> None:
        raise ArchiveProblem(f"{model_dir / relative}: cannot list: {exc.strerror or exc}") from None

    found: list[tuple[str, bool]] = []
    for relative, entry in _fs.walk(model_dir, unlistable):
        if entry.is_symlink():
            raise ArchiveProblem(f"{entry.path}: is a symbolic link; a model archive holds only files and folders")
        if entry.is_dir(follow_symlinks=False):
            found.append((relative, True))
        elif entry.is_file(follow_symlinks=False):
            found.append((relative, False))
        else:
            raise ArchiveProblem(f"{entry.path}: is not a regular file (device, fifo or socket)")
    return sorted(found)


def _write_tar_gz(out: IO[bytes], model_dir: Path, members: list[tuple[str, bool]]) -> None:
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, is_dir in members:
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
                if is_dir:
                    info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
                    tar.addfile(info)
                    continue
                info.mode = FILE_MODE
                with open(model_dir / name, "rb") as source:
                    info.size = os.fstat(source.fileno()).st_size
                    tar.addfile(info, source)


def _write_zip(out: IO[bytes], model_dir: Path, members: list[tuple[str, bool]]) -> None:
    with zipfile.ZipFile(out, mode="w") as archive:
        for name, is_dir in members:
            info = zipfile.ZipInfo(name + "/" if is_dir else name, date_time=ZIP_DATE)
            info.create_system = 3  # unix, so the modes below mean what they say on every OS
            if is_dir:
                info.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16) | 0x10
                archive.writestr(info, b"")
                continue
            info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(model_dir / name, "rb") as source:
                info.file_size = os.fstat(source.fileno()).st_size
                with archive.open(info, "w") as sink:
                    shutil.copyfileobj(source, sink, _CHUNK)


# -------------------------------------------------------------------------------------------------- unpacking


@dataclass
class _Member:
    """One archive member as :func:`unpack` plans to write it.

    ``kind`` is file, dir, symlink, hardlink or special; ``link`` is a link's target as stored; ``raw`` the name
    as stored; ``handle`` the tarfile/zipfile record to read the content from."""

    raw: str
    name: str
    kind: str
    size: int
    executable: bool
    link: str
    handle: tarfile.TarInfo | zipfile.ZipInfo


def unpack(archive: str | os.PathLike[str], target: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES,
           max_members: int = DEFAULT_MAX_MEMBERS) -> list[str]:
    """Unpack ``archive`` (``.tar.gz``, ``.tgz``, ``.tar`` or ``.zip``) into the folder ``target``; return the
    relative posix paths written (folders made for members included), sorted.

    ``target`` must not exist or be an empty folder; its parent must exist. Every member is checked before
    anything is written; the archive is refused (:class:`ArchiveProblem`, one line naming archive and member)
    when a member has an absolute path, leaves the target through ``..``, is a symbolic link whose target leaves
    the target folder or passes through another link, is a hard link to anything but an earlier regular file, is a
    device, fifo or other special file, appears twice, or when the members add up to more than ``max_bytes``
    uncompressed or more than ``max_members``. A corrupt or truncated archive is refused the same way. The
    content goes into a fresh folder beside ``target`` that is renamed into place at the end; on any problem it is
    removed, so nothing is left behind, inside or outside ``target``. Modes are 0755 for folders, and 0644 or 0755
    (when the member was executable) for files; owners and times are not restored."""
    archive, target = Path(archive), Path(target)
    kind = archive_format(archive)
    if kind is None:
        raise ArchiveProblem(f"{archive}: not a .tar.gz, .tgz, .tar or .zip archive")
    if not archive.is_file():
        raise ArchiveProblem(f"{archive}: " + ("is not a regular file" if archive.exists() else "does not exist"))
    _check_target(target)
    opener = _open_tar if kind.startswith("tar") else _open_zip
    try:
        with opener(archive, kind) as (members, read):
            plan = _checked(archive, members, max_bytes, max_members)
            return _extract(archive, plan, read, target, max_bytes)
    except ArchiveProblem:
        raise
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"{archive}: corrupt or truncated archive: {one_line(exc)}") from None


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ArchiveProblem(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise ArchiveProblem(f"{target}: exists and is not empty")
    if not target.parent.is_dir():
        raise ArchiveProblem(f"{target}: the folder {target.parent} does not exist")


class _Opened:
    """Context manager giving ``(members, read)`` for an open archive, closing it afterwards."""

    def __init__(self, closeable: tarfile.TarFile | zipfile.ZipFile, members: list[_Member],
                 read: Callable[[_Member], IO[bytes]]) -> None:
        self.closeable, self.members, self.read = closeable, members, read

    def __enter__(self) -> tuple[list[_Member], Callable[[_Member], IO[bytes]]]:
        return self.members, self.read

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.closeable.close()


def _open_tar(archive: Path, kind: str) -> _Opened:
    try:
        tar = tarfile.open(archive, mode="r:gz" if kind == "tar.gz" else "r:")
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"{archive}: not a readable {kind} archive: {one_line(exc)}") from None
    try:
        members = _tar_members(archive, tar)
    except BaseException:
        tar.close()
        raise

    def read(member: _Member) -> IO[bytes]:
        stream = tar.extractfile(cast(tarfile.TarInfo, member.handle))
        if stream is None:
            raise ArchiveProblem(f"{archive}: member {member.raw!r} has no content to read")
        return stream

    return _Opened(tar, members, read)


def _tar_members(archive: Path, tar: tarfile.TarFile) -> list[_Member]:
    """Every member's header, read one at a time so that a broken archive names the last good member; an
    archive that stops without its end-of-archive block (cut at a member boundary) counts as truncated."""
    members: list[_Member] = []
    try:
        while (info := tar.next()) is not None:
            members.append(_tar_member(info))
        tar.fileobj.seek(tar.offset)
        complete = len(tar.fileobj.read(tarfile.BLOCKSIZE)) == tarfile.BLOCKSIZE
        _drain(cast(IO[bytes], tar.fileobj), _TAIL_LIMIT)
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"{archive}: corrupt or truncated{_after(members)}: {one_line(exc)}") from None
    if not complete:
        raise ArchiveProblem(f"{archive}: truncated{_after(members)}: the end-of-archive block is missing")
    return members


def _drain(stream: IO[bytes], limit: int) -> None:
    """Read what follows the end-of-archive block (padding), up to ``limit`` bytes: reaching the end of a gzip
    stream makes gzip check its length and checksum, so a cut-off trailer is noticed."""
    while limit > 0:
        chunk = stream.read(min(limit, _CHUNK))
        if not chunk:
            return
        limit -= len(chunk)


def _after(members: list[_Member]) -> str:
    return f" (last member read: {members[-1].raw!r})" if members else ""


def _tar_member(info: tarfile.TarInfo) -> _Member:
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    else:
        kind = "special"
    size = info.size if kind == "file" else 0
    return _Member(info.name, info.name, kind, size, bool(info.mode & 0o111), info.linkname, info)


def _open_zip(archive: Path, kind: str) -> _Opened:
    try:
        handle = zipfile.ZipFile(archive)
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"{archive}: not a readable zip archive: {one_line(exc)}") from None
    try:
        members = [_zip_member(archive, handle, info) for info in handle.infolist()]
    except BaseException:
        handle.close()
        raise
    return _Opened(handle, members, lambda member: handle.open(cast(zipfile.ZipInfo, member.handle)))


def _zip_member(archive: Path, handle: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    if info.flag_bits & 0x1:
        raise ArchiveProblem(f"{archive}: member {info.filename!r} is encrypted")
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    file_type = stat.S_IFMT(mode)
    link = ""
    if info.is_dir() or file_type == stat.S_IFDIR:
        kind = "dir"
    elif file_type == stat.S_IFLNK:
        kind = "symlink"
        if info.file_size > 4096:
            raise ArchiveProblem(f"{archive}: member {info.filename!r} is a symbolic link with an absurd target")
        link = handle.read(info).decode("utf-8", errors="surrogateescape")
    elif file_type in (0, stat.S_IFREG):
        kind = "file"
    else:
        kind = "special"
    size = info.file_size if kind == "file" else 0
    return _Member(info.filename, info.filename, kind, size, bool(mode & 0o111), link, info)


def _checked(archive: Path, members: list[_Member], max_bytes: int, max_members: int) -> list[_Member]:
    """The members to write, in archive order, after every safety check (the archive root itself left out)."""
    if len(members) > max_members:
        raise ArchiveProblem(f"{archive}: {len(members)} members, over the limit of {max_members}")
    plan: list[_Member] = []
    seen: dict[str, _Member] = {}
    total = 0
    for member in members:
        member.name = _safe_name(archive, member)
        if member.name == ".":
            if member.kind != "dir":
                raise ArchiveProblem(f"{archive}: member {member.raw!r} names the target folder itself")
            continue
        if member.name in seen:
            raise ArchiveProblem(f"{archive}: member {member.raw!r} appears twice")
        if member.kind == "special":
            raise ArchiveProblem(f"{archive}: member {member.raw!r} is a device, fifo or other special file")
        if member.kind == "hardlink":
            _check_hardlink(archive, member, seen)
        total += member.size
        if total > max_bytes:
            raise ArchiveProblem(f"{archive}: member {member.raw!r} takes the content over the limit of {max_bytes} bytes")
        seen[member.name] = member
        plan.append(member)
    links = {name for name, member in seen.items() if member.kind == "symlink"}
    for member in plan:
        _check_not_under_link(archive, member, links)
        if member.kind == "symlink":
            _check_symlink(archive, member, links)
    return plan


def _safe_name(archive: Path, member: _Member) -> str:
    """The member's normalized relative posix path; refuse absolute paths and paths that climb out."""
    raw = member.raw
    if not raw or "\x00" in raw:
        raise ArchiveProblem(f"{archive}: member {raw!r} has an empty or invalid name")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":" and raw[0].isalpha()):
        raise ArchiveProblem(f"{archive}: member {raw!r} has an absolute path")
    name = posixpath.normpath(raw)
    if name == ".." or name.startswith("../"):
        raise ArchiveProblem(f"{archive}: member {raw!r} would be written outside the target folder")
    return name


def _check_hardlink(archive: Path, member: _Member, seen: dict[str, _Member]) -> None:
    """A hard link is written as a copy of an earlier regular file of the archive, nothing else."""
    link = member.link
    target = posixpath.normpath(link) if link and not link.startswith("/") else None
    original = seen.get(target) if target else None
    if original is None or original.kind != "file":
        outside = target is None or target == ".." or target.startswith("../")
        where = "outside the target folder" if outside else "not to an earlier regular file"
        raise ArchiveProblem(f"{archive}: member {member.raw!r} is a hard link {where} (-> {link!r})")
    member.size, member.executable = original.size, original.executable


def _check_not_under_link(archive: Path, member: _Member, links: set[str]) -> None:
    parts = member.name.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if parent in links:
            raise ArchiveProblem(f"{archive}: member {member.raw!r} lies under the symbolic link {parent!r}")


def _check_symlink(archive: Path, member: _Member, links: set[str]) -> None:
    """The link's target, read from the link's folder, must stay inside the target folder and pass through no
    other link of the archive (only its last step may be one), so the path means what it says."""
    link = member.link
    if not link or "\x00" in link:
        raise ArchiveProblem(f"{archive}: member {member.raw!r} is a symbolic link with an empty target")
    if link.startswith("/"):
        raise ArchiveProblem(f"{archive}: member {member.raw!r} is a symbolic link to an absolute path (-> {link!r})")
    stack = member.name.split("/")[:-1]
    steps = [step for step in link.split("/") if step not in ("", ".")]
    for index, step in enumerate(steps):
        if step == "..":
            if not stack:
                raise ArchiveProblem(f"{archive}: member {member.raw!r} is a symbolic link pointing outside the target folder (-> {link!r})")
            stack.pop()
            continue
        stack.append(step)
        if "/".join(stack) in links and index < len(steps) - 1:
            raise ArchiveProblem(f"{archive}: member {member.raw!r} is a symbolic link through another link (-> {link!r})")


def _extract(archive: Path, plan: list[_Member], read: Callable[[_Member], IO[bytes]], target: Path,
             max_bytes: int) -> list[str]:
    """Write the checked ``plan`` into a fresh folder beside ``target``, then rename it to ``target``."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".unpacking"))
    budget = [max_bytes]
    member = None
    try:
        for member in plan:
            _write_member(archive, member, read, staging, budget)
        member = None
        os.chmod(staging, DIR_MODE)
        if target.is_dir():
            target.rmdir()
        os.rename(staging, target)
    except BaseException as exc:
        _remove_tree(staging)
        if isinstance(exc, OSError):
            what = f"member {member.raw!r}" if member else "the unpacked folder"
            raise ArchiveProblem(f"{archive}: cannot write {what} into {target}: {exc.strerror or exc}") from None
        raise
    return _with_parents(member.name for member in plan)


def _with_parents(names: Iterable[str]) -> list[str]:
    """The names and every folder above them (folders made without a member of their own), sorted."""
    found: set[str] = set()
    for name in names:
        parts = name.split("/")
        found.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return sorted(found)


def _write_member(archive: Path, member: _Member, read: Callable[[_Member], IO[bytes]], root: Path,
                  budget: list[int]) -> None:
    path = root / member.name
    if member.kind == "dir":
        make_folders(root, path)
        return
    make_folders(root, path.parent)
    if member.kind == "symlink":
        os.symlink(member.link, path)
        return
    mode = EXEC_MODE if member.executable else FILE_MODE
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    with os.fdopen(os.open(path, flags, mode), "wb") as out:
        if member.kind == "hardlink":
            with open(root / posixpath.normpath(member.link), "rb") as source:
                _copy_limited(archive, member, source, out, budget)
        else:
            with _open_member(archive, member, read) as source:
                _copy_limited(archive, member, source, out, budget)
    os.chmod(path, mode)


def _remove_tree(root: Path) -> None:
    """Delete ``root`` and everything under it, best effort, without recursion (members may nest deeply)."""
    found: list[tuple[Path, bool]] = [(root, True)]
    found += [(Path(entry.path), entry.is_dir(follow_symlinks=False)) for _, entry in _fs.walk(root)]
    for path, is_dir in reversed(found):  # every folder comes before what it holds, so this empties it first
        try:
            os.rmdir(path) if is_dir else os.unlink(path)
        except OSError:
            pass


def make_folders(root: Path, folder: Path) -> None:
    """Make ``folder`` and the folders between it and ``root`` (which exists), each with mode 0755."""
    missing = []
    while folder != root and not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir()
        os.chmod(folder, DIR_MODE)


def _open_member(archive: Path, member: _Member, read: Callable[[_Member], IO[bytes]]) -> IO[bytes]:
    try:
        return read(member)
    except ArchiveProblem:
        raise
    except _READ_ERRORS as exc:
        raise ArchiveProblem(f"{archive}: member {member.raw!r}: corrupt or truncated: {one_line(exc)}") from None


def _copy_limited(archive: Path, member: _Member, source: IO[bytes], out: IO[bytes], budget: list[int]) -> None:
    """Copy, counting the bytes really written against what is left of ``max_bytes`` (headers can lie)."""
    while True:
        try:
            chunk = source.read(_CHUNK)
        except _READ_ERRORS as exc:
            raise ArchiveProblem(f"{archive}: member {member.raw!r}: corrupt or truncated: {one_line(exc)}") from None
        if not chunk:
            return
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise ArchiveProblem(f"{archive}: member {member.raw!r} takes the content over the size limit")
        out.write(chunk)
