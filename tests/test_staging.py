"""One run's workspace: the platform's input filter, model staging, before/after digests, output collection."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest
from helpers import as_bytes, request, shallow_stack, tensor

from conformance.odahu.archives import pack
from conformance.odahu.model import ModelProblem, load_model
from conformance.paths import kit_fixtures, kit_model
from conformance.run import staging
from conformance.run.observe import changes, collect_outputs, folder_digest
from conformance.run.staging import (
    StagingProblem,
    new_workspace,
    remove_workspace,
    stage_model,
    stage_model_text,
    stage_requests,
)
from conformance.run.workspace import OutputEntry


@pytest.fixture
def ws(tmp_path):
    workspace = new_workspace(tmp_path)
    yield workspace
    remove_workspace(workspace)


def make_model(folder: Path, multiplier: str = "2\n") -> Path:
    folder.mkdir(parents=True)
    (folder / "multiplier.txt").write_text(multiplier)
    (folder / "odahuflow.project.yaml").write_text("model:\n  name: multiplier\n  version: 1\n")
    (folder / "data").mkdir()
    (folder / "data" / "table.csv").write_text("a,b\n1,2\n")
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# ------------------------------------------------------------------------------------------------- workspace


def test_a_new_workspace_has_an_empty_input_and_no_model_or_output_yet(tmp_path):
    ws = new_workspace(tmp_path)
    assert ws.root.parent == tmp_path and ws.root.name.startswith("odahu-conformance-")
    assert ws.input.is_dir() and list(ws.input.iterdir()) == []
    assert ws.model == ws.root / "model" and not ws.model.exists()
    assert ws.output == ws.root / "raw-output" and not ws.output.exists()
    assert collect_outputs(ws.output) == (False, [])
    assert ws.skipped == []


def test_each_workspace_is_fresh(tmp_path):
    assert new_workspace(tmp_path).root != new_workspace(tmp_path).root


def test_a_missing_base_is_a_staging_problem(tmp_path):
    with pytest.raises(StagingProblem, match="cannot make a workspace"):
        new_workspace(tmp_path / "nowhere")


def test_remove_workspace_deletes_read_only_leftovers(tmp_path):
    ws = new_workspace(tmp_path)
    locked = ws.root / "raw-output" / "locked"
    locked.mkdir(parents=True)
    (locked / "result.json").write_text("{}")
    os.chmod(locked / "result.json", 0o400)
    os.chmod(locked, 0o500)
    os.chmod(ws.input, 0o000)
    remove_workspace(ws)
    assert not ws.root.exists()
    remove_workspace(ws)  # already gone: fine


def test_removal_first_gives_the_owner_access_to_every_folder(tmp_path, monkeypatch):
    # root ignores permission bits, so check the preparation itself rather than only its effect
    ws = new_workspace(tmp_path)
    deep = ws.root / "raw-output" / "a" / "b"
    deep.mkdir(parents=True)
    for folder in (deep, deep.parent, ws.input):
        os.chmod(folder, 0o500)
    prepared = []
    real = staging._make_writable

    def spy(folder):
        real(folder)
        if folder == ws.root:
            prepared.append(all(mode(f) & 0o700 == 0o700 for f in (deep, deep.parent, ws.input)))

    monkeypatch.setattr(staging, "_make_writable", spy)
    remove_workspace(ws)
    assert prepared == [True]
    assert not ws.root.exists()


# -------------------------------------------------------------------------------------------------- requests


def request_folder(folder: Path) -> dict[str, bytes]:
    """A folder with one entry per case of the platform's input filter; returns the bytes of those kept."""
    folder.mkdir()
    kept = {
        "valid.json": as_bytes(request()),
        # invalid for the contract (3 elements announced, 2 given), but the platform's lax filter passes it on
        "wrong-count.json": as_bytes(request(tensor(shape=(3,), data=(1, 2)))),
        "invalid-count.json": (kit_fixtures() / "input" / "invalid-count.json").read_bytes(),
        "spacing.json": b'{ "inputs" : [ ] }\n\n',
        # not UTF-8 / a lone surrogate inside strings: Go's unmarshal makes them U+FFFD and keeps the file
        "not-utf8.json": b'{"id": "\xff", "inputs": [{"name": "x\xc3", "shape": [1], "datatype": "INT32", "data": [1]}]}',
        "lone-surrogate.json": b'{"id": "\\ud800", "inputs": []}',
    }
    for name, raw in kept.items():
        (folder / name).write_bytes(raw)
    (folder / "notes.txt").write_text("not a request")
    (folder / "sub.json").mkdir()
    (folder / "sub.json" / "inner.json").write_bytes(as_bytes(request()))
    (folder / "broken.json").write_text('{"inputs": [')
    (folder / "nan.json").write_text('{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [NaN]}]}')
    (folder / "wrong-type.json").write_text('{"inputs": "a"}')
    (folder / "byte-outside-strings.json").write_bytes(b'{"inputs": []\xff}')  # a syntax error in Go too
    (folder / "link.json").symlink_to("valid.json")  # the platform reads through links: kept
    kept["link.json"] = kept["valid.json"]
    return kept


