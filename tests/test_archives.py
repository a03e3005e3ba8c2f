"""Model archives: reproducible packing, and unpacking that refuses anything that could land outside the target."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import shallow_stack

from conformance.odahu.archives import (
    FIXED_MTIME,
    ArchiveProblem,
    is_archive,
    pack,
    unpack,
)


def make_model(folder: Path) -> Path:
    """A model folder with a nested folder, an empty folder and a file that is not tiny."""
    folder.mkdir(parents=True)
    (folder / "multiplier.txt").write_text("2\n")
    (folder / "odahuflow.project.yaml").write_text("model:\n  name: multiplier\n  version: 1\n")
    (folder / "extra").mkdir()
    (folder / "extra" / "weights.bin").write_bytes(bytes(range(256)) * 400)
    (folder / "empty").mkdir()
    return folder


def tree(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` (links not followed): file bytes, "dir" or "link:TARGET"."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[key] = "link:" + os.readlink(path)
            elif path.is_dir():
                found[key] = "dir"
            else:
                found[key] = path.read_bytes()
    return found


def info(name: str, type_=tarfile.REGTYPE, data: bytes = b"", linkname: str = "", mode: int = 0o644):
    member = tarfile.TarInfo(name)
    member.type, member.linkname, member.mode, member.size = type_, linkname, mode, len(data)
    return member, data


def make_tar(path: Path, members, compressed: bool = True) -> Path:
    with tarfile.open(path, "w:gz" if compressed else "w", format=tarfile.GNU_FORMAT) as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return path


def make_zip(path: Path, members) -> Path:
    """``members``: (name, bytes) or (ZipInfo, bytes)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    member = zipfile.ZipInfo(name)
    member.create_system = 3
    member.external_attr = (stat.S_IFLNK | 0o777) << 16
    return member, target.encode()


# ------------------------------------------------------------------------------------------------------ packing


@pytest.mark.parametrize("suffix", ["model.tar.gz", "model.tgz", "model.zip"])
def test_packing_twice_gives_identical_bytes_whatever_the_times_and_modes(tmp_path, suffix):
    model = make_model(tmp_path / "model")
    first = pack(model, tmp_path / f"a-{suffix}")
    os.utime(model / "multiplier.txt", (1_000_000_000, 1_000_000_000))
    os.chmod(model / "extra" / "weights.bin", 0o600)
    second = pack(model, tmp_path / f"b-{suffix}")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("suffix", ["model.tar.gz", "model.zip"])
def test_pack_then_unpack_gives_the_same_files(tmp_path, suffix):
    model = make_model(tmp_path / "model")
    archive = pack(model, tmp_path / suffix)
    names = unpack(archive, tmp_path / "unpacked")
    assert tree(tmp_path / "unpacked") == tree(model)
    assert names == sorted(tree(model))


def test_tar_members_have_fixed_metadata_and_sit_at_the_root(tmp_path):
    archive = pack(make_model(tmp_path / "model"), tmp_path / "model.tar.gz")
    raw = archive.read_bytes()
    assert raw[4:8] == b"\0\0\0\0", "gzip header time must be 0"
    assert not raw[3] & 0x08, "gzip header must carry no file name"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and "multiplier.txt" in names
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname, member.mtime) == (0, 0, "", "", FIXED_MTIME)
        assert member.mode == (0o755 if member.isdir() else 0o644)


def test_zip_members_have_fixed_metadata_and_sit_at_the_root(tmp_path):
    archive = pack(make_model(tmp_path / "model"), tmp_path / "model.zip")
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
    names = [m.filename for m in members]
    assert names == sorted(names) and "multiplier.txt" in names
    for member in members:
        assert member.date_time == (1980, 1, 1, 0, 0, 0)
        assert stat.S_IMODE(member.external_attr >> 16) == (0o755 if member.is_dir() else 0o644)


def test_pack_refuses_to_overwrite_without_force(tmp_path):
    model = make_model(tmp_path / "model")
    target = tmp_path / "model.tar.gz"
    target.write_bytes(b"keep me")
    with pytest.raises(ArchiveProblem, match="model.tar.gz: already exists") as problem:
        pack(model, target)
    assert "\n" not in str(problem.value)
    assert target.read_bytes() == b"keep me"
    pack(model, target, force=True)
    assert target.read_bytes() != b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.tar.gz"], "no temporary file left"


def test_pack_refuses_symlinks_in_the_model_folder(tmp_path):
    model = make_model(tmp_path / "model")
    (model / "link").symlink_to("multiplier.txt")
    with pytest.raises(ArchiveProblem, match="link: is a symbolic link"):
        pack(model, tmp_path / "model.zip")
    assert not (tmp_path / "model.zip").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos here")
