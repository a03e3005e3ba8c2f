"""``odahu-conformance validate``: one clear line per bad file, nothing lost, nothing overwritten."""

import subprocess
import sys

import pytest
from helpers import as_bytes, response, tensor

from conformance.cli import main

GOOD = as_bytes(response(tensor("a", "INT32", [2], [2, 4])))
BAD_FILES = {
    "truncated.json": (GOOD[:-5], "F-JSON"),
    "wrong-types.json": (b'{"model_name": 3, "outputs": {}}', "F-SCHEMA"),
    "nan.json": (b'{"model_name": "m", "outputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [NaN]}]}', "F-JSON"),
    "not-utf8.json": (b'{"model_name": "\xff\xfe", "outputs": []}', "F-JSON"),
    "empty.json": (b"", "F-JSON"),
    "count.json": (as_bytes(response(tensor("a", "INT32", [3], [2, 4]))), "F-COUNT"),
    "typed.json": (as_bytes(response(tensor("a", "INT8", [1], [300]))), "F-TYPED"),
    "duplicate.json": (b'{"model_name": "m", "model_name": "n", "outputs": []}', "F-JSON"),
}


@pytest.fixture
def folder(tmp_path):
    source = tmp_path / "out"
    source.mkdir()
    (source / "good-1.json").write_bytes(GOOD)
    (source / "good-2.json").write_bytes(GOOD)
    for name, (raw, _) in BAD_FILES.items():
        (source / name).write_bytes(raw)
    (source / "x.json").mkdir()
    (source / "notes.txt").write_text("hello")
    return source