def test_the_input_filter_keeps_valid_and_lax_valid_requests_byte_for_byte(ws, tmp_path):
    kept = request_folder(tmp_path / "requests")
    staged = stage_requests(ws, tmp_path / "requests")
    assert staged == sorted(kept)
    assert {p.name: p.read_bytes() for p in ws.input.iterdir()} == kept


def test_the_input_filter_says_why_it_skips_each_file(ws, tmp_path):
    request_folder(tmp_path / "requests")
    stage_requests(ws, tmp_path / "requests")
    reasons = dict(line.split(": ", 1) for line in ws.skipped)
    assert sorted(reasons) == ["broken.json", "byte-outside-strings.json", "nan.json", "notes.txt", "sub.json",
                               "wrong-type.json"]
    assert "a byte 0xff that is not UTF-8, outside a string" in reasons["byte-outside-strings.json"]
    assert reasons["notes.txt"].startswith("dropped silently (not *.json")
    assert reasons["sub.json"].startswith("dropped silently (a folder")
    assert "JSON" in reasons["broken.json"]
    assert "NaN" in reasons["nan.json"]
    assert reasons["wrong-type.json"].startswith("dropped silently (inputs:")
    assert all("\n" not in line for line in ws.skipped)


@pytest.mark.parametrize("entry", ["dangling", "link-to-folder", "fifo"])
def test_an_entry_that_fails_the_platforms_whole_step_stops_staging_with_one_line(ws, tmp_path, entry):
    folder = tmp_path / "requests"
    folder.mkdir()
    (folder / "a.json").write_bytes(as_bytes(request()))
    if entry == "dangling":
        (folder / "x.json").symlink_to("missing.json")
    elif entry == "link-to-folder":
        (tmp_path / "elsewhere").mkdir()
        (folder / "x.json").symlink_to(tmp_path / "elsewhere")
    else:
        os.mkfifo(folder / "x.json")
    with pytest.raises(StagingProblem) as caught:
        stage_requests(ws, folder)
    assert "x.json" in str(caught.value) and "\n" not in str(caught.value)
    assert "the platform's input step fails" in str(caught.value)


def test_every_kit_golden_request_is_staged(ws):
    source = kit_fixtures() / "input"
    staged = stage_requests(ws, source)
    expected = sorted(p.name for p in source.iterdir() if p.name.endswith(".json"))
    assert staged == expected and ws.skipped == []
    assert all((ws.input / name).read_bytes() == (source / name).read_bytes() for name in staged)


def test_requests_given_as_names_and_bytes_go_through_the_same_filter(ws):
    staged = stage_requests(ws, [("b.json", b'{"inputs": []}'), ("a.txt", b"{}"), ("c.json", b"[1, 2]"),
                                 ("d.json", b"null")])
    assert staged == ["b.json", "d.json"]
    assert (ws.input / "b.json").read_bytes() == b'{"inputs": []}'
    assert [line.split(":")[0] for line in ws.skipped] == ["a.txt", "c.json"]


def test_requests_with_invalid_utf8_or_lone_surrogates_in_strings_reach_the_candidate(ws):
    given = [("a.json", b'{"id": "\xfe\xff", "inputs": []}'), ("b.json", b'{"\\udc00": "\\ud800"}'),
             ("c.json", b'\xff{"inputs": []}')]
    assert stage_requests(ws, given) == ["a.json", "b.json"]
    assert (ws.input / "a.json").read_bytes() == given[0][1]  # byte for byte, as the platform passes it on
    assert [line.split(":")[0] for line in ws.skipped] == ["c.json"]


@pytest.mark.parametrize("name", ["../x.json", "sub/x.json", "", ".", "..", "a\\b.json"])
def test_a_request_name_that_is_not_a_plain_file_name_is_a_problem(ws, name):
    with pytest.raises(StagingProblem, match="not a plain file name"):
        stage_requests(ws, [(name, b"{}")])
    assert list(ws.input.iterdir()) == [] and not (ws.root / "x.json").exists()