def test_pack_refuses_special_files_in_the_model_folder(tmp_path):
    model = make_model(tmp_path / "model")
    os.mkfifo(model / "pipe")
    with pytest.raises(ArchiveProblem, match="pipe: is not a regular file"):
        pack(model, tmp_path / "model.tar.gz")


@pytest.mark.parametrize("name", ["model.rar", "model.gz", "model"])
def test_pack_needs_a_known_archive_name(tmp_path, name):
    with pytest.raises(ArchiveProblem, match="cannot tell the archive format"):
        pack(make_model(tmp_path / "model"), tmp_path / name)


def test_pack_refuses_a_target_inside_the_model_folder(tmp_path):
    model = make_model(tmp_path / "model")
    with pytest.raises(ArchiveProblem, match="inside the model folder"):
        pack(model, model / "model.zip")
    assert not (model / "model.zip").exists()


@pytest.mark.parametrize("name, expected", [("m.tar.gz", True), ("m.TGZ", True), ("m.tar", True), ("m.zip", True),
                                            ("m.gz", False), ("m.json", False), (".zip", False)])
def test_is_archive_goes_by_the_name(name, expected):
    assert is_archive(Path(name)) is expected


def test_a_folder_is_never_an_archive(tmp_path):
    (tmp_path / "odd.zip").mkdir()
    assert not is_archive(tmp_path / "odd.zip")


# ---------------------------------------------------------------------------------------------------- unpacking


def unsafe_tar_cases(outside: Path) -> dict[str, tuple[list, str, str]]:
    """name -> (members, the member the refusal must name, a phrase of the reason)."""
    ok = info("multiplier.txt", data=b"2\n")
    return {
        "dotdot": ([ok, info("../x", data=b"evil")], "../x", "outside the target"),
        "deep-dotdot": ([ok, info("a/../../x", data=b"evil")], "a/../../x", "outside the target"),
        "absolute": ([ok, info(str(outside / "abs.txt"), data=b"evil")], str(outside / "abs.txt"), "absolute path"),
        "symlink-absolute": ([ok, info("etc", tarfile.SYMTYPE, linkname="/etc")], "etc", "link to an absolute path"),
        "symlink-up": ([ok, info("a", tarfile.SYMTYPE, linkname="../../x")], "'a'", "pointing outside"),
        "symlink-chain": ([ok, info("d", tarfile.SYMTYPE, linkname="."),
                           info("e", tarfile.SYMTYPE, linkname="d/../x")], "'e'", "through another link"),
        "file-under-symlink": ([ok, info("sub", tarfile.DIRTYPE, mode=0o755), info("lnk", tarfile.SYMTYPE, linkname="sub"),
                                info("lnk/x", data=b"evil")], "lnk/x", "under the symbolic link"),
        "hardlink-up": ([ok, info("h", tarfile.LNKTYPE, linkname="../outside/secret")], "'h'", "hard link outside"),
        "hardlink-absolute": ([ok, info("h", tarfile.LNKTYPE, linkname=str(outside / "secret"))], "'h'", "hard link outside"),
        "hardlink-to-link": ([ok, info("s", tarfile.SYMTYPE, linkname="multiplier.txt"),
                              info("h", tarfile.LNKTYPE, linkname="s")], "'h'", "not to an earlier regular file"),
        "char-device": ([ok, info("dev", tarfile.CHRTYPE)], "dev", "special file"),
        "fifo": ([ok, info("pipe", tarfile.FIFOTYPE)], "pipe", "special file"),
        "duplicate": ([ok, info("multiplier.txt", data=b"3\n")], "multiplier.txt", "appears twice"),
        "root-as-file": ([info("./", data=b"x")], "./", "target folder itself"),
    }


@pytest.fixture
def layout(tmp_path):
    """``(store, outside, target)``: archives go to store/, outside/ holds a secret, target is work/model."""
    store, outside, work = tmp_path / "store", tmp_path / "outside", tmp_path / "work"
    for folder in (store, outside, work):
        folder.mkdir()
    (outside / "secret").write_bytes(b"secret")
    return store, outside, work / "model"


def assert_refused(archive: Path, target: Path, member: str, root: Path, **limits) -> str:
    """Unpacking must raise a one-line ArchiveProblem naming archive and member, and write nothing anywhere."""
    before = tree(root)
    with pytest.raises(ArchiveProblem) as problem:
        unpack(archive, target, **limits)
    message = str(problem.value)
    assert "\n" not in message
    assert archive.name in message and member in message, message
    assert tree(root) == before, "something was written"
    assert not target.exists()
    return message


@pytest.mark.parametrize("case", list(unsafe_tar_cases(Path("/x"))))
def test_unsafe_tar_members_are_refused_before_anything_is_written(layout, tmp_path, case):
    store, outside, target = layout
    members, named, phrase = unsafe_tar_cases(outside)[case]
    archive = make_tar(store / f"{case}.tar.gz", members)
    assert phrase in assert_refused(archive, target, named, tmp_path)


