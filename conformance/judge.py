"""The judge: every way a predictor run departs from the contract, as findings with requirement IDs, and what
each requirement was checked on.

Each run-level requirement is one named check function, registered in :data:`RUN_CHECKS` and reused by the
suite (``conformance/suite``) and by ``odahu-conformance job``. :func:`judge_batch` judges one run over a batch:
the run-level checks, then each response against the oracle (:func:`conformance.oracle.compare.examine`).

A :class:`Judgement` keeps the evidence beside the findings: which requirements a check ran on (``checked``,
also when it found nothing), and which could not be shown and why (``blocked``). A requirement is only reported
``passed`` when some check of it ran on real evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conformance.contract.findings import Finding
from conformance.contract.requirements import SHOULD
from conformance.odahu.model import Model, OtherModel
from conformance.oracle.compare import RESPONSE_IDS, Comparison, examine, explain
from conformance.oracle.expect import Expected, expect
from conformance.oracle.match import ANY_MODEL_RESPONSE_IDS, examine_any
from conformance.oracle.sources import Oracle, OracleProblem, expected_of
from conformance.online.checks import ONLINE_RUN_IDS, answer_document, answered_in_time, refused_with_4xx, served_with_200
from conformance.run.workspace import RunResult
from conformance.online import grpc_checks
from conformance.transport.exchange import BATCH, GRPC, Exchange
from conformance.text import last_lines
from conformance.v2.documents import ERROR, REQUEST, RESPONSE, Document, load, parse

#: Lines of the candidate's output quoted in a finding.
QUOTED_LINES = 3
#: Where run-level findings and evidence are filed.
RUN = "(run)"

#: Every run-level check, by the requirement it decides. Each takes run results and returns findings.
RUN_CHECKS: dict[str, Callable[..., list[Finding]]] = {}


def run_check(requirement: str) -> Callable[[Callable[..., list[Finding]]], Callable[..., list[Finding]]]:
    """Register the decorated function as the check of ``requirement``."""

    def register(function: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
        RUN_CHECKS[requirement] = function
        function.requirement = requirement  # type: ignore[attr-defined]
        return function

    return register


def output_of(result: RunResult, lines: int = QUOTED_LINES) -> str:
    """The last ``lines`` non-empty lines the candidate printed (stderr, else stdout), on one line."""
    return last_lines(result.stderr or result.stdout, lines, default="(nothing)")


def ended(result: RunResult) -> bool:
    """Whether the run ended by itself (it started, was not killed at its timeout, nor stopped by the kit)."""
    return not (result.start_error or result.timed_out or result.stopped)


# ----------------------------------------------------------------------------------------------- run checks


@run_check("P-TIMELY")
def finishes_in_time(result: RunResult) -> list[Finding]:
    """P-TIMELY: the run ended before its timeout."""
    if result.timed_out:
        return [Finding("P-TIMELY", RUN, "", f"killed after {result.duration:.1f} s (the run's timeout); output: {output_of(result)}")]
    return []


@run_check("P-EXIT")
def exits_zero(result: RunResult) -> list[Finding]:
    """P-EXIT: exit status 0 after a batch (for a run that ended by itself) and no run the kit had to stop; a
    process left running once the candidate's main process exited is a SHOULD finding: as in a pod, it is
    stopped and what was written by then is judged (an image's leftovers end with its container unseen, so a
    MUST failure here would make a command's verdict stricter than the same program's as an image)."""
    findings = []
    if result.stopped:
        findings.append(Finding("P-EXIT", RUN, "", f"the run was {result.stopped}"))
    elif ended(result) and result.exit_code != 0:
        findings.append(Finding("P-EXIT", RUN, "", f"exit status {result.exit_code} after a batch; output: {output_of(result)}"))
    leftovers = getattr(result, "leftovers", [])
    if leftovers:
        findings.append(Finding("P-EXIT", RUN, "", f"left {len(leftovers)} process(es) running after it exited "
                                                   f"(killed by the kit; on the platform the step ends with the "
                                                   f"main process and their work is lost): {'; '.join(leftovers[:3])}",
                                level=SHOULD))
    return findings


@run_check("P-NAME")
def platform_keeps_every_file(result: RunResult) -> list[Finding]:
    """P-NAME (MUST part): only ``*.json`` regular files directly in the output folder (the platform drops
    anything else)."""
    findings = []
    for entry in result.entries:
        if "/" in entry.path and entry.kind != "dir":
            findings.append(Finding("P-NAME", entry.path, "", "written in a subfolder: the platform drops it"))
        elif "/" not in entry.path and entry.kind == "dir":
            findings.append(Finding("P-NAME", entry.path + "/", "", "a subfolder in the output folder: the platform drops it"))
        elif "/" not in entry.path and not entry.path.endswith(".json"):
            findings.append(Finding("P-NAME", entry.path, "", "not a *.json file: the platform drops it"))
        elif "/" not in entry.path and entry.kind == "symlink":
            findings.append(Finding("P-NAME", entry.path, "", "a symbolic link, not a file: the platform reads through "
                                                              "it, and its whole step fails if the link dangles"))
        elif "/" not in entry.path and entry.kind != "file":
            findings.append(Finding("P-NAME", entry.path, "", "a FIFO, socket or device, not a regular file: the "
                                                              "platform's step fails or hangs on it"))
    return findings


@run_check("P-READONLY")
def leaves_inputs_alone(result: RunResult) -> list[Finding]:
    """P-READONLY: the input and model folders are byte-for-byte the same after the run."""
    return ([Finding("P-READONLY", "(input folder)", "", change) for change in result.input_changes]
            + [Finding("P-READONLY", "(model folder)", "", change) for change in result.model_changes])


@run_check("P-EVERY")
def one_response_each(result: RunResult, requests: Iterable[str], pairing: dict[str, str]) -> list[Finding]:
    """P-EVERY: one response per request, and none that no request asked for. ``pairing`` maps each request
    to the file that answers it (see :func:`pair_responses`)."""
    requests = sorted(requests)
    answered = set(pairing.values())
    if requests and not pairing and not any(e.kind == "file" for e in result.entries):
        where = "" if result.output_exists else " (the output folder was not even created)"
        return [Finding("P-EVERY", RUN, "", f"no response for any of the {len(requests)} requests{where}; "
                                            f"output: {output_of(result)}")]
    findings = [Finding("P-EVERY", name, "", "no response written for this request") for name in requests if name not in pairing]
    findings += [Finding("P-EVERY", name, "", "a response no request asked for")
                 for name in sorted(result.json_files()) if name not in answered]
    return findings


@run_check("P-CONFIG")
def refuses_unusable_model(result: RunResult, what: str) -> list[Finding]:
    """P-CONFIG: with an unusable model (``what`` says how), a non-zero exit and no response files (the MUST
    part); a one-line reason on stderr or stdout (the SHOULD part: a traceback or silence refuses the model all
    the same, so it blocks no release)."""
    findings = []
    if result.exit_code == 0:
        findings.append(Finding("P-CONFIG", RUN, "", f"exit status 0 with an unusable model ({what})"))
    lines = [line for line in (result.stderr.strip() or result.stdout.strip()).splitlines() if line.strip()]
    if not lines:
        findings.append(Finding("P-CONFIG", RUN, "", f"no reason given on stderr or stdout ({what})", SHOULD))
    elif len(lines) > 1 and result.exit_code != 0:
        findings.append(Finding("P-CONFIG", RUN, "", f"the reason takes {len(lines)} lines, not one ({what}): "
                                                     f"{output_of(result, 2)}", SHOULD))
    for name in sorted(result.json_files()):
        findings.append(Finding("P-CONFIG", name, "", f"response written although the model is unusable ({what})"))
    return findings


@run_check("P-OUTDIR")
def creates_output_folder(present: RunResult, other: RunResult, case: str) -> list[Finding]:
    """P-OUTDIR, decided differentially: the same batch is answered when the output folder exists beforehand
    (``present``) but not when it ``case`` (``other``: absent, or absent with its parents)."""
    if present.json_files() and not other.json_files():
        return [Finding("P-OUTDIR", RUN, "", f"no responses when the output folder {case} beforehand, although "
                                             f"the same batch is answered when it exists; output: {output_of(other)}")]
    return []


@run_check("P-ISOLATE")
def isolates_unservable_requests(alone: RunResult, mixed: RunResult, good: Iterable[str],
                                 alone_pairing: Mapping[str, str] | None = None,
                                 mixed_pairing: Mapping[str, str] | None = None,
                                 control: RunResult | None = None) -> list[Finding]:
    """P-ISOLATE, decided differentially: good requests answered when run ``alone`` but left unanswered when
    batched with unservable ones (``mixed``). A request is answered where the run's pairing
    (:func:`pair_responses`: request -> the file answering it, whatever its name) has it; without one, where a
    file has its name.

    A ``mixed`` run killed at its timeout shows P-ISOLATE only against ``control``, a run of as many good
    requests without the unservable ones: when that finishes, the unservable requests made the run hang (one
    finding); when it is killed too, or not given, the hang is P-TIMELY's and nothing is found here."""
    if mixed.timed_out:
        if control is None or control.timed_out or control.start_error:
            return []
        return [Finding("P-ISOLATE", RUN, "", f"killed at its timeout ({mixed.duration:.1f} s) beside unservable "
                                              f"requests, though as many good requests without them finish in "
                                              f"{control.duration:.1f} s; output: {output_of(mixed)}")]
    answered_alone = alone_pairing if alone_pairing is not None else alone.json_files()
    answered_mixed = mixed_pairing if mixed_pairing is not None else mixed.json_files()
    lost = [name for name in sorted(good) if name in answered_alone and name not in answered_mixed]
    if not lost:
        return []
    how = f"exit status {mixed.exit_code}" if mixed.exit_code is not None else "killed"
    return [Finding("P-ISOLATE", RUN, "", f"good requests answered alone but not beside unservable ones ({how}): "
                                          f"{', '.join(lost)}; output: {output_of(mixed)}")]