def test_a_request_staged_twice_is_a_problem(ws):
    stage_requests(ws, [("a.json", b"{}")])
    with pytest.raises(StagingProblem, match="a.json: already staged"):
        stage_requests(ws, [("a.json", b"{}")])
    with pytest.raises(StagingProblem, match="b.json: given twice"):
        stage_requests(ws, [("b.json", b"{}"), ("b.json", b"{}")])


@pytest.mark.parametrize("make", ["missing", "file"])
def test_a_request_source_that_is_not_a_folder_is_a_problem(ws, tmp_path, make):
    source = tmp_path / "requests"
    if make == "file":
        source.write_text("{}")
    with pytest.raises(StagingProblem, match="requests: (does not exist|not a folder)"):
        stage_requests(ws, source)


# ---------------------------------------------------------------------------------------------------- models


def test_a_model_folder_is_copied_and_the_multiplier_override_leaves_the_source_alone(ws, tmp_path):
    source = make_model(tmp_path / "user-model")
    before = folder_digest(source)
    staged = stage_model(ws, source, multiplier=5)
    assert staged == ws.model
    assert (staged / "multiplier.txt").read_text() == "5\n"
    assert (staged / "data" / "table.csv").read_text() == "a,b\n1,2\n"
    assert load_model(staged).multiplier == 5
    assert folder_digest(source) == before
    assert (source / "multiplier.txt").read_text() == "2\n"


def test_without_an_override_the_model_is_copied_as_is(ws, tmp_path):
    source = make_model(tmp_path / "user-model", multiplier=" 7 ")
    stage_model(ws, source)
    assert folder_digest(ws.model) == folder_digest(source)


def test_the_override_never_writes_through_a_link(ws, tmp_path):
    source = make_model(tmp_path / "user-model")
    (source / "multiplier.txt").unlink()
    (source / "multiplier.txt").symlink_to("data/real.txt")
    (source / "data" / "real.txt").write_text("2\n")
    before = folder_digest(source)
    stage_model(ws, source, multiplier=9)
    assert folder_digest(source) == before
    assert not (ws.model / "multiplier.txt").is_symlink()
    assert (ws.model / "multiplier.txt").read_text() == "9\n"
    assert (ws.model / "data" / "real.txt").read_text() == "2\n"


def test_replaced_files_change_the_copy_only_and_never_write_through_a_link(ws, tmp_path):
    """Another model staged under another name: its project file replaced in the copy, every other file (and
    the source) unchanged; a project file that is a link is replaced, not written through."""
    source = make_model(tmp_path / "user-model")
    (source / "data" / "project.yaml").write_bytes((source / "odahuflow.project.yaml").read_bytes())
    (source / "odahuflow.project.yaml").unlink()
    (source / "odahuflow.project.yaml").symlink_to("data/project.yaml")
    before = folder_digest(source)
    stage_model(ws, source, replaced={"odahuflow.project.yaml": b"model:\n  name: other\n  version: '2'\n"})
    assert folder_digest(source) == before
    assert not (ws.model / "odahuflow.project.yaml").is_symlink()
    assert (load_model(ws.model).name, load_model(ws.model).version) == ("other", "2")
    assert (ws.model / "data" / "project.yaml").read_bytes() == (source / "data" / "project.yaml").read_bytes()
    assert {k: v for k, v in folder_digest(ws.model).items() if k != "odahuflow.project.yaml"} == \
        {k: v for k, v in before.items() if k != "odahuflow.project.yaml"}
    with pytest.raises(StagingProblem, match="not a relative path"):
        stage_model(staging.new_workspace(tmp_path), source, replaced={"../escape": b""})


def test_a_link_inside_the_model_is_kept_as_a_relative_link(ws, tmp_path):
    source = make_model(tmp_path / "user-model")
    (source / "data" / "alias").symlink_to(source / "multiplier.txt")  # absolute, but inside
    stage_model(ws, source)
    assert os.readlink(ws.model / "data" / "alias") == "../multiplier.txt"
    assert (ws.model / "data" / "alias").resolve() == (ws.model / "multiplier.txt").resolve()


def test_a_link_out_of_the_model_is_refused_and_nothing_is_staged(ws, tmp_path):
    (tmp_path / "secret").write_text("secret")
    source = make_model(tmp_path / "user-model")
    (source / "data" / "leak").symlink_to("../../secret")
    with pytest.raises(StagingProblem, match="leak: symbolic link pointing outside the model folder") as problem:
        stage_model(ws, source)
    assert "\n" not in str(problem.value)
    assert not os.path.lexists(ws.model)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos here")
def test_a_special_file_in_the_model_is_refused(ws, tmp_path):
    source = make_model(tmp_path / "user-model")
    os.mkfifo(source / "pipe")
    with pytest.raises(StagingProblem, match="pipe: is not a regular file"):
        stage_model(ws, source)
    assert not os.path.lexists(ws.model)


