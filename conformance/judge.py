"""Judging one predictor run: every way its result departs from the contract, as findings with requirement IDs.

This is the core both the pytest suite and the command line call. It knows nothing of pytest: it takes the
requests that were staged, the model the candidate ran with and the :class:`~conformance.run.workspace.RunResult`,
and returns :class:`~conformance.contract.findings.Finding` records. What a correct response is comes from the oracle
(or from a golden response), never from the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.contract.findings import Finding
from conformance.contract.requirements import SHOULD
from conformance.odahu.model import Model
from conformance.oracle.compare import compare, explain
from conformance.oracle.expect import Expected, expect
from conformance.run.workspace import RunResult
from conformance.v2.documents import ERROR, REQUEST, RESPONSE, Document, load, parse

#: Lines of the candidate's output quoted in a finding.
QUOTED_LINES = 3


@dataclass
class Judgement:
    """What one run was found to be: ``findings`` (run-level and per response), and per request file the
    response read (``responses``), the expected answer (``expected``) and a readable diff where they differ."""

    findings: list[Finding] = field(default_factory=list)
    responses: dict[str, Document] = field(default_factory=dict)
    expected: dict[str, Expected] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)

    def for_file(self, name: str) -> list[Finding]:
        """The findings about the response to request ``name``."""
        return [f for f in self.findings if f.file == name]

    def run_level(self) -> list[Finding]:
        """The findings that are about the run, not one response."""
        return [f for f in self.findings if f.file not in self.expected]


def tail(text: str, lines: int = QUOTED_LINES) -> str:
    """The last ``lines`` non-empty lines of ``text`` joined with `` | `` (for one-line findings)."""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(nothing)"


def run_findings(result: RunResult, expect_exit_zero: bool = True) -> list[Finding]:
    """Findings about the run as a whole: start failure, timeout (P-TIMELY), exit status (P-EXIT), files
    outside the platform's reach (P-NAME) and changes to the input or model folders (P-READONLY)."""
    label = "(run)"
    findings = []
    if result.start_error:
        findings.append(Finding("P-EXIT", label, "", f"the candidate did not run: {result.start_error}"))
    elif result.stopped:
        findings.append(Finding("P-EXIT", label, "", f"the run was {result.stopped}"))
    elif result.timed_out:
        findings.append(Finding("P-TIMELY", label, "", f"killed after {result.duration:.1f} s (the run's timeout); output: {tail(result.stderr or result.stdout)}"))
    elif expect_exit_zero and result.exit_code != 0:
        findings.append(Finding("P-EXIT", label, "", f"exit status {result.exit_code} after a batch; output: {tail(result.stderr or result.stdout)}"))
    for entry in result.entries:
        if "/" in entry.path and entry.kind != "dir":
            findings.append(Finding("P-NAME", entry.path, "", "written in a subfolder: the platform drops it"))
        elif "/" not in entry.path and entry.kind == "dir":
            findings.append(Finding("P-NAME", entry.path + "/", "", "a subfolder in the output folder: the platform drops it"))
        elif "/" not in entry.path and not entry.path.endswith(".json"):
            findings.append(Finding("P-NAME", entry.path, "", "not a *.json file: the platform drops it"))
        elif "/" not in entry.path and entry.kind != "file":
            findings.append(Finding("P-NAME", entry.path, "", f"a {entry.kind}, not a regular file: the platform drops it"))
    for change in result.input_changes:
        findings.append(Finding("P-READONLY", "(input folder)", "", change))
    for change in result.model_changes:
        findings.append(Finding("P-READONLY", "(model folder)", "", change))
    return findings


def judge_batch(
    result: RunResult,
    requests: dict[str, bytes],
    model: Model,
    golden: dict[str, Path] | None = None,
) -> Judgement:
    """Judge a run over ``requests`` (file name -> bytes, exactly as staged) for a candidate running ``model``.

    Each request ``NAME.json`` must have its response ``NAME.json`` directly in the output folder (P-EVERY;
    a response under another name is a P-NAME SHOULD finding), equal to the expected answer: the golden
    response ``golden[NAME]`` when given, else the oracle's. Also returns :func:`run_findings`.
    """
    judgement = Judgement(findings=run_findings(result))
    produced = result.json_files()
    if requests and not result.output_exists and result.exit_code == 0:
        # (a run that failed is a P-EXIT finding already; why it wrote nothing is for the protocol tests to say)
        judgement.findings.append(Finding("P-OUTDIR", "(run)", "", "exit status 0 but no output folder at "
                                          "ODAHU_OUTPUT_PATH: the responses went elsewhere, or nowhere"))
    missing = sorted(set(requests) - set(produced))
    extra = sorted(set(produced) - set(requests))
    # Responses under other names still answer their requests when the numbers match (a consistent renaming
    # such as "response-NAME.json"): paired in name order, each a P-NAME SHOULD finding.
    renamed = dict(zip(missing, extra)) if len(missing) == len(extra) else {}
    for name in extra:
        if name not in renamed.values():
            judgement.findings.append(Finding("P-EVERY", name, "", "a response no request asked for"))
    for name, raw in sorted(requests.items()):
        request = parse(raw, REQUEST, name)
        expected = _expected(request, model, golden.get(name) if golden else None)
        judgement.expected[name] = expected
        written = renamed.get(name, name)
        if written not in produced:
            if result.output_exists:
                judgement.findings.append(Finding("P-EVERY", name, "", "no response written for this request"))
            continue
        if written != name:
            judgement.findings.append(Finding("P-NAME", name, "", f"the response is written as {written}", SHOULD))
        path = result.workspace.output / written
        actual = load(path, RESPONSE, label=name) if path.is_file() else parse(produced[written], RESPONSE, name)
        judgement.responses[name] = actual
        found = compare(actual, expected, request)
        judgement.findings += found
        if found and actual.kind != ERROR and not expected.is_error:
            judgement.diffs[name] = explain(actual, expected)
    missing = [name for name in missing if name not in renamed]
    if missing and len(missing) < len(requests) and result.exit_code not in (0, None):
        judgement.findings.append(Finding(
            "P-ISOLATE", "(run)", "",
            f"stopped with exit status {result.exit_code} after answering {len(requests) - len(missing)} of "
            f"{len(requests)} requests (first unanswered: {missing[0]})",
        ))
    return judgement


def _expected(request: Document, model: Model, golden_response: Path | None) -> Expected:
    """The oracle's answer; with a golden response, its outputs stand in for the oracle's (K-GOLDEN checks
    elsewhere that the two agree)."""
    expected = expect(request, model, request.file)
    if golden_response is None:
        return expected
    golden = load(golden_response, RESPONSE, label=str(golden_response))
    if golden.findings:
        return expected
    if golden.kind == ERROR:
        if expected.is_error:
            return expected
        return Expected(request.id, model, error=str(golden.body.get("error")), requirement="P-EVERY")
    return Expected(request.id, model, outputs=golden.tensors)


def blocking(findings: list[Finding], strict: bool) -> list[Finding]:
    """The findings that fail a run: every MUST finding, and SHOULD findings too when ``strict``."""
    return [f for f in findings if strict or f.level != SHOULD]