def test_each_bad_entry_gets_one_line_and_the_good_ones_are_copied(folder, tmp_path, capsys):
    dest = tmp_path / "dest"
    assert main(["validate", "output", str(folder), "-d", str(dest)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == "" and "Traceback" not in out
    for name, (_, requirement) in BAD_FILES.items():
        [line] = [l for l in lines if l.startswith(str(folder / name) + ":")]
        assert f": {requirement}" in line
    assert any(l.startswith(str(folder / "x.json")) and "P-NAME" in l and "platform: dropped silently" in l for l in lines)
    assert any(l.startswith(str(folder / "notes.txt")) and "P-NAME" in l and "platform: dropped silently" in l for l in lines)
    assert sorted(p.name for p in dest.iterdir()) == ["good-1.json", "good-2.json"]
    assert (dest / "good-1.json").read_bytes() == GOOD
    assert lines[-1].startswith("12 entries: 2 passed, 10 failed")


def test_says_what_the_platform_would_drop_and_what_it_would_pass_on(folder, capsys):
    main(["validate", "output", str(folder), "-q"])
    lines = capsys.readouterr().out.splitlines()
    line_for = lambda name: next(l for l in lines if l.startswith(str(folder / name) + ":"))  # noqa: E731
    assert "[platform: kept]" in line_for("count.json")  # the platform's lax check keeps wrong data
    assert "[platform: kept]" in line_for("duplicate.json")
    assert "platform: dropped silently" in line_for("truncated.json")
    assert "platform: dropped silently" in line_for("nan.json")
    assert "platform: dropped silently" in line_for("wrong-types.json")


def test_pointer_in_the_line(folder, capsys):
    main(["validate", "output", str(folder), "-q"])
    out = capsys.readouterr().out
    assert f"{folder / 'typed.json'}: F-TYPED /outputs/0/data/0: 300: out of INT8's range" in out


def test_all_good_exits_zero(tmp_path, capsys):
    (tmp_path / "a.json").write_bytes(GOOD)
    assert main(["validate", "output", str(tmp_path)]) == 0
    assert "1 entries: 1 passed, 0 failed" in capsys.readouterr().out


def test_input_side_checks_requests(tmp_path, capsys):
    (tmp_path / "req.json").write_bytes(b'{"inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1]}]}')
    assert main(["validate", "input", str(tmp_path)]) == 1
    assert "F-COUNT /inputs/0/data" in capsys.readouterr().out


def test_never_overwrites_without_force(folder, tmp_path, capsys):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "good-1.json").write_bytes(b"mine")
    assert main(["validate", "output", str(folder), "-d", str(dest)]) == 2
    assert "exists" in capsys.readouterr().err
    assert (dest / "good-1.json").read_bytes() == b"mine" and not (dest / "good-2.json").exists()
    assert main(["validate", "output", str(folder), "-d", str(dest), "--force"]) == 1
    assert (dest / "good-1.json").read_bytes() == GOOD


def test_missing_source_is_a_one_line_error(tmp_path, capsys):
    assert main(["validate", "output", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_a_200_megabyte_file_is_handled(tmp_path, capsys):
    # Valid JSON padded to 200 MB (cheap to parse), and the same file truncated: one line each, no traceback.
    padding = b" " * (200 * 1024 * 1024)
    (tmp_path / "big-ok.json").write_bytes(GOOD[:-1] + padding + GOOD[-1:])
    (tmp_path / "big-truncated.json").write_bytes(GOOD[:-1] + padding)
    assert main(["validate", "output", str(tmp_path), "-q"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / "big-truncated.json") + ": F-JSON")
    assert main(["validate", "output", str(tmp_path), "-q", "--max-bytes", str(100 * 1024 * 1024)]) == 1
    assert "over the limit" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_command(tmp_path):
    (tmp_path / "a.json").write_bytes(GOOD)
    done = subprocess.run([sys.executable, "-m", "conformance", "validate", "output", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0 and "1 passed" in done.stdout


# ------------------------------------------------------------------------- what the platform's own step decides


def test_each_entry_says_what_the_platform_does(tmp_path, capsys):
    import os

    (tmp_path / "good.json").write_bytes(GOOD)
    (tmp_path / "link.json").symlink_to("good.json")
    (tmp_path / "cased.json").write_bytes(GOOD[:-1] + b', "Model_Name": 1}')  # strictly valid, Go drops it
    (tmp_path / "huge.json").write_bytes(b'{"model_name": "m", "outputs": [], "x": ' + b"1" * 5000 + b"}")
    (tmp_path / "deep.json").write_bytes(b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    (tmp_path / "sub.json").mkdir()
    os.mkfifo(tmp_path / "pipe.json")
    assert main(["validate", "output", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    line_for = lambda name: next(l for l in out.splitlines() if l.startswith(str(tmp_path / name) + ":"))  # noqa: E731
    assert "P-NAME" in line_for("link.json") and "[platform: kept (a symbolic link, judged by its target)]" in line_for("link.json")
    assert "F-SCHEMA" in line_for("cased.json") and "platform: dropped silently (Model_Name" in line_for("cased.json")
    assert line_for("huge.json").endswith(": ok [platform: kept]")  # a long integer under an unknown key is valid JSON
    assert line_for("good.json") == f"{tmp_path / 'good.json'}: ok [platform: kept]"
    assert "F-JSON /x/0/0" in line_for("deep.json") and "[platform: kept]" in line_for("deep.json")
    assert "[platform: dropped silently (a folder" in line_for("sub.json")
    assert "[platform: fails the whole step (the platform's step would hang" in line_for("pipe.json")
    assert out.splitlines()[-1].startswith("the platform's validate step fails on pipe.json: the platform's step would hang")


def test_a_dangling_link_fails_the_platform_s_whole_step(tmp_path, capsys):
    (tmp_path / "good.json").write_bytes(GOOD)
    (tmp_path / "gone.json").symlink_to("missing.json")
    assert main(["validate", "output", str(tmp_path), "-q"]) == 1
    line, summary, step = capsys.readouterr().out.splitlines()
    assert line.startswith(str(tmp_path / "gone.json") + ": ") and "[platform: fails the whole step (a dangling" in line
    assert summary.startswith("2 entries: 1 passed, 1 failed")
    assert step.startswith("the platform's validate step fails on gone.json: a dangling symbolic link")
    assert step.endswith("; the job would fail and every file be lost")


def test_every_entry_that_fails_the_step_is_counted_in_one_line(tmp_path, capsys):
    (tmp_path / "good.json").write_bytes(GOOD)
    (tmp_path / "a.json").symlink_to("missing.json")
    (tmp_path / "b.json").symlink_to("good.json")
    (tmp_path / "c.json").symlink_to("elsewhere.json")
    assert main(["validate", "output", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("the platform's validate step fails on a.json (and 1 more entries): a dangling")
    assert f"{tmp_path / 'good.json'}: ok [platform: kept]" in lines
    assert sum(line.startswith("the platform's validate step fails") for line in lines) == 1


@pytest.mark.parametrize("side", ["input", "output"])
def test_invalid_utf8_and_lone_surrogates_in_strings_are_f_json_yet_kept_by_the_platform(tmp_path, capsys, side):
    # Go's unmarshal replaces them with U+FFFD and keeps the file (see tests/test_platform_rules.py); the kit's
    # strict reading refuses them (F-JSON). A byte outside strings is a syntax error on the platform too.
    body = (b'"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]' if side == "input"
            else b'"model_name": "m", "outputs": []')
    (tmp_path / "byte.json").write_bytes(b'{"id": "\xff", ' + body + b"}")
    (tmp_path / "key.json").write_bytes(b'{"k\xc3": 1, ' + body + b"}")
    (tmp_path / "surrogate.json").write_bytes(b'{"id": "\\ud800", ' + body + b"}")
    (tmp_path / "pair.json").write_bytes(b'{"id": "\\ud83d\\ude00", ' + body + b"}")
    (tmp_path / "outside.json").write_bytes(b"{" + body + b"}\xff")
    assert main(["validate", side, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    line_for = lambda name: next(l for l in out.splitlines() if l.startswith(str(tmp_path / name) + ":"))  # noqa: E731
    for name in ("byte.json", "key.json", "surrogate.json"):
        assert ": F-JSON" in line_for(name) and line_for(name).endswith("[platform: kept]"), line_for(name)
    assert line_for("pair.json").endswith(": ok [platform: kept]")
    assert ": F-JSON" in line_for("outside.json") and "[platform: dropped silently (does not parse as JSON (a byte " \
        "0xff that is not UTF-8, outside a string" in line_for("outside.json")
    assert out.splitlines()[-1] == "5 entries: 1 passed, 4 failed; the platform would have dropped 1 of them silently"


def test_the_summary_does_not_count_entries_that_fail_the_whole_step_as_dropped_silently(tmp_path, capsys):
    (tmp_path / "good.json").write_bytes(GOOD)
    (tmp_path / "broken-1.json").write_bytes(b"{")
    (tmp_path / "broken-2.json").write_bytes(b"[]")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "gone-1.json").symlink_to("missing.json")
    (tmp_path / "gone-2.json").symlink_to("missing-too.json")
    assert main(["validate", "output", str(tmp_path), "-q"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == ("6 entries: 1 passed, 5 failed; the platform would have dropped 3 of them silently, "
                         "and 2 would fail its whole validate step")
    assert lines[-1] == ("the platform's validate step fails on gone-1.json (and 1 more entries): a dangling symbolic "
                         "link (No such file or directory): reading it fails; the job would fail and every file be lost")


def test_the_summary_counts_files_over_the_size_limit_apart(tmp_path, capsys):
    (tmp_path / "big.json").write_bytes(GOOD + b" " * 100)
    assert main(["validate", "output", str(tmp_path), "--max-bytes", "50"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("1 entries: 0 passed, 1 failed; the platform would have dropped 0 of them silently; "
                    "1 over the size limit not judged")
