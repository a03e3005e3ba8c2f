"""What the suite's tests share: reading golden pairs, running a batch and judging it, keeping the evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.generate.goldens import model_for
from conformance.judge import Judgement, judge_batch
from conformance.odahu.model import Model, ModelProblem
from conformance.run.candidate import Candidate
from conformance.run.workspace import RunResult

#: Requirements every golden comparison checks (the response's format and the multiplier behaviour).
FORMAT_IDS = ("F-JSON", "F-SCHEMA", "F-COUNT", "F-TYPED")
BEHAVIOUR_IDS = ("F-ID", "F-MODEL", "P-EVERY", "M-EVERY", "M-SELECT", "M-SHAPE", "M-DTYPE", "M-VALUE", "M-LAYOUT",
                 "M-EMPTY", "M-FINITE", "M-UNSUPPORTED")
#: Requirements every run checks (exit, timeout, names in the output folder, read-only input and model).
RUN_IDS = ("P-ENV", "P-OUTDIR", "P-EXIT", "P-TIMELY", "P-NAME", "P-READONLY", "P-ISOLATE")


def golden_names(fixtures: Path) -> list[str]:
    """The golden request names (``*.json`` in ``fixtures/input``), sorted; empty when the folder is missing."""
    folder = fixtures / "input"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def read_requests(folder: Path, names: list[str] | None = None) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the ``*.json`` files in ``folder`` (or just ``names``), sorted by name."""
    names = names if names is not None else sorted(p.name for p in folder.glob("*.json"))
    return [(name, (folder / name).read_bytes()) for name in names]


def staged(result: RunResult, requests: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """The requests the platform's input filter let through to the candidate."""
    skipped = {line.split(": ", 1)[0] for line in result.workspace.skipped}
    return {name: raw for name, raw in requests if name not in skipped}


class Batch:
    """One run of the candidate over a batch, judged; ``evidence()`` says where to look when it failed."""

    def __init__(self, candidate: Candidate, result: RunResult, judgement: Judgement, model: Model):
        self.candidate, self.result, self.judgement, self.model = candidate, result, judgement, model
        self.kept: Path | None = None
        if judgement.findings:
            self.kept = candidate.keep(result)
        else:
            candidate.discard(result)

    def evidence(self, name: str | None = None) -> str:
        """Diff for ``name`` (when there is one), the kept workspace and the command to reproduce the run."""
        lines = []
        if name and name in self.judgement.diffs:
            lines.append(self.judgement.diffs[name])
        if self.kept is not None:
            lines.append(f"workspace kept: {self.kept}")
            lines.append(f"reproduce: {self.candidate.reproduce(self.result)}")
        return "\n".join(lines)


def run_batch(
    candidate: Candidate,
    requests: list[tuple[str, bytes]],
    multiplier: int | None = None,
    golden: dict[str, Path] | None = None,
    **run_options,
) -> Batch:
    """Run the candidate once over ``requests`` and judge every response (against ``golden`` responses where
    given, else the oracle) for the model with ``multiplier`` (None: the candidate's own)."""
    result = candidate.run(requests, multiplier=multiplier, **run_options)
    model = candidate.model_with(multiplier)
    judgement = judge_batch(result, staged(result, requests), model, golden)
    return Batch(candidate, result, judgement, model)


def golden_batch(suite) -> Batch:
    """The one run of the candidate over every golden request, shared by the golden and schema tests."""
    if "golden" not in suite.cache:
        candidate = suite.require_candidate()
        fixtures = suite.fixtures
        names = golden_names(fixtures)
        try:
            fixture_model = model_for(fixtures)
        except ModelProblem as problem:
            raise RuntimeError(f"--fixtures {fixtures}: {problem}") from None
        multiplier = None
        if fixture_model.multiplier != candidate.model.multiplier:
            if candidate.model_is_embedded:
                pytest.skip(f"the fixtures need multiplier {fixture_model.multiplier}; the model inside the image "
                            f"cannot be changed")
            multiplier = fixture_model.multiplier
        golden = {name: fixtures / "output" / name for name in names if (fixtures / "output" / name).is_file()}
        suite.cache["golden"] = run_batch(candidate, read_requests(fixtures / "input", names), multiplier, golden)
    return suite.cache["golden"]