@run_check("P-OFFLINE")
def works_offline(offline: RunResult, online: RunResult) -> list[Finding]:
    """P-OFFLINE, decided differentially: the batch is answered with the network and not without it (the exit
    status is P-EXIT's)."""
    if online.json_files() and not offline.json_files():
        return [Finding("P-OFFLINE", RUN, "", f"without network the batch is not served (exit status "
                                              f"{offline.exit_code}, {len(offline.json_files())} responses); "
                                              f"output: {output_of(offline)}")]
    return []


@run_check("P-ENV")
def reads_operator_variables(result: RunResult, decoys: dict[str, Path]) -> list[Finding]:
    """P-ENV: evidence that the candidate read other variables than the operator's three. ``decoys`` maps each
    name the platform's docs use (and that a cluster does not set) to a decoy path given only in this run: a
    decoy output folder written to, or the decoy request answered, is that evidence."""
    findings = []
    for name, path in sorted(decoys.items()):
        if path.name.startswith("decoy-output") and path.exists():
            findings.append(Finding("P-ENV", RUN, "", f"wrote into {name} (a variable the platform does not set) "
                                                      f"instead of ODAHU_OUTPUT_PATH"))
    if "decoy.json" in result.json_files():
        findings.append(Finding("P-ENV", RUN, "", "answered the decoy request only ODAHU_MODEL_INPUT points to "
                                                  "(a variable the platform does not set)"))
    return findings


