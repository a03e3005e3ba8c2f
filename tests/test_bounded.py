"""The kit's own problems and a hostile candidate's output stay bounded (issue 18): a broken oracle stops the run
with one line and exit 2 (not a failure of the candidate), a reference call has a deadline, and values quoted
from a candidate are cut to a bounded length with their full size said."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.contract.findings import Finding
from conformance.oracle.sources import _TimedOut, call_within
from conformance.text import MESSAGE_LIMIT, bounded, last_lines, quote
from conformance.text import cut as text_cut

ROOT = Path(__file__).resolve().parents[1]
IRIS_MODEL = ROOT / "examples" / "iris" / "model"


def test_a_reference_call_has_a_deadline_in_any_thread():
    """In the main thread an interval timer interrupts the call; in another one the call is abandoned."""
    def sleeps(body: dict, folder: Path) -> dict:
        time.sleep(30)
        return {}

    started = time.monotonic()
    with pytest.raises(_TimedOut):
        call_within(0.2, sleeps, {}, Path("."))
    outcome: list[object] = []

    def in_a_thread() -> None:
        try:
            call_within(0.2, sleeps, {}, Path("."))
        except _TimedOut as exc:
            outcome.append(exc)

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join(10)
    assert outcome and isinstance(outcome[0], _TimedOut)
    assert time.monotonic() - started < 10
    assert call_within(5, lambda body, folder: {"got": body}, {"a": 1}, Path(".")) == {"got": {"a": 1}}
    with pytest.raises(ZeroDivisionError):
        call_within(5, lambda body, folder: {"x": 1 / 0}, {}, Path("."))


def test_the_cli_stops_on_a_broken_oracle_with_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "oracle.py").write_text("def answer(request, model):\n    raise KeyError('inputs')\n")
    code = main(["run", "--cmd", "/bin/true", "--model", str(IRIS_MODEL), "--oracle",
                 f"python:{tmp_path / 'oracle.py'}:answer", "--workspace-dir", str(tmp_path / "ws")])
    out = capsys.readouterr().out
    assert code == 2, out[-3000:]
    # its failure, pytest's short summary (cut to the terminal's width unless CI is set), the digest
    assert out.count("oracle.py:answer failed on a.json: KeyError: 'inputs'") >= 2, out
    assert "NOT A VERDICT: the oracle broke" in out and "oracle.py:answer failed on a.json: KeyError: 'inputs'; exit status 2" in out, out
    assert "NOT CHECKED" not in out and "Traceback" not in out


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_the_cli_refuses_an_oracle_timeout_that_is_not_a_positive_number(value, capsys):
    assert main(["run", "--cmd", "/bin/true", "--oracle-timeout", value]) == 2
    says = (f"must be a finite number, got {value!r}" if value in ("inf", "nan")
            else f"must be a positive number of seconds, got {value}")
    assert capsys.readouterr().err.strip() == f"odahu-conformance: --oracle-timeout: {says}"


HOSTILE = '''
"""The reference predictor, with a model_name of HUGE_SIZE characters in the first three responses by name."""
import json, os, shutil, subprocess, sys, tempfile
from pathlib import Path

out = Path(os.environ["ODAHU_OUTPUT_PATH"])
scratch = tempfile.mkdtemp()
code = subprocess.call([sys.executable, REFERENCE], env=dict(os.environ, ODAHU_OUTPUT_PATH=scratch))
out.mkdir(parents=True, exist_ok=True)
for index, path in enumerate(sorted(Path(scratch).iterdir())):
    body = json.loads(path.read_text())
    if index < 3 and "model_name" in body:
        body["model_name"] = "a" * int(os.environ["HUGE_SIZE"])
    (out / path.name).write_text(json.dumps(body))
shutil.rmtree(scratch)
sys.exit(code)
'''

#: Runs the CLI in this interpreter and prints its own peak memory (the candidate is a child: not counted). VmHWM
#: is this program's own; ru_maxrss would count the parent's memory when it was started by vfork.
MEASURED = """
import re, sys
from pathlib import Path
from conformance.cli import main
code = main(sys.argv[1:])
peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
sys.stderr.write(f"kit maxrss KiB {peak}\\n")
sys.exit(code)
"""


@pytest.mark.slow  # about 20 s: three 20 MB responses written, read and judged
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the kit's peak memory from /proc")
def test_a_huge_model_name_is_quoted_cut_with_its_size_everywhere(tmp_path):
    """A candidate answering with a 20 MB ``model_name`` (three times) fails F-MODEL with the name quoted as
    ``'aaa…' (20,971,520 characters)``; the console, the JSON and Markdown reports and the JUnit file stay small,
    and the kit's memory stays within a few copies of one response (it read each whole, as it must)."""
    size = 20 * 1024 * 1024
    candidate = tmp_path / "hostile.py"
    candidate.write_text(f"REFERENCE = {str(ROOT / 'predictor' / 'fast.py')!r}\n" + HOSTILE)
    report, junit = tmp_path / "r.json", tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, "run", "--cmd", f"{sys.executable} {candidate}", "-m", "golden",
         "--report", str(report), "--workspace-dir", str(tmp_path / "ws"), "--keep-workspaces", "0",
         "--", "--junitxml", str(junit)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HUGE_SIZE": str(size)}, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    quoted = "'" + "a" * 80 + "…' (20,971,520 characters), the model's name is 'multiplier'"
    assert quoted in done.stdout
    assert len(done.stdout) < 50_000 and max(map(len, done.stdout.splitlines())) < 3_000
    made = report.read_text()
    assert quoted in made and len(made) < 150_000  # about 70 kB with or without the hostile name
    assert quoted in report.with_suffix(".md").read_text() and report.with_suffix(".md").stat().st_size < 20_000
    assert junit.stat().st_size < 200_000
    kit_kib = int(done.stderr.rsplit("kit maxrss KiB ", 1)[1].split()[0])
    # the three responses it judged (kept for the session's other checks) and the copies made while reading one
    # (file bytes, parser, parsed text): about 230 MB here; quoting them in full took 550 MB for 3 x 8 MB
    assert kit_kib < 100 * 1024 + 8 * size // 1024, kit_kib