@pytest.mark.parametrize("suffix", ["model.tar.gz", "model.zip"])
def test_a_model_archive_is_unpacked_with_the_override(ws, tmp_path, suffix):
    archive = pack(kit_model(), tmp_path / suffix)
    packed = archive.read_bytes()
    stage_model(ws, archive, multiplier=3)
    assert load_model(ws.model).multiplier == 3
    assert (ws.model / "odahuflow.project.yaml").read_bytes() == (kit_model() / "odahuflow.project.yaml").read_bytes()
    assert archive.read_bytes() == packed


def test_an_unsafe_model_archive_is_a_staging_problem_naming_the_member(ws, tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo("../escape")
        tar.addfile(member)
    with pytest.raises(StagingProblem, match="evil.tar.gz: member '../escape'"):
        stage_model(ws, archive)
    assert not os.path.lexists(ws.model) and not (ws.root / "escape").exists()


@pytest.mark.parametrize("name, problem", [("missing", "model does not exist"), ("model.txt", "not a model folder")])
def test_a_model_source_that_is_neither_folder_nor_archive_is_a_problem(ws, tmp_path, name, problem):
    if name == "model.txt":
        (tmp_path / name).write_text("2")
    with pytest.raises(StagingProblem, match=problem):
        stage_model(ws, tmp_path / name)


def test_a_model_is_staged_once(ws):
    stage_model(ws, kit_model())
    with pytest.raises(StagingProblem, match="already staged"):
        stage_model(ws, kit_model())
    with pytest.raises(StagingProblem, match="already staged"):
        stage_model_text(ws, {"multiplier.txt": "2"})


def test_a_workspace_whose_model_is_in_the_image_takes_no_model(ws):
    ws.model = None
    with pytest.raises(StagingProblem, match="inside the image"):
        stage_model(ws, kit_model())


@pytest.mark.parametrize("multiplier, reason", [(None, "missing"), ("two", "not a base-10 integer"),
                                                ("2.5", "not a base-10 integer"), ("", "is empty")])
def test_synthetic_bad_models_are_staged_exactly(ws, multiplier, reason):
    files = {"odahuflow.project.yaml": "model:\n  name: multiplier\n  version: 1\n"}
    if multiplier is not None:
        files["multiplier.txt"] = multiplier
    stage_model_text(ws, files)
    if multiplier is not None:
        assert (ws.model / "multiplier.txt").read_bytes() == multiplier.encode()
    with pytest.raises(ModelProblem, match=reason):
        load_model(ws.model)


def test_synthetic_models_take_bytes_and_subfolders(ws):
    stage_model_text(ws, {"multiplier.txt": b"\xff", "sub/deep.txt": "x"})
    assert (ws.model / "multiplier.txt").read_bytes() == b"\xff"
    assert (ws.model / "sub" / "deep.txt").read_text() == "x"


def test_synthetic_model_paths_that_clash_are_a_problem(ws):
    with pytest.raises(StagingProblem, match="cannot make its folder"):
        stage_model_text(ws, {"a": "file", "a/b": "under a file"})
    assert not os.path.lexists(ws.model)
    other = new_workspace(ws.root)
    with pytest.raises(StagingProblem, match="given twice"):
        stage_model_text(other, {"x": "1", "./x": "2"})
    assert not os.path.lexists(other.model)


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../x", ""])
def test_synthetic_model_paths_stay_inside(ws, name):
    with pytest.raises(StagingProblem, match="not a relative path inside the model folder"):
        stage_model_text(ws, {name: "x"})
    assert not os.path.lexists(ws.model) and not (ws.root / "x").exists()


# ------------------------------------------------------------------------------------------------ before/after


def test_digest_fingerprints_every_kind_of_entry(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"abc")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inner").write_bytes(b"")
    (tmp_path / "l").symlink_to("f.txt")
    digest = folder_digest(tmp_path)
    assert digest == {
        "d": "dir",
        "d/inner": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "f.txt": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "l": "symlink:f.txt",
    }
    assert folder_digest(None) == {} and folder_digest(tmp_path / "missing") == {}


def test_changes_detects_modify_add_remove_and_kind_changes(tmp_path):
    (tmp_path / "keep").write_text("same")
    (tmp_path / "edit").write_text("old")
    (tmp_path / "gone").write_text("bye")
    (tmp_path / "became-dir").write_text("file")
    before = folder_digest(tmp_path)
    (tmp_path / "edit").write_text("new")
    (tmp_path / "gone").unlink()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "file").write_text("hi")
    (tmp_path / "became-dir").unlink()
    (tmp_path / "became-dir").mkdir()
    assert changes(before, folder_digest(tmp_path)) == [
        "modified became-dir", "modified edit", "removed gone", "added new", "added new/file"]
    assert changes(before, before) == []