# -------------------------------------------------------------------------------------------------- pairing


def natural_key(name: str) -> list[object]:
    """Sort key that orders numbers by value: ``response2.json`` before ``response10.json``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class Pairing(dict[str, str]):
    """Request name -> the file that answers it; ``guessed``: the requests whose file was paired by order alone,
    their content unable to tell which request it answers (the values in it are then not judged)."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), guessed: Iterable[str] = ()):
        super().__init__(pairs)
        self.guessed: set[str] = set(guessed)


def answer_key(expected: Expected) -> str | None:
    """What the content of a response to a request with answer ``expected`` shows without its values:
    ``error``, or its outputs' names, datatypes and shapes in order; None when the answer is not known."""
    if expected.is_error:
        return "error"
    if expected.outputs is None:
        return None
    return json.dumps([[t.name, t.datatype, [int(side) for side in t.shape]] for t in expected.outputs])


def response_key(document: Document) -> str | None:
    """:func:`answer_key` of what a response holds (None when it is too malformed to say)."""
    if document.kind == ERROR:
        return "error"
    outputs = document.body.get("outputs") if isinstance(document.body, dict) else None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        return None
    try:
        return json.dumps([[o.get("name"), o.get("datatype"), o.get("shape")] for o in outputs])
    except (TypeError, ValueError):
        return None


