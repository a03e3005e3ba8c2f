"""The requirement report: every contract ID, statuses as SPEC.md defines them, the verdict, the Markdown twin,
and JUnit properties naming the requirements."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

from conformance import report
from conformance.contract.findings import Finding
from conformance.contract.requirements import REQUIREMENTS
from conformance.report import TestRecord


def rows(made: dict) -> dict[str, dict]:
    return {row["id"]: row for row in made["requirements"]}


def test_statuses_levels_and_verdict():
    records = [
        TestRecord("t::golden", {"M-VALUE", "M-SHAPE"}, "failed", [Finding("M-VALUE", "a.json", "/outputs/0/data/1", "3 != 4")]),
        TestRecord("t::names", {"P-NAME"}, "passed", [Finding("P-NAME", "b.json", "", "written as c.json", "SHOULD")]),
        TestRecord("t::skipped", {"P-CONFIG"}, "skipped"),
        TestRecord("t::broke", {"P-EXIT"}, "failed", error="RuntimeError: boom (x.py:3)"),
    ]
    made = report.build(records, "cmd", "python p.py", strict=False)
    by_id = rows(made)
    assert [r["id"] for r in made["requirements"]] == [r.id for r in REQUIREMENTS]
    assert by_id["M-VALUE"]["status"] == "failed" and by_id["M-VALUE"]["failed_level"] == "MUST"
    assert by_id["M-VALUE"]["failures"] == ["a.json: M-VALUE /outputs/0/data/1: 3 != 4"]
    assert by_id["M-SHAPE"]["status"] == "passed" and by_id["M-SHAPE"]["tests"] == ["t::golden"]
    assert by_id["P-NAME"]["status"] == "failed" and by_id["P-NAME"]["failed_level"] == "SHOULD"
    assert by_id["P-CONFIG"]["status"] == "skipped" and by_id["F-JSON"]["status"] == "skipped"
    assert by_id["P-EXIT"]["failures"] == ["t::broke: RuntimeError: boom (x.py:3)"]
    assert made["summary"] == {"must_failed": 2, "should_failed": 1, "passed": 1, "skipped": 26}
    assert not report.verdict(made)
    only_should = report.build(records[1:2], "cmd", "x", strict=False)
    assert report.verdict(only_should)
    assert not report.verdict(report.build(records[1:2], "cmd", "x", strict=True))


def test_markdown_twin_and_failure_lines_are_capped(tmp_path):
    findings = [Finding("F-ID", f"r{i}.json", "/id", "missing | pipe") for i in range(9)]
    made = report.build([TestRecord("t", {"F-ID"}, "failed", findings)], "image", "img:1", strict=True)
    assert rows(made)["F-ID"]["failures"][-1] == "... and 4 more"
    twin = report.write(made, tmp_path / "out" / "report.json")
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == made
    text = twin.read_text()
    assert text.startswith("# Conformance report: FAILED") and "| F-ID | MUST | failed (MUST) | 1 |" in text
    assert "missing \\| pipe" in text  # table cells stay one cell


def test_junit_names_and_properties_carry_requirement_ids(tmp_path):
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q",
         "-m", "protocol", "-k", "unusable_model", "--junitxml", str(junit), "--workspace-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    seen = {case.get("name"): [p.get("value") for p in case.iter("property") if p.get("name") == "requirements"]
            for case in cases}
    assert seen["test_unusable_model[P-CONFIG-two]"] == ["P-CONFIG"]
    assert len(seen) == 4
