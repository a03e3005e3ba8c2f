"""The conformance suite run online (``--url``) against the real peers MLServer 1.7.1 and KServe 0.21.0, each
serving the multiplier and the iris example; each report pinned exactly as measured (tests/peers/FACTS.md, "The
suite's reports"): the status of every requirement, and for each failed one a phrase of why. A release of either
server, or a change of the kit's checks, that moves one verdict fails here, naming the requirement.

Each run is the suite in a subprocess with the project's python, as a user runs it:
``pytest --pyargs conformance.suite --url http://127.0.0.1:PORT --model-name NAME --conformance-report R.json``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from peers import servers

pytestmark = pytest.mark.slow

CHECKOUT = servers.CHECKOUT
IRIS_OPTIONS = ("--model", str(servers.IRIS_MODEL), "--oracle",
                f"python:{servers.IRIS / 'reference.py'}:answer")


@dataclasses.dataclass(frozen=True)
class Expected:
    """A report: ``failed`` maps each failed requirement to a phrase its failures contain; ``not_checked`` and
    ``skipped`` name the requirements with those statuses; every other requirement passed."""

    failed: dict[str, str]
    not_checked: frozenset[str] = frozenset()
    skipped: frozenset[str] = frozenset()


def run_suite(server: servers.Server, model_name: str, options: tuple[str, ...], report: Path) -> dict:
    """The suite's report against ``server``; the run's output is in the assertion when there is no report."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-q", "-p", "no:cacheprovider",
         "--url", f"http://{servers.HOST}:{server.port}", "--model-name", model_name,
         "--conformance-report", str(report), *options],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=600)
    assert report.is_file(), f"no report (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    return json.loads(report.read_text())


def verdicts(report: dict) -> dict[str, tuple[str, str]]:
    """{requirement: (status, its failures or reason as one text)}."""
    return {row["id"]: (row["status"], " | ".join(row["failures"]) or row.get("reason", ""))
            for row in report["requirements"]}


def assert_report(report: dict, expected: Expected) -> None:
    got = verdicts(report)
    wanted = {rid: "failed" for rid in expected.failed}
    wanted.update({rid: "not-checked" for rid in expected.not_checked})
    wanted.update({rid: "skipped" for rid in expected.skipped})
    statuses = {rid: status for rid, (status, _) in got.items()}
    assert statuses == {rid: wanted.get(rid, "passed") for rid in got}, {
        rid: got[rid] for rid in got if statuses[rid] != wanted.get(rid, "passed")}
    for rid, phrase in expected.failed.items():
        assert phrase in got[rid][1], (rid, got[rid][1])