def pair_responses(result: RunResult, requests: dict[str, Document], read: Callable[[str], Document],
                   expected: Mapping[str, Expected] | None = None) -> tuple[Pairing, list[Finding]]:
    """Which output file answers which request. ``NAME.json`` answers ``NAME.json``; the files written under
    other names (renamed ``*.json`` files, and entries the platform drops: not ``*.json``, or in a subfolder)
    answer the remaining requests, paired

    1. by the echoed ``id``, where it is unique among the remaining requests and one file echoes it;
    2. by name: a dropped entry named after the request (``a.json.out``, then ``a.txt``, the longest stem first),
       then a renamed response whose name holds the request's (``response-a.json``, when only one does);
    3. by order, when as many renamed responses as remaining requests are left: requests in the order a
       predictor lists them (by name), responses in natural (number-aware) order (``response2.json`` before
       ``response10.json``), kept when the content agrees (with ``expected``: each pair's output names,
       datatypes and shapes, or error, as :func:`answer_key` says, where both are known);
    4. else by content: requests and files grouped by :func:`answer_key`, one of each in a group a sure pair;
       in a bigger group by order again, a guess unless the group has as many files as requests and the
       requests' answers are interchangeable (:func:`answer_text`); what is left, when the counts match, by
       order: a guess.

    A pairing by order that no content confirms is a guess too (``Pairing.guessed``). Each renamed response is
    one P-NAME SHOULD finding (saying when its pairing is a guess); a dropped entry has its P-NAME MUST finding
    (:func:`platform_keeps_every_file`), the root cause, not a missing response; a guessed one gets a SHOULD
    note too. Without ``expected`` no content is compared and nothing is called a guess.

    ``read(name)`` gives an output file as a response document (only called for files that might answer a
    renamed request)."""
    produced = set(result.json_files())
    pairing = Pairing((name, name) for name in requests if name in produced)
    missing = [name for name in requests if name not in produced]
    extra = [name for name in produced if name not in requests]
    dropped = [e.path for e in result.entries if e.kind == "file" and ("/" in e.path or not e.path.endswith(".json"))]
    if not missing or not (extra or dropped):
        return pairing, []

    def unpaired(files: list[str]) -> list[str]:
        taken = set(pairing.values())
        return [written for written in files if written not in taken]

    def rest() -> list[str]:
        return [name for name in missing if name not in pairing]

    ids = [requests[name].id for name in missing]
    unique = {i for i in ids if i is not None and ids.count(i) == 1}
    if unique:  # 1. by the echoed id
        by_id: dict[str, list[str]] = {}
        for written in extra + dropped:
            by_id.setdefault(read(written).id or "", []).append(written)
        for name in missing:
            match = by_id.get(requests[name].id or "", [])
            if requests[name].id in unique and len(match) == 1:
                pairing[name] = match[0]
    # 2. by name: each dropped entry answers at most one request, first one it is named after in full
    # (a.b.json.out answers a.b.json), then by stem, the longest first (a.b.txt answers a.b.json before a.json)
    for full_name in (True, False):
        for name in sorted(rest(), key=len, reverse=True):
            stem = name if full_name else name[: -len(".json")]
            for path in unpaired(dropped):
                base = path.rsplit("/", 1)[-1]
                if base == stem or base.startswith(stem + "."):
                    pairing[name] = path
                    break
    for name in sorted(rest(), key=len, reverse=True):  # then a renaming that keeps the request's name in it
        stem = name[: -len(".json")]
        holding = [written for written in unpaired(extra) if stem in written]
        if len(holding) == 1:
            pairing[name] = holding[0]

    def fits(name: str, written: str) -> bool | None:
        """Whether the content of ``written`` can answer ``name`` (None: cannot tell)."""
        want = answer_key(expected[name]) if expected is not None and name in expected else None
        got = response_key(read(written)) if want is not None else None
        return None if want is None or got is None else want == got

    left, files = rest(), unpaired(extra)
    if left and len(left) == len(files):  # 3. by order, kept when the content agrees
        ordered = in_order(left, files)
        agree = [fits(name, written) for name, written in ordered]
        if expected is None or (False not in agree):
            pairing.update(ordered)
            if expected is not None and True not in agree:
                pairing.guessed.update(left)
            left = []
    if left and expected is not None:  # 4. by content
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for name in left:
            key = answer_key(expected[name]) if name in expected else None
            if key is not None:
                groups.setdefault(key, ([], []))[0].append(name)
        for written in unpaired(extra) + unpaired(dropped):
            key = response_key(read(written))
            if key in groups:
                groups[key][1].append(written)
        for names, candidates in groups.values():
            ordered = in_order(names, candidates)
            pairing.update(ordered)
            if len(names) != len(candidates) or (len(names) > 1 and len({answer_text(expected[n]) for n in names}) > 1):
                pairing.guessed.update(name for name, _ in ordered)
        left, files = rest(), unpaired(extra)
        if left and len(left) == len(files):  # what content cannot place, by order: a guess
            pairing.update(in_order(left, files))
            pairing.guessed.update(left)
    findings = []
    guess = "which request it answers is a guess (by order; its content does not settle it), so it is not judged against this one"
    for name, written in sorted(pairing.items()):
        if written in extra:
            note = f"; {guess}" if name in pairing.guessed else ""
            findings.append(Finding("P-NAME", name, "", f"the response is written as {written}{note}", SHOULD))
        elif written != name and name in pairing.guessed:
            findings.append(Finding("P-NAME", name, "", f"answered by {written}, which the platform drops; {guess}", SHOULD))
    return pairing, findings


def in_order(names: Iterable[str], files: Iterable[str]) -> list[tuple[str, str]]:
    """Requests paired with response files by order: requests as a predictor lists them (by name), files in
    natural (number-aware) order (``response2.json`` before ``response10.json``); the longer side's rest unpaired."""
    return list(zip(sorted(names), sorted(files, key=natural_key)))


