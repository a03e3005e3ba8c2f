"""The kit's own problems and a hostile candidate's output stay bounded (issue 18): a broken oracle stops the run
with one line and exit 2 (not a failure of the candidate), a reference call has a deadline, and values quoted
from a candidate are cut to a bounded length with their full size said."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.oracle.sources import _TimedOut, call_within

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
    assert out.count("oracle.py:answer failed on a.json: KeyError: 'inputs'") == 2, out  # its failure, the digest
    assert "NOT CHECKED" not in out and "Traceback" not in out


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_the_cli_refuses_an_oracle_timeout_that_is_not_a_positive_number(value, capsys):
    assert main(["run", "--cmd", "/bin/true", "--oracle-timeout", value]) == 2
    assert capsys.readouterr().err.strip() == (f"odahu-conformance: --oracle-timeout must be a positive number of "
                                               f"seconds, got {float(value)}")
