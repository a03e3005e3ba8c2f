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


def test_statuses_follow_the_evidence():
    """failed: a finding; passed: a check ran on evidence and found nothing; not-checked: it applies but nothing
    showed it (blocked, or a test broke); skipped: cannot apply, or no selected test covers it."""
    records = [
        TestRecord("t::golden", {"M-VALUE", "M-SHAPE", "M-DTYPE"}, "failed",
                   [Finding("M-VALUE", "a.json", "/outputs/0/data/1", "3 != 4")], checked={"M-VALUE", "M-SHAPE"}),
        TestRecord("t::names", {"P-NAME"}, "passed", [Finding("P-NAME", "b.json", "", "written as c.json", "SHOULD")]),
        TestRecord("t::blocked", {"F-MODEL"}, "failed", not_checked={"F-MODEL": "a.json has no model_name (F-SCHEMA)"}),
        TestRecord("t::embedded", {"P-CONFIG"}, "skipped", not_applicable={"P-CONFIG": "the model is inside the image"}),
        TestRecord("t::broke", {"P-EXIT"}, "failed", error="RuntimeError: boom (x.py:3)"),
    ]
    made = report.build(records, "cmd", "python p.py", strict=False)
    by_id = rows(made)
    assert [r["id"] for r in made["requirements"]] == [r.id for r in REQUIREMENTS]
    assert by_id["M-VALUE"]["status"] == "failed" and by_id["M-VALUE"]["failed_level"] == "MUST"
    assert by_id["M-VALUE"]["failures"] == ["a.json: M-VALUE /outputs/0/data/1: 3 != 4"]
    assert by_id["M-SHAPE"]["status"] == "passed" and by_id["M-SHAPE"]["tests"] == ["t::golden"]
    # covered by a test that ran, but no check of it ran on evidence: never "passed"
    assert by_id["M-DTYPE"]["status"] == "not-checked" and "no check of it ran" in by_id["M-DTYPE"]["reason"]
    assert by_id["P-NAME"]["status"] == "failed" and by_id["P-NAME"]["failed_level"] == "SHOULD"
    assert by_id["F-MODEL"] == {**by_id["F-MODEL"], "status": "not-checked", "reason": "a.json has no model_name (F-SCHEMA)"}
    assert by_id["P-CONFIG"]["status"] == "skipped" and by_id["P-CONFIG"]["reason"] == "the model is inside the image"
    assert by_id["F-JSON"] == {**by_id["F-JSON"], "status": "skipped", "reason": "no selected test covers it"}
    # a broken test is not a finding against the candidate: its requirements are not-checked, the error is listed
    assert by_id["P-EXIT"]["status"] == "not-checked" and "boom" in by_id["P-EXIT"]["reason"]
    assert made["errors"] == ["t::broke: RuntimeError: boom (x.py:3)"]
    assert made["summary"]["must_failed"] == 1 and made["summary"]["should_failed"] == 1
    assert made["summary"]["passed"] == 1 and made["summary"]["not_checked"] == 3
    assert made["status"] == "failed" and not report.verdict(made)
    only_should = report.build(records[1:2], "cmd", "x", strict=False)
    assert only_should["status"] == "passed" and report.verdict(only_should)
    assert report.build(records[1:2], "cmd", "x", strict=True)["status"] == "failed"
    blocked = report.build(records[2:3], "cmd", "x", strict=False)
    assert blocked["status"] == "incomplete" and report.headline(blocked) == "INCOMPLETE"
    interrupted = report.build(records[1:2], "cmd", "x", strict=False, completed=False)
    assert interrupted["status"] == "incomplete" and "interrupted" in report.markdown(interrupted)