def answer_text(expected: Expected) -> str:
    """The part of an expected answer a response is judged on (its id, and its outputs or that it is an error):
    requests with the same text can swap responses without changing any verdict."""
    if expected.is_error:
        return json.dumps([expected.request_id, "error"])
    return json.dumps(expected.document())


# ---------------------------------------------------------------------------------------------- judgement


@dataclass
class Judgement:
    """What one run was found to be.

    ``findings`` (run-level and per response); ``checked``: requirement -> where a check of it ran on evidence
    (a request file's name, or ``(run)``); ``blocked``: requirement -> where -> why it could not be shown there;
    per request file the response read (``responses``), the exchange that carried it (``exchanges``: the
    answer file, or the HTTP status and headers), the file that answered it (``pairing``; online, the request's
    own name for each answered request), the expected
    answer (``expected``) and a readable diff where they differ (``diffs``)."""

    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, set[str]] = field(default_factory=dict)
    blocked: dict[str, dict[str, str]] = field(default_factory=dict)
    responses: dict[str, Document] = field(default_factory=dict)
    requests: dict[str, Document] = field(default_factory=dict)
    pairing: Pairing = field(default_factory=Pairing)
    expected: dict[str, Expected] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)
    exchanges: dict[str, Exchange] = field(default_factory=dict)

    def ran(self, requirement: str, where: str, findings: Iterable[Finding] = ()) -> None:
        """Record that a check of ``requirement`` ran on evidence at ``where`` and found ``findings``."""
        self.checked.setdefault(requirement, set()).add(where)
        self.findings += findings

    def block(self, requirements: Iterable[str], where: str, reason: str) -> None:
        """Record that ``requirements`` could not be shown at ``where``, and why."""
        for requirement in requirements:
            self.blocked.setdefault(requirement, {}).setdefault(where, reason)

    def for_file(self, name: str) -> list[Finding]:
        """The findings about the response to request ``name``."""
        return [f for f in self.findings if f.file == name]

    def run_level(self) -> list[Finding]:
        """The findings that are about the run, not one response."""
        return [f for f in self.findings if f.file not in self.expected]

    def checked_at(self, where: str | None = None) -> set[str]:
        """The requirements checked on evidence (at ``where`` only, when given)."""
        return {r for r, places in self.checked.items() if where is None or where in places}

    def blocked_at(self, where: str | None = None) -> dict[str, str]:
        """Requirement -> first reason it could not be shown (at ``where`` only, when given)."""
        reasons: dict[str, str] = {}
        for requirement, places in self.blocked.items():
            for place, reason in places.items():
                if where is None or place == where:
                    reasons.setdefault(requirement, reason)
        return reasons


#: The run-level requirements every batch run shows.
BATCH_RUN_IDS = ("P-TIMELY", "P-READONLY", "P-NAME", "P-EXIT", "P-EVERY")


