"""The conformance report: every requirement ID with its status, level, the tests that checked it and the first
lines of each failure. Written as JSON (for machines) with a Markdown twin (for people).

The :class:`Recorder` collects one :class:`TestRecord` per test; :func:`build` turns them into the report.
Every text in it is bounded (findings where they are made, reasons and errors here: :func:`conformance.text.bounded`),
whatever a candidate wrote. A requirement's status (the contract's definitions):

- ``failed``: some finding names it (``failed_level`` tells a MUST failure from one of only the SHOULD part);
- ``passed``: at least one check of it ran on real evidence and found nothing;
- ``not-checked``: it applies, but nothing could show it (no response to examine, blocked by an earlier
  finding, the candidate never ran, a test broke); ``reason`` says why;
- ``skipped``: it cannot apply to this candidate, or no selected test covers it; ``reason`` says which.

The run's ``status`` is ``passed`` only when it ran to the end, no MUST requirement is failed or not-checked
(nor a SHOULD one failed under strict) and some requirement about the candidate was checked on evidence;
``failed`` on a MUST failure; ``incomplete`` when it was interrupted or a MUST requirement could not be checked;
``nothing-checked`` when nothing failed but the candidate never ran, or no requirement about it (any but the
kit's own ``K-*`` files) was passed or failed on evidence: no verdict about the candidate at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from conformance import __version__, _fs
from conformance.contract.baseline import Baseline
from conformance.contract.findings import Finding
from conformance.contract.requirements import BY_ID, MUST, REQUIREMENTS, SHOULD
from conformance.text import bounded

#: The requirements about the kit's own files (manifests, model metadata, golden pairs), not the candidate: a run
#: that checked only these says nothing about the candidate.
KIT_PREFIX = "K-"

#: Failure lines kept per requirement.
FAILURE_LINES = 5

#: A suite test skipped with a reason starting with this marks its requirements not-checked (it applies, but a
#: run was not worth making, e.g. the candidate hangs), not skipped.
NOT_CHECKED_SKIP = "not checked: "

Status = Literal["passed", "failed", "not-checked", "skipped"]
RunStatus = Literal["passed", "failed", "incomplete", "nothing-checked"]


@dataclass
class TestRecord:
    """One test: the requirement IDs it covers, how it ended, its findings, the requirements it checked on
    evidence, those it could not check (and why), those that cannot apply (and why), and any error outside the
    findings."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    covers: set[str] = field(default_factory=set)
    outcome: str = "skipped"  # passed, failed or skipped
    findings: list[Finding] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    not_checked: dict[str, str] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    skip_reason: str | None = None
    error: str | None = None
    reproduce: str | None = None  # a command that reproduces the first failing run of this test

    def to_wire(self) -> dict:
        """The record as plain data (str, int, list, dict, None): what a pytest-xdist worker sends its controller
        with the test's report (:func:`from_wire` makes the record again)."""
        return {"nodeid": self.nodeid, "covers": sorted(self.covers), "outcome": self.outcome,
                "findings": [[f.requirement, f.file, f.pointer, f.message, f.level] for f in self.findings],
                "checked": sorted(self.checked), "not_checked": dict(self.not_checked),
                "not_applicable": dict(self.not_applicable), "skip_reason": self.skip_reason, "error": self.error,
                "reproduce": self.reproduce}

    @classmethod
    def from_wire(cls, data: dict) -> TestRecord:
        """The record :meth:`to_wire` sent."""
        return cls(data["nodeid"], set(data["covers"]), data["outcome"],
                   [Finding(*fields) for fields in data["findings"]], set(data["checked"]),
                   dict(data["not_checked"]), dict(data["not_applicable"]), data["skip_reason"], data["error"],
                   data["reproduce"])


