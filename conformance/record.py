"""``fixtures record``: golden pairs recorded from an approved predictor, for a model whose expected answers only
that predictor knows (the ``recorded`` oracle).

The predictor runs over the requests twice, as the suite runs a candidate (a staged workspace, the platform's
input filter, the timeout). Nothing is written unless both runs pass every MUST requirement a run and its
responses can show (P-*, F-*, B-SIGNATURE when the model declares a signature) and give the same answers
(B-DETERMINISTIC): a bad approved version is refused, not recorded. Then ``OUT/input/NAME.json`` is the request
and ``OUT/output/NAME.json`` the response the predictor wrote for it, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance import _fs
from conformance.contract.findings import Finding
from conformance.contract.problems import ConformanceProblem
from conformance.judge import Judgement, blocking, judge_batch
from conformance.oracle.match import response_difference
from conformance.run.candidate import Candidate
from conformance.run.workspace import RunResult


class RecordProblem(ConformanceProblem):
    """Nothing was recorded; ``str()`` is one line (the findings are in :attr:`findings`)."""

    def __init__(self, message: str, findings: list[Finding] | None = None):
        super().__init__(message)
        self.findings = findings or []


@dataclass
class Recorded:
    """What was written: the pairs and the folder."""

    pairs: int
    out: Path


def read_request_folder(folder: Path) -> list[tuple[str, bytes]]:
    """The ``*.json`` files directly in ``folder``, sorted by name; RecordProblem when there are none."""
    if not folder.is_dir():
        raise RecordProblem(f"--requests {folder}: not a folder")
    found = sorted(p for p in folder.glob("*.json") if p.is_file())
    if not found:
        raise RecordProblem(f"--requests {folder}: no *.json request files")
    return [(p.name, p.read_bytes()) for p in found]


def record(candidate: Candidate, requests: list[tuple[str, bytes]], out: Path, force: bool = False) -> Recorded:
    """Run ``candidate`` twice over ``requests``, check both runs (see the module's docstring) and write the pairs
    to ``out``; raise :class:`RecordProblem` (with the findings) when the predictor is not fit to record from,
    or when a file to write exists and ``force`` is not given."""
    names = [name for name, _ in requests]
    # a request already in OUT/input with the same bytes is no clash (recording a folder's own requests)
    clashes = [out / "input" / name for name, raw in requests
               if (out / "input" / name).exists() and (out / "input" / name).read_bytes() != raw]
    clashes += [out / "output" / name for name in names if (out / "output" / name).exists()]
    if clashes and not force:
        more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
        raise RecordProblem(f"{clashes[0]} exists{more}; nothing recorded (use --force to overwrite)")
    assert candidate.oracle is not None, "recording is for the recorded / signature oracles"
    runs: list[tuple[RunResult, Judgement]] = []
    try:
        for _ in range(2):
            result = candidate.run(requests)
            skipped = list(result.workspace.skipped)
            if skipped:
                candidate.discard(result)  # (not in runs yet: the finally below would leave it)
                raise RecordProblem(f"the platform's input filter skips {skipped[0]}: a golden request must reach the predictor")
            runs.append((result, judge_batch(result, dict(requests), candidate.model, None, oracle=candidate.oracle)))
        findings = blocking([f for _, judgement in runs for f in judgement.findings], strict=False)
        if findings:
            raise RecordProblem(f"the predictor is not fit to record from: {len(findings)} MUST findings; nothing recorded",
                                list(dict.fromkeys(findings)))  # each once: the two runs often find the same
        (_, one), (_, two) = runs
        guessed = sorted(one.pairing.guessed | two.pairing.guessed)
        if guessed:  # a golden pair must be the predictor's answer to that request, not a guess at which it is
            raise RecordProblem(f"which response answers {guessed[0]} is a guess (the responses are not named after "
                                f"their requests, and neither their id nor their content tells); nothing recorded")
        differing = [Finding("B-DETERMINISTIC", name, "/outputs", f"{why} (two runs)") for name in names
                     if (why := response_difference(one.responses[name], two.responses[name])) is not None]
        if differing:
            raise RecordProblem("the predictor answers the same request differently in two runs; nothing recorded",
                                differing)
        for side in ("input", "output"):
            (out / side).mkdir(parents=True, exist_ok=True)
        for name, raw in requests:
            _fs.write_atomically(out / "input" / name, raw, _fs.FILE_MODE)
            # as the predictor wrote it (a batch's file) or the server sent it (an online answer's body)
            _fs.write_atomically(out / "output" / name, one.exchanges[name].answer_bytes(), _fs.FILE_MODE)
        return Recorded(len(requests), out)
    finally:
        for result, _ in runs:
            candidate.discard(result)