def judge_batch(
    result: RunResult,
    requests: dict[str, bytes],
    model: Model | OtherModel,
    golden: dict[str, Path] | None = None,
    oracle: Oracle | None = None,
) -> Judgement:
    """Judge a run over ``requests`` (file name -> bytes, exactly as staged) for a candidate running ``model``
    (the multiplier), or, when ``oracle`` is given, a model other than the multiplier whose answers come from
    ``oracle`` (B-* instead of M-*: :func:`conformance.oracle.match.examine_any`).

    Run-level: P-TIMELY, P-READONLY and P-NAME on every run that started; P-EXIT and P-EVERY on runs that ended
    by themselves (a killed run's output is partial: the response checks are then blocked, not failed). Each
    response is read once (:func:`conformance.v2.documents.load`, one size limit) and compared with the golden
    response ``golden[NAME]`` when given, else the oracle's answer."""
    judgement = Judgement()
    names = sorted(requests)
    parsed = {name: parse(raw, REQUEST, name) for name, raw in requests.items()}
    judgement.requests = parsed
    response_ids: tuple[str, ...] = RESPONSE_IDS if oracle is None else ANY_MODEL_RESPONSE_IDS
    for name in names:
        golden_response = golden.get(name) if golden else None
        if oracle is None:
            assert isinstance(model, Model)  # without an oracle, the multiplier's
            judgement.expected[name] = _expected(parsed[name], model, golden_response)
        else:
            judgement.expected[name] = _expected_of_any(parsed[name], requests[name], oracle, golden_response)
    if oracle is not None and not any(_shows_b_match(e) for e in judgement.expected.values()):
        response_ids = tuple(r for r in response_ids if r != "B-MATCH")  # nothing to match: it cannot apply here
    if result.exchanges is not None:
        return judge_exchanges(judgement, result, response_ids, oracle)
    if result.start_error:
        reason = f"the candidate did not start: {result.start_error}"
        judgement.block((*BATCH_RUN_IDS, *response_ids), RUN, reason)
        return judgement
    for check in (finishes_in_time, leaves_inputs_alone, platform_keeps_every_file):
        judgement.ran(check.requirement, RUN, check(result))  # type: ignore[attr-defined]
    if not ended(result):
        if result.stopped:
            judgement.ran("P-EXIT", RUN, exits_zero(result))
        why = "the run was killed at its timeout" if result.timed_out else f"the run was {result.stopped}"
        judgement.block(("P-EXIT", "P-EVERY", *response_ids), RUN, f"{why}: what it wrote is partial")
        return judgement
    judgement.ran("P-EXIT", RUN, exits_zero(result))
    documents: dict[str, Document] = {}

    def read(written: str) -> Document:  # each output file is read at most once
        if written not in documents:
            documents[written] = load(result.workspace.output / written, RESPONSE, label=written)
        return documents[written]

    pairing, renamed = pair_responses(result, parsed, read, judgement.expected)
    judgement.pairing = pairing
    judgement.findings += renamed
    judgement.ran("P-EVERY", RUN, one_response_each(result, names, pairing))
    for name in names:
        written = pairing.get(name)
        if written is None:
            owed = [r for r in response_ids if r != "B-MATCH" or _shows_b_match(judgement.expected[name])]
            judgement.block(owed, name, f"{name}: no response to examine")
            continue
        judgement.exchanges[name] = Exchange(name, BATCH, written, path=result.workspace.output / written)
        guess = (f"{name}: paired with {written} by order alone (a guess): not judged against this request"
                 if name in pairing.guessed else None)
        _examine_answer(judgement, name, _relabel(read(written), name), response_ids, oracle, guess)
    return judgement


def _examine_answer(judgement: Judgement, name: str, actual: Document, response_ids: tuple[str, ...],
                    oracle: Oracle | None, guess: str | None = None, online: bool = False,
                    names: dict[str, str] | None = None) -> None:
    """Judge ``actual``, the answer to request ``name``, against its expected answer (the F-*, M-* and B-*
    checks, whatever the transport); ``guess`` says why it is judged as a response only (its request is a
    guess). ``online``: what the batch protocol calls P-EVERY (an error response owed) is H-ERROR's (G-ERROR's
    over gRPC: ``names``)."""
    judgement.responses[name] = actual
    expected = judgement.expected[name]
    request = judgement.requests[name]
    if oracle is None:
        comparison = examine(actual, expected, request)
    else:
        comparison = examine_any(actual, expected, request, oracle.signature, oracle.tolerance)
    if guess is not None:  # judged as a response, not as the answer to this request
        comparison = _as_guess(comparison, guess)
    if online:  # an answer given where a refusal was owed: online, that is a refusal's requirement
        comparison = _renamed(comparison, names or ONLINE_NAMES)
    for requirement in comparison.checked:
        judgement.ran(requirement, name)
    judgement.findings += comparison.findings
    for requirement, reason in comparison.blocked.items():
        judgement.block([requirement], name, reason)
    if comparison.findings and actual.kind != ERROR and expected.outputs is not None:
        judgement.diffs[name] = explain(actual, expected)


def judge_exchanges(judgement: Judgement, result: RunResult, response_ids: tuple[str, ...],
                    oracle: Oracle | None) -> Judgement:
    """Judge an online run (``result.exchanges``): each answer's H-* checks (its status, headers, time), then
    the answer itself as a batch's response file is judged. An unanswered request blocks its response checks.
    A server that stopped answering mid-run is one finding, not one per request left: H-ERROR's when the last
    answer before it was a refusal (sent one at a time, the refusal it did not survive), else H-HEALTH's.
    H-INFER is checked on answers that hold an inference response, H-ERROR on refusals and on answers to
    requests owed one."""
    assert result.exchanges is not None
    if result.start_error:
        judgement.block((*ONLINE_RUN_IDS, *response_ids), RUN, f"the server did not start: {result.start_error}")
        return judgement
    over_grpc = any(e.transport == GRPC for e in result.exchanges.values())
    if result.server_down:
        _judge_server_down(judgement, result, over_grpc)
    for name in sorted(judgement.expected):
        exchange = result.exchanges.get(name)
        if exchange is None:
            continue
        judgement.exchanges[name] = exchange
        if not exchange.sent or (exchange.error and result.server_down):
            judgement.block(response_ids, name, f"{name}: {exchange.error}")
            continue
        if exchange.transport == GRPC:
            _judge_grpc_exchange(judgement, exchange, response_ids, oracle)
            continue
        judgement.ran("H-TIMELY", name, answered_in_time(exchange))
        expected = judgement.expected[name]
        if exchange.status is None:
            if not exchange.timed_out:  # the connection closed without an answer; the server is still up
                owed = "H-ERROR" if expected.is_error else "H-INFER"
                judgement.ran(owed, name, [Finding(owed, name, "", f"{exchange.where}: {exchange.error}")])
            judgement.block(response_ids, name, f"{name}: no answer ({exchange.error})")
            continue
        judgement.pairing[name] = name
        actual = answer_document(exchange)
        if actual.kind != ERROR:
            judgement.ran("H-INFER", name, served_with_200(exchange, actual))
        if actual.kind == ERROR or exchange.status >= 400 or expected.is_error:
            judgement.ran("H-ERROR", name, refused_with_4xx(exchange, actual, expected))
        _examine_answer(judgement, name, actual, response_ids, oracle, online=True)
    for name in sorted(result.twins or {}):  # the gRPC twins, once every REST answer is read
        if name in judgement.expected:
            _judge_grpc_twin(judgement, result.twins[name])  # type: ignore[index]
    return judgement