class Recorder:
    """Collects test records during a session."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}

    def record(self, nodeid: str) -> TestRecord:
        """The record of ``nodeid`` (created on first use)."""
        if nodeid not in self.records:
            self.records[nodeid] = TestRecord(nodeid)
        return self.records[nodeid]


def requirement_row(requirement_id: str, records: list[TestRecord], baseline: Baseline | None = None) -> dict:
    """One requirement's row of the report (see the module docstring for the statuses). A failed requirement
    whose every finding the ``baseline`` knows is marked ``baselined``: it does not fail the run."""
    requirement = BY_ID[requirement_id]
    mine = [r for r in records if requirement.id in r.covers or requirement.id in r.checked
            or requirement.id in r.not_checked or requirement.id in r.not_applicable]
    failures, levels, known = [], set(), True
    for record in records:
        for finding in record.findings:
            if finding.requirement == requirement.id:
                levels.add(finding.level)
                failures.append(finding.line())
                known = known and baseline is not None and baseline.covers(finding)
    # ``tests``: the tests that can check it for this candidate: not one that recorded it cannot apply (a
    # multiplier-only test run for another model), nor one skipped without showing anything about it
    able = [r for r in mine if requirement.id not in r.not_applicable and (
        r.outcome != "skipped" or requirement.id in r.checked or requirement.id in r.not_checked)]
    row: dict = {"id": requirement.id, "level": requirement.level, "title": requirement.title,
                 "tests": sorted(r.nodeid for r in able), "failures": _first(failures)}
    if failures:
        row["status"] = "failed"
        row["failed_level"] = MUST if MUST in levels else SHOULD
        row["failure_count"] = len(set(failures))
        if known:
            row["baselined"] = True
        reproduce = next((r.reproduce for r in records if r.reproduce
                          and any(f.requirement == requirement.id for f in r.findings)), None)
        if reproduce:
            row["reproduce"] = reproduce
        return row
    if any(requirement.id in r.checked for r in mine):
        row["status"] = "passed"
        return row
    reasons = [r.not_checked[requirement.id] for r in mine if requirement.id in r.not_checked]
    reasons += [f"{r.nodeid} broke: {r.error}" for r in mine if r.error]
    ran = [r for r in mine if r.outcome != "skipped" and requirement.id not in r.not_applicable]
    if reasons or ran:
        row["status"] = "not-checked"
        row["reason"] = bounded(reasons[0]) if reasons else f"no check of it ran on evidence ({ran[0].nodeid})"
        return row
    row["status"] = "skipped"
    # why it cannot apply comes first; a test's own skip reason (e.g. nothing to run it on) after
    skipped: list[str | None] = [r.not_applicable[requirement.id] for r in mine if requirement.id in r.not_applicable]
    skipped += [r.skip_reason for r in mine]
    row["reason"] = bounded(next((s for s in skipped if s), "no selected test covers it"))
    return row


def build(records: list[TestRecord], candidate_kind: str, candidate_ref: str, strict: bool,
          completed: bool = True, note: str = "", baseline: Baseline | None = None,
          stats: dict | None = None) -> dict:
    """The report document (see the interfaces doc for its shape); ``completed`` is False for an interrupted
    run; ``note`` says how the candidate was chosen (e.g. the reference, by default). With a ``baseline``,
    failures it knows are reported (``baselined``) but fail nothing, and entries that no longer fail are
    listed under ``baseline``. ``stats`` (``predictor_runs`` and the like) go in as given; ``predictor_runs: 0``
    means the candidate never ran, so the run cannot be ``passed``."""
    rows = [requirement_row(requirement.id, records, baseline) for requirement in REQUIREMENTS]
    failed = [r for r in rows if r["status"] == "failed" and not r.get("baselined")]
    summary = {
        "must_failed": sum(1 for r in failed if r["failed_level"] == MUST),
        "should_failed": sum(1 for r in failed if r["failed_level"] == SHOULD),
        "passed": sum(1 for r in rows if r["status"] == "passed"),
        "not_checked": sum(1 for r in rows if r["status"] == "not-checked"),
        "must_not_checked": sum(1 for r in rows if r["status"] == "not-checked" and r["level"] == MUST),
        "skipped": sum(1 for r in rows if r["status"] == "skipped"),
        "baselined": sum(1 for r in rows if r.get("baselined")),
    }
    errors = [bounded(f"{r.nodeid}: {r.error}") for r in records if r.error]
    made = {
        "kit_version": __version__,
        "candidate": {"kind": candidate_kind, "ref": candidate_ref, **({"note": note} if note else {})},
        "strict": strict,
        "completed": completed,
        "requirements": rows,
        "summary": summary,
        "errors": errors,
        **({"stats": stats} if stats is not None else {}),
    }
    if baseline is not None:
        findings = [f for r in records for f in r.findings]
        made["baseline"] = {"file": baseline.source, "no_longer_failing": baseline.no_longer_failing(findings)}
    made["status"] = run_status(made)
    return made


def run_status(report: dict) -> RunStatus:
    """``failed`` on a MUST failure (or a SHOULD one under strict); else ``incomplete`` when the run was
    interrupted or a MUST requirement could not be checked; else ``nothing-checked`` when the candidate never ran
    or nothing about it was checked (:func:`why_nothing_checked`); else ``passed``."""
    summary = report["summary"]
    if summary["must_failed"] or (report["strict"] and summary["should_failed"]):
        return "failed"
    if not report.get("completed", True) or summary.get("must_not_checked", 0):
        return "incomplete"
    if why_nothing_checked(report):
        return "nothing-checked"
    return "passed"


def why_nothing_checked(report: dict) -> str | None:
    """Why the report is no verdict about the candidate, or None when it is one: the candidate never ran
    (``stats.predictor_runs`` is 0), or no requirement about it (any but the kit's ``K-*``) is passed or failed."""
    about = [row for row in report["requirements"] if not row["id"].startswith(KIT_PREFIX)
             and row["status"] in ("passed", "failed")]
    kit = sum(1 for row in report["requirements"] if row["id"].startswith(KIT_PREFIX) and row["status"] == "passed")
    checked = f" (only the kit's files were checked: {kit} K-* requirements passed)" if kit else ""
    if report.get("stats", {}).get("predictor_runs", None) == 0:
        return "the candidate never ran" + checked
    if not about:
        return "no requirement about the candidate was checked on evidence" + checked
    return None


def _first(lines: list[str]) -> list[str]:
    unique = list(dict.fromkeys(lines))
    if len(unique) <= FAILURE_LINES:
        return unique
    return unique[:FAILURE_LINES] + [f"... and {len(unique) - FAILURE_LINES} more"]


def verdict(report: dict) -> bool:
    """Whether the report passes (its status is ``passed``)."""
    return run_status(report) == "passed"


def headline(report: dict) -> str:
    """PASSED, FAILED, INCOMPLETE or NOTHING CHECKED."""
    return run_status(report).upper().replace("-", " ")


def markdown(report: dict) -> str:
    """The report as a Markdown page."""
    summary = report["summary"]
    candidate = report["candidate"]
    lines = [
        f"# Conformance report: {headline(report)}",
        "",
        f"- candidate: {candidate['kind']} `{candidate['ref']}`" + (f" ({candidate['note']})" if candidate.get("note") else ""),
        *([f"- oracle (where the expected answers came from): `{candidate['oracle']}`"] if "oracle" in candidate else []),
        *([f"- containment (how a local run was held to an image's limits): {candidate['containment']}"]
          if "containment" in candidate else []),
        *([] if report.get("completed", True) else ["- the run was interrupted: the results below are partial"]),
        *([f"- no verdict about the candidate: {why_nothing_checked(report)}"]
          if run_status(report) == "nothing-checked" else []),
        *([f"- not a verdict: {report['kit_problem']}"] if report.get("kit_problem") else []),
        f"- kit version: {report['kit_version']}; strict: {'yes' if report['strict'] else 'no'}",
        f"- MUST failed: {summary['must_failed']}, SHOULD failed: {summary['should_failed']}, "
        f"passed: {summary['passed']}, not checked: {summary.get('not_checked', 0)}, skipped: {summary['skipped']}",
        "",
        "| requirement | level | status | tests | first failure, or why not checked |",
        "|---|---|---|---|---|",
    ]
    for row in report["requirements"]:
        status = row["status"] + (f" ({row['failed_level']})" if row["status"] == "failed" else "")
        status += " (baselined)" if row.get("baselined") else ""
        first = row["failures"][0] if row["failures"] else row.get("reason", "")
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
    _fs.write_atomically(path, (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    _fs.write_atomically(twin, markdown(report).encode("utf-8"))
    return twin