def test_quote_and_bounded_say_the_full_size():
    assert quote("a" * 52_428_800) == "'" + "a" * 80 + "…' (52,428,800 characters)"
    assert quote("ab") == "'ab'" and quote(None) == "None" and quote(7) == "7"
    assert quote(b"x" * 100, 4) == "b'xxxx…' (100 bytes)"
    assert quote(list(range(10_000)), 10) == "[0, 1, 2, … (58,890 characters)"
    assert text_cut("z" * 1000, 3) == "zzz… (1,000 characters)" and text_cut("zzz", 3) == "zzz"  # (the readable diff's)
    text = "head " + "x" * 10_000 + " tail"
    cut = bounded(text, 100)
    assert len(cut) < 160 and cut.startswith("head ") and cut.endswith(" tail") and "(10,010 characters in all)" in cut
    assert bounded("short", 100) == "short"
    assert len(last_lines("x" * 1_000_000 + "\n" + "y" * 1_000_000, 2)) < 1_200


def test_every_finding_is_bounded_where_it_is_made():
    """Whatever a check quotes, a finding's message, file and pointer stay bounded, head and tail kept."""
    finding = Finding("F-SCHEMA", "a.json", "/" + "k" * 100_000, f"tensor name {'n' * 1_000_000!r} repeats")
    assert len(finding.message) < MESSAGE_LIMIT + 60 and finding.message.endswith("' repeats")
    assert "(1,000,022 characters in all)" in finding.message
    assert len(finding.pointer) < 400 and len(finding.line()) < MESSAGE_LIMIT + 500


def test_job_does_not_echo_a_file_given_as_a_manifest(capsys):
    """``job --service /etc/passwd``: one line saying what the file is, with a short excerpt only."""
    code = main(["job", "--service", "/etc/passwd", "--job", str(ROOT / "manifests" / "inferencejob.yaml"),
                 "--connection", "a=/tmp"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("odahu-conformance: /etc/passwd: not an InferenceService manifest: the file's YAML is a text ")
    assert len(err) < 200 and "characters)), not a mapping" in err