def _judge_server_down(judgement: Judgement, result: RunResult, over_grpc: bool = False) -> None:
    """The one finding of a server that stopped answering during ``result`` (see :func:`judge_exchanges`)."""
    assert result.exchanges is not None and result.server_down is not None
    order = sorted(result.exchanges)
    first = next((i for i, name in enumerate(order)
                  if result.exchanges[name].status is None and result.exchanges[name].code is None), None)
    before = result.exchanges[order[first - 1]] if first else None
    refusal, health = ("G-ERROR", "G-HEALTH") if over_grpc else ("H-ERROR", "H-HEALTH")
    refused = before is not None and ((before.status is not None and before.status >= 400)
                                      or before.code not in (None, "OK"))
    if not result.concurrent and before is not None and refused:
        judgement.ran(refusal, before.name, [Finding(
            refusal, before.name, "", f"the server stopped answering after it refused this request (status "
                                      f"{before.status or before.code}): {result.server_down}")])
    else:
        judgement.ran(health, RUN, [Finding(health, RUN, "", result.server_down)])


def _judge_grpc_twin(judgement: Judgement, twin: Exchange) -> None:
    """The gRPC exchange of a request the REST transport carried (``--url`` and ``--grpc``): its G-* checks
    alone (deadline, status code, a readable response, a refusal where one is owed); what it holds is compared
    with the REST answer (G-AGREE: one answer, two transports), not judged again by the F-*, M-* and B-* checks.
    A difference its own G-* finding explains is not counted again."""
    name = twin.name
    expected = judgement.expected[name]
    if not twin.sent:
        return
    judgement.ran("G-TIMELY", name, grpc_checks.answered_in_time(twin))
    if twin.code is None:
        if not twin.timed_out:
            owed = "G-ERROR" if expected.is_error else "G-INFER"
            judgement.ran(owed, name, [Finding(owed, name, "", f"{twin.where}: {twin.error}")])
        return
    if twin.code == "OK":
        judgement.ran("G-INFER", name, grpc_checks.readable(twin))
    found: list[Finding] = []
    if expected.is_error or (twin.code != "OK" and not expected.is_known):  # (a good request refused: G-AGREE's)
        found = grpc_checks.refused_well(twin, expected)
        if twin.code == "OK":
            found = [Finding("G-ERROR", name, "", f"{twin.where}: OK with a response for a request the model cannot "
                                                  f"serve ({expected.requirement}: {expected.error})")]
        judgement.ran("G-ERROR", name, found)
    rest = judgement.responses.get(name)
    if rest is None or any(f.level == "MUST" for f in found) or twin.malformed is not None:
        return  # (a MUST finding of the gRPC answer's own explains a difference)
    why = grpc_checks.unreadable(rest)
    if why is not None:
        judgement.block(["G-AGREE"], name, f"{name}: the REST answer cannot be compared ({why})")
        return
    request = judgement.requests.get(name)
    judgement.ran("G-AGREE", name, grpc_checks.agree(name, rest, grpc_checks.as_decoded(twin),
                                                     request.id if request is not None else None))


