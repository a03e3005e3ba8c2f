"""The conformance report: every requirement ID with its status, level, the tests that checked it and the first
lines of each failure. Written as JSON (for machines) with a Markdown twin (for people).

The :class:`Recorder` collects one :class:`TestRecord` per test; :func:`build` turns them into the report. A
requirement is ``failed`` when some finding names it (or a test covering it broke without findings), ``passed``
when a test covering it ran and nothing named it, ``skipped`` otherwise. ``failed_level`` tells whether a
failure is a MUST one or only the SHOULD part (P-NAME's file name, F-MODEL's version).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from conformance import __version__
from conformance.contract.findings import Finding
from conformance.contract.requirements import MUST, REQUIREMENTS, SHOULD

#: Failure lines kept per requirement.
FAILURE_LINES = 5


@dataclass
class TestRecord:
    """One test: the requirement IDs it covers, how it ended, its findings and any error outside the findings."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    covers: set[str] = field(default_factory=set)
    outcome: str = "skipped"  # passed, failed or skipped
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None


class Recorder:
    """Collects test records during a session."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}

    def record(self, nodeid: str) -> TestRecord:
        """The record of ``nodeid`` (created on first use)."""
        if nodeid not in self.records:
            self.records[nodeid] = TestRecord(nodeid)
        return self.records[nodeid]


def build(records: list[TestRecord], candidate_kind: str, candidate_ref: str, strict: bool) -> dict:
    """The report document (see the interfaces doc for its shape)."""
    rows = []
    for requirement in REQUIREMENTS:
        tests = sorted(r.nodeid for r in records if requirement.id in r.covers)
        ran = [r for r in records if requirement.id in r.covers and r.outcome != "skipped"]
        failures, levels = [], set()
        for record in records:
            for finding in record.findings:
                if finding.requirement == requirement.id:
                    levels.add(finding.level)
                    failures.append(finding.line())
        for record in ran:
            if record.error and not record.findings:
                levels.add(MUST)
                failures.append(f"{record.nodeid}: {record.error}")
        row = {"id": requirement.id, "level": requirement.level, "title": requirement.title,
               "status": "failed" if failures else ("passed" if ran else "skipped"),
               "tests": tests, "failures": _first(failures)}
        if failures:
            row["failed_level"] = MUST if MUST in levels else SHOULD
        rows.append(row)
    failed = [r for r in rows if r["status"] == "failed"]
    return {
        "kit_version": __version__,
        "candidate": {"kind": candidate_kind, "ref": candidate_ref},
        "strict": strict,
        "requirements": rows,
        "summary": {
            "must_failed": sum(1 for r in failed if r["failed_level"] == MUST),
            "should_failed": sum(1 for r in failed if r["failed_level"] == SHOULD),
            "passed": sum(1 for r in rows if r["status"] == "passed"),
            "skipped": sum(1 for r in rows if r["status"] == "skipped"),
        },
    }


def _first(lines: list[str]) -> list[str]:
    unique = list(dict.fromkeys(lines))
    if len(unique) <= FAILURE_LINES:
        return unique
    return unique[:FAILURE_LINES] + [f"... and {len(unique) - FAILURE_LINES} more"]


def verdict(report: dict) -> bool:
    """Whether the report passes: no MUST failure, and no SHOULD failure when it was made with ``strict``."""
    summary = report["summary"]
    return summary["must_failed"] == 0 and not (report["strict"] and summary["should_failed"])


def markdown(report: dict) -> str:
    """The report as a Markdown page."""
    summary = report["summary"]
    candidate = report["candidate"]
    lines = [
        f"# Conformance report: {'PASSED' if verdict(report) else 'FAILED'}",
        "",
        f"- candidate: {candidate['kind']} `{candidate['ref']}`",
        f"- kit version: {report['kit_version']}; strict: {'yes' if report['strict'] else 'no'}",
        f"- MUST failed: {summary['must_failed']}, SHOULD failed: {summary['should_failed']}, "
        f"passed: {summary['passed']}, skipped: {summary['skipped']}",
        "",
        "| requirement | level | status | tests | first failure |",
        "|---|---|---|---|---|",
    ]
    for row in report["requirements"]:
        status = row["status"] + (f" ({row['failed_level']})" if row["status"] == "failed" else "")
        first = row["failures"][0] if row["failures"] else ""
        lines.append(f"| {row['id']} | {row['level']} | {status} | {len(row['tests'])} | {_cell(first)} |")
    failing = [row for row in report["requirements"] if row["failures"]]
    if failing:
        lines += ["", "## Failures", ""]
        for row in failing:
            lines.append(f"### {row['id']}: {row['title']}")
            lines.append("")
            lines += [f"- {_cell(line)}" for line in row["failures"]]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= 300 else text[:297] + "..."


def write(report: dict, path: Path) -> Path:
    """Write ``path`` (JSON) and its Markdown twin (same name, ``.md``); return the Markdown path."""
    path = Path(path)
    twin = path.with_suffix(".md")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    _write_atomically(twin, markdown(report).encode("utf-8"))
    return twin


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