def test_a_link_that_changes_its_target_is_modified(tmp_path):
    (tmp_path / "l").symlink_to("a")
    before = folder_digest(tmp_path)
    (tmp_path / "l").unlink()
    (tmp_path / "l").symlink_to("b")
    assert changes(before, folder_digest(tmp_path)) == ["modified l"]


# --------------------------------------------------------------------------------------------------- outputs


def test_collect_outputs_sees_everything_without_following_links(ws, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "hidden.json").write_text("{}")
    out = ws.output
    (out / "nested" / "deeper").mkdir(parents=True)
    (out / "a.json").write_bytes(b'{"outputs": []}')
    (out / "log.txt").write_bytes(b"hello")
    (out / "nested" / "deeper" / "b.json").write_bytes(b"{}")
    (out / "away").symlink_to(tmp_path / "elsewhere")
    exists, entries = collect_outputs(out)
    assert exists
    assert [OutputEntry(e.path, e.kind, e.size) for e in entries] == [
        OutputEntry("a.json", "file", 15),
        OutputEntry("away", "symlink"),
        OutputEntry("log.txt", "file", 5),
        OutputEntry("nested", "dir"),
        OutputEntry("nested/deeper", "dir"),
        OutputEntry("nested/deeper/b.json", "file", 2),
    ]
    # the disk each takes: its allocated blocks (a file of 15 bytes takes a whole block)
    assert all(e.disk == (out / e.path).lstat().st_blocks * 512 for e in entries)
    assert next(e for e in entries if e.path == "a.json").disk >= 512


def test_many_tiny_files_take_their_blocks_not_their_sizes(ws):
    ws.output.mkdir()
    for i in range(50):
        (ws.output / f"{i}.json").write_bytes(b"{}")
    _, entries = collect_outputs(ws.output)
    assert sum(e.size for e in entries) == 100 and sum(e.disk for e in entries) >= 50 * 512


def test_collect_outputs_reads_nothing_and_keeps_every_size(ws):
    """One reader: collection only lists; a 100-byte and a 10-byte file are both there with their sizes."""
    ws.output.mkdir()
    (ws.output / "big.json").write_bytes(b"x" * 100)
    (ws.output / "small.json").write_bytes(b"x" * 10)
    exists, entries = collect_outputs(ws.output)
    assert [(e.path, e.kind, e.size) for e in entries] == [("big.json", "file", 100), ("small.json", "file", 10)]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos here")
def test_collect_outputs_reports_special_files_without_reading_them(ws):
    ws.output.mkdir()
    os.mkfifo(ws.output / "pipe")
    assert collect_outputs(ws.output) == (True, [OutputEntry("pipe", "other")])


def test_an_output_path_that_is_a_file_is_not_an_output_folder(ws):
    ws.output.write_text("oops")
    assert collect_outputs(ws.output) == (False, [])


def test_staged_files_are_readable_by_everyone_whatever_the_umask(tmp_path):
    source = make_model(tmp_path / "m")
    (source / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(source / "run.sh", 0o700)
    os.chmod(source / "multiplier.txt", 0o600)
    old = os.umask(0o077)
    try:
        ws = new_workspace(tmp_path)
        stage_requests(ws, [("a.json", b"{}")])
        stage_model(ws, source)
        other = new_workspace(tmp_path)
        stage_model_text(other, {"sub/multiplier.txt": "2"})
    finally:
        os.umask(old)
    assert (mode(ws.input), mode(ws.input / "a.json")) == (0o755, 0o644)
    assert (mode(ws.model), mode(ws.model / "data"), mode(ws.model / "multiplier.txt")) == (0o755, 0o755, 0o644)
    assert mode(ws.model / "run.sh") == 0o755
    assert (mode(other.model), mode(other.model / "sub"), mode(other.model / "sub" / "multiplier.txt")) == (0o755, 0o755, 0o644)


def test_deep_nesting_is_walked_without_running_out_of_stack(ws):
    deep = ws.output.joinpath(*["d"] * 400)
    deep.mkdir(parents=True)
    (deep / "x.json").write_text("{}")
    with shallow_stack():
        exists, entries = collect_outputs(ws.output)
        digest = folder_digest(ws.output)
        remove_workspace(ws)
    assert len(entries) == 401 and entries[-1].path.endswith("/d/x.json")
    assert len(digest) == 401
    assert not ws.root.exists()