def _judge_grpc_exchange(judgement: Judgement, exchange: Exchange, response_ids: tuple[str, ...],
                         oracle: Oracle | None) -> None:
    """One ModelInfer exchange: its G-* checks (deadline, status code, a readable response), then its answer as
    any other (F-*, M-*, B-*). No answer, or an answer whose tensors cannot be read, blocks the answer checks."""
    name = exchange.name
    expected = judgement.expected[name]
    judgement.ran("G-TIMELY", name, grpc_checks.answered_in_time(exchange))
    if exchange.code is None:
        if not exchange.timed_out:  # the call failed without an answer; the server is still up
            owed = "G-ERROR" if expected.is_error else "G-INFER"
            judgement.ran(owed, name, [Finding(owed, name, "", f"{exchange.where}: {exchange.error}")])
        judgement.block(response_ids, name, f"{name}: no answer ({exchange.error})")
        return
    judgement.pairing[name] = name
    if exchange.code == "OK":
        judgement.ran("G-INFER", name, grpc_checks.readable(exchange))
        if exchange.malformed is not None:
            judgement.block(response_ids, name, f"{name}: the response cannot be read ({exchange.malformed})")
            return
    actual = grpc_checks.answer_document(exchange)
    if exchange.code != "OK" or expected.is_error:
        judgement.ran("G-ERROR", name, grpc_checks.refused_well(exchange, expected))
    _examine_answer(judgement, name, actual, response_ids, oracle, online=True, names=GRPC_NAMES)


#: Online, the requirement that stands for a batch one in the answer checks (over REST, over gRPC).
ONLINE_NAMES = {"P-EVERY": "H-ERROR"}
GRPC_NAMES = {"P-EVERY": "G-ERROR"}


def _renamed(comparison: Comparison, names: dict[str, str]) -> Comparison:
    """``comparison`` with the requirements of ``names`` renamed (checks, findings and blocks alike)."""
    renamed = Comparison()
    renamed.checked = {names.get(r, r) for r in comparison.checked}
    renamed.findings = [Finding(names.get(f.requirement, f.requirement), f.file, f.pointer, f.message, f.level)
                        for f in comparison.findings]
    renamed.blocked = {names.get(r, r): why for r, why in comparison.blocked.items()}
    return renamed


#: What a response shows whichever request it answers: its format, and the model's name and version.
REQUEST_FREE_IDS = ("F-JSON", "F-SCHEMA", "F-COUNT", "F-TYPED", "F-MODEL")


def _as_guess(comparison: Comparison, reason: str) -> Comparison:
    """``comparison`` of a response whose request is a guess: its format findings stand; every requirement that
    depends on which request it answers (the id, the values, an error owed) is blocked with ``reason``."""
    kept = Comparison(blocked=dict(comparison.blocked))
    kept.checked = {r for r in comparison.checked if r in REQUEST_FREE_IDS}
    kept.findings = [f for f in comparison.findings if f.requirement in REQUEST_FREE_IDS]
    dependent = {r for r in comparison.checked if r not in REQUEST_FREE_IDS}
    dependent |= {f.requirement for f in comparison.findings if f.requirement not in REQUEST_FREE_IDS}
    kept.block(sorted(dependent), reason)
    return kept


def _shows_b_match(expected: Expected) -> bool:
    """Whether a response to the request could show B-MATCH: an expected answer is known (recorded or a
    reference function's) that is not an error owed for P-EVERY."""
    return expected.outputs is not None or (expected.is_error and expected.requirement == "B-MATCH")


def _relabel(document: Document, name: str) -> Document:
    """The document with its findings filed under the request's name (a renamed response answers ``name``)."""
    if document.file == name:
        return document
    findings = [Finding(f.requirement, name, f.pointer, f.message, f.level) for f in document.findings]
    return Document(name, document.kind, document.body, document.tensors, findings)


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
        error = golden.body.get("error") if isinstance(golden.body, dict) else None
        return Expected(request.id, model, error=str(error), requirement="P-EVERY")
    return Expected(request.id, model, outputs=golden.tensors)


def _expected_of_any(request: Document, raw: bytes, oracle: Oracle, golden_response: Path | None) -> Expected:
    """For a model other than the multiplier: the error response owed to a request the model cannot serve
    (P-EVERY, even when a golden pair records values for it), else the golden response's answer when there is
    one (a recorded golden pair), else the oracle's (a reference function's, or unknown)."""
    if golden_response is None:
        return oracle.expect(request, raw)
    owed = oracle.owed_error(request)
    if owed is not None:
        return owed
    golden = load(golden_response, RESPONSE, label=str(golden_response))
    if golden.findings:
        raise OracleProblem(f"{golden_response}: not a valid golden response: {golden.findings[0].line()} (K-GOLDEN)")
    return expected_of(golden, request, oracle.model)


def blocking(findings: list[Finding], strict: bool) -> list[Finding]:
    """The findings that fail a run: every MUST finding, and SHOULD findings too when ``strict``."""
    return [f for f in findings if strict or f.level != SHOULD]