def test_an_unsafe_member_after_good_ones_leaves_no_half_filled_target(layout, tmp_path):
    store, outside, target = layout
    good = [info(f"file-{i}.txt", data=b"x" * 1000) for i in range(20)]
    archive = make_tar(store / "late.tar", good + [info("../late", data=b"evil")], compressed=False)
    target.mkdir()
    before = tree(tmp_path)
    with pytest.raises(ArchiveProblem, match="'../late'"):
        unpack(archive, target)
    assert tree(tmp_path) == before
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    "case, members, named, phrase",
    [
        ("dotdot", [("multiplier.txt", b"2\n"), ("../evil", b"evil")], "../evil", "outside the target"),
        ("absolute", [("/abs-evil", b"evil")], "/abs-evil", "absolute path"),
        ("symlink-up", [("multiplier.txt", b"2\n"), zip_symlink("up", "../../x")], "'up'", "pointing outside"),
        ("symlink-absolute", [zip_symlink("etc", "/etc")], "'etc'", "link to an absolute path"),
        ("duplicate", [("a/", b""), ("a", b"x")], "'a'", "appears twice"),
        ("symlink-huge", [zip_symlink("big", "a/" * 3000)], "'big'", "absurd target"),
    ],
)
def test_unsafe_zip_members_are_refused_before_anything_is_written(layout, tmp_path, case, members, named, phrase):
    store, outside, target = layout
    archive = make_zip(store / f"{case}.zip", members)
    assert phrase in assert_refused(archive, target, named, tmp_path)


def test_a_zip_char_device_is_refused(layout, tmp_path):
    store, outside, target = layout
    device = zipfile.ZipInfo("dev")
    device.create_system = 3
    device.external_attr = (stat.S_IFCHR | 0o644) << 16
    archive = make_zip(store / "dev.zip", [(device, b"")])
    assert "special file" in assert_refused(archive, target, "dev", tmp_path)