def test_a_requirements_tests_are_those_that_can_check_it_for_this_candidate():
    """A test that recorded a requirement cannot apply (a multiplier-only test for another model), or that was
    skipped without showing anything about it, is not listed among the requirement's tests."""
    records = [
        TestRecord("t::any_model", {"P-EVERY", "B-MATCH"}, "passed", checked={"P-EVERY"},
                   not_applicable={"B-MATCH": "--oracle signature: no expected answers"}),
        TestRecord("t::multiplier_only", {"P-EVERY", "M-VALUE"}, "skipped", skip_reason="not the multiplier model",
                   not_applicable={"P-EVERY": "not the multiplier model", "M-VALUE": "not the multiplier model"}),
        TestRecord("t::no_goldens", {"P-EVERY"}, "skipped", skip_reason="no golden pairs"),
        TestRecord("t::hung", {"P-EXIT"}, "skipped", not_checked={"P-EXIT": "the candidate hangs"}),
    ]
    by_id = rows(report.build(records, "cmd", "x", strict=False))
    assert by_id["P-EVERY"]["status"] == "passed" and by_id["P-EVERY"]["tests"] == ["t::any_model"]
    assert by_id["M-VALUE"]["status"] == "skipped" and by_id["M-VALUE"]["tests"] == []
    assert by_id["M-VALUE"]["reason"] == "not the multiplier model"
    assert by_id["B-MATCH"]["status"] == "skipped" and by_id["B-MATCH"]["tests"] == []
    assert by_id["P-EXIT"]["status"] == "not-checked" and by_id["P-EXIT"]["tests"] == ["t::hung"]


def test_a_run_that_checked_nothing_about_the_candidate_is_never_passed():
    """The candidate never ran (``predictor_runs: 0``), or only the kit's K-* files were checked, or every test
    was skipped: ``nothing-checked``, in the status, the headline and the Markdown twin; never ``passed``."""
    kit_only = [TestRecord("t::manifest", {"K-SERVICE"}, "passed", checked={"K-SERVICE"})]
    about = [TestRecord("t::exit", {"P-EXIT"}, "passed", checked={"P-EXIT"})]
    all_skipped = [TestRecord("t::golden", {"M-VALUE"}, "skipped", skip_reason="no golden pairs")]
    never_ran = report.build(kit_only, "cmd", "/bin/false", strict=False, stats={"predictor_runs": 0})
    assert never_ran["status"] == "nothing-checked" and not report.verdict(never_ran)
    assert report.headline(never_ran) == "NOTHING CHECKED"
    assert report.why_nothing_checked(never_ran) == ("the candidate never ran (only the kit's files were checked: "
                                                      "1 K-* requirements passed)")
    text = report.markdown(never_ran)
    assert text.startswith("# Conformance report: NOTHING CHECKED") and "- no verdict about the candidate: " in text
    assert never_ran["stats"] == {"predictor_runs": 0}
    assert report.build(kit_only, "cmd", "x", strict=False)["status"] == "nothing-checked"  # ran, but only K-*
    assert report.build(all_skipped, "cmd", "x", strict=False, stats={"predictor_runs": 3})["status"] == "nothing-checked"
    # a requirement about the candidate passed on evidence from a run: a verdict
    assert report.build(kit_only + about, "cmd", "x", strict=False, stats={"predictor_runs": 1})["status"] == "passed"
    # a run with no predictor run cannot pass even if a record says it checked something
    assert report.build(about, "cmd", "x", strict=False, stats={"predictor_runs": 0})["status"] == "nothing-checked"
    # failures and gaps still say so: nothing-checked is only instead of passed
    broken_kit = [TestRecord("t::manifest", {"K-SERVICE"}, "failed", [Finding("K-SERVICE", "s.yaml", "", "no image")])]
    assert report.build(broken_kit, "cmd", "x", strict=False, stats={"predictor_runs": 0})["status"] == "failed"


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
    assert len(seen) == 8
    suite_properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")
                        if p.get("name", "").startswith(("requirement ", "conformance_status"))}
    assert suite_properties["requirement P-CONFIG"] == "passed"
    assert suite_properties["requirement M-VALUE"] == "skipped"  # not selected by -m protocol -k unusable_model


def test_the_markdown_report_says_how_a_local_run_was_contained(tmp_path):
    made = report.build([], "cmd", "python3 p.py", False)
    made["candidate"]["containment"] = "subreaper sweep (no unshare), host writable"
    twin = report.write(made, tmp_path / "report.json")
    assert "- containment (how a local run was held to an image's limits): subreaper sweep (no unshare), host writable" \
        in twin.read_text()