def test_a_truncated_tar_gz_is_a_problem_not_a_traceback(layout, tmp_path):
    store, outside, target = layout
    model = make_model(tmp_path / "model")
    whole = pack(model, tmp_path / "whole.tar.gz").read_bytes()
    for cut in (len(whole) // 2, len(whole) - 4, 20):
        archive = store / "cut.tar.gz"
        archive.write_bytes(whole[:cut])
        message = assert_refused(archive, target, "", tmp_path)
        assert "truncated" in message or "not a readable" in message


def test_a_tar_cut_at_a_member_boundary_is_truncated(layout, tmp_path):
    store, outside, target = layout
    whole = make_tar(store / "whole.tar", [info("a", data=b"x" * 512), info("b", data=b"y" * 512)], compressed=False)
    archive = store / "cut.tar"
    archive.write_bytes(whole.read_bytes()[:1024])
    assert "last member read: 'a'" in assert_refused(archive, target, "", tmp_path)


@pytest.mark.parametrize("content", [b"", b"not an archive at all" * 10])
@pytest.mark.parametrize("name", ["bad.tar.gz", "bad.tar", "bad.zip"])
def test_garbage_named_like_an_archive_is_a_problem(layout, tmp_path, name, content):
    store, outside, target = layout
    archive = store / name
    archive.write_bytes(content)
    assert_refused(archive, target, "", tmp_path)


def test_a_truncated_zip_is_a_problem(layout, tmp_path):
    store, outside, target = layout
    whole = pack(make_model(tmp_path / "model"), tmp_path / "whole.zip").read_bytes()
    archive = store / "cut.zip"
    archive.write_bytes(whole[: len(whole) - 30])
    assert_refused(archive, target, "", tmp_path)


def test_a_tar_bomb_over_max_bytes_is_refused(layout, tmp_path):
    store, outside, target = layout
    archive = make_tar(store / "bomb.tar.gz", [info("small", data=b"ok"), info("zeros", data=bytes(2 << 20))])
    assert archive.stat().st_size < 20_000
    assert "limit of 1048576 bytes" in assert_refused(archive, target, "zeros", tmp_path, max_bytes=1 << 20)


def test_a_zip_bomb_over_max_bytes_is_refused(layout, tmp_path):
    store, outside, target = layout
    with zipfile.ZipFile(store / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("zeros", bytes(2 << 20))
    assert "limit of 1048576 bytes" in assert_refused(store / "bomb.zip", target, "zeros", tmp_path, max_bytes=1 << 20)


def test_too_many_members_are_refused(layout, tmp_path):
    store, outside, target = layout
    archive = make_tar(store / "many.tar.gz", [info(f"f{i}") for i in range(11)])
    assert "limit of 10" in assert_refused(archive, target, "", tmp_path, max_members=10)


def test_a_zip_whose_headers_understate_the_size_is_refused(layout, tmp_path):
    store, outside, target = layout
    archive = store / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("zeros", bytes(4096))
    raw = bytearray(archive.read_bytes())
    # make both headers claim 10 bytes uncompressed: zipfile then reads only 10 bytes (and checks the CRC)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = raw.index(signature)
        raw[start + offset: start + offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    assert_refused(archive, target, "zeros", tmp_path)


def test_safe_links_and_leading_dot_slash_are_unpacked(layout):
    store, outside, target = layout
    archive = make_tar(store / "links.tar.gz", [
        info("./", tarfile.DIRTYPE, mode=0o755),
        info("./multiplier.txt", data=b"2\n"),
        info("./run.sh", data=b"#!/bin/sh\n", mode=0o755),
        info("./sub/again.txt", tarfile.LNKTYPE, linkname="./multiplier.txt"),
        info("./alias", tarfile.SYMTYPE, linkname="multiplier.txt"),
        info("./sub/up", tarfile.SYMTYPE, linkname="../multiplier.txt"),
    ])
    names = unpack(archive, target)
    assert names == ["alias", "multiplier.txt", "run.sh", "sub", "sub/again.txt", "sub/up"]
    assert (target / "sub" / "again.txt").read_bytes() == b"2\n"
    assert not (target / "sub" / "again.txt").samefile(target / "multiplier.txt"), "hard links are copied"
    assert os.readlink(target / "alias") == "multiplier.txt"
    assert (target / "sub" / "up").read_bytes() == b"2\n"
    assert stat.S_IMODE((target / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "multiplier.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"], "no temporary folder left"


def test_unpacked_modes_do_not_depend_on_the_umask(layout):
    store, outside, target = layout
    archive = make_tar(store / "m.tar.gz", [info("a/b/multiplier.txt", data=b"2\n", mode=0o600),
                                            info("a/c", tarfile.DIRTYPE, mode=0o700)])
    old = os.umask(0o077)
    try:
        unpack(archive, target)
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE((target / name).stat().st_mode) for name in ("", "a", "a/b", "a/c", "a/b/multiplier.txt")}
    assert modes == {"": 0o755, "a": 0o755, "a/b": 0o755, "a/c": 0o755, "a/b/multiplier.txt": 0o644}


def test_unpack_into_an_empty_existing_folder(layout):
    store, outside, target = layout
    target.mkdir()
    unpack(make_zip(store / "m.zip", [("multiplier.txt", b"2\n")]), target)
    assert (target / "multiplier.txt").read_bytes() == b"2\n"


def test_unpack_refuses_a_non_empty_target(layout):
    store, outside, target = layout
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(ArchiveProblem, match="model: exists and is not empty"):
        unpack(make_zip(store / "m.zip", [("multiplier.txt", b"2\n")]), target)
    assert tree(target) == {"old": b"old"}


@pytest.mark.parametrize("name, problem", [("missing.zip", "does not exist"), ("model.rar", "not a .tar.gz")])
def test_unpack_names_an_unusable_archive_path(layout, name, problem):
    store, outside, target = layout
    with pytest.raises(ArchiveProblem, match=problem):
        unpack(store / name, target)


def test_gzip_header_written_by_pack_has_no_name_even_for_named_files(tmp_path):
    archive = pack(make_model(tmp_path / "model"), tmp_path / "named.tgz")
    with gzip.open(archive) as stream:
        stream.read()
    assert b"named" not in archive.read_bytes()[:64]


def test_deeply_nested_members_unpack_without_running_out_of_stack(layout):
    store, outside, target = layout
    name = "a/" * 400 + "x.txt"
    archive = make_tar(store / "deep.tar.gz", [info(name, data=b"deep")])
    with shallow_stack():
        names = unpack(archive, target)
    assert len(names) == 401 and (target / name).read_bytes() == b"deep"


def test_a_deep_archive_refused_while_writing_is_cleaned_up(layout, tmp_path):
    store, outside, target = layout
    archive = store / "deep-liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as handle:
        handle.writestr("a/" * 400 + "x.txt", b"deep")
        handle.writestr("zz", b"content")
    raw = bytearray(archive.read_bytes())
    # a wrong CRC for the second member, in its local and central headers: noticed only while it is written
    local = raw.index(b"PK\x03\x04", 1)
    central = raw.index(b"PK\x01\x02", raw.index(b"PK\x01\x02") + 1)
    raw[local + 14: local + 18] = raw[central + 16: central + 20] = (0).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with shallow_stack():
        message = assert_refused(archive, target, "zz", tmp_path)
    assert "CRC" in message
