"""Both predictors agree with the kit's oracle: on every golden pair, and on thousands of generated requests
served in batches (one predictor run per hypothesis example), under several multipliers.

Every test runs on both predictors: predictor/fast.py (the streaming one the images run) and
predictor/reference.py (the short one to copy). Neither imports anything of the kit; the kit judges their output
with the same comparator the conformance suite uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.generate import strategies
from conformance.odahu.model import Model, load_model
from conformance.oracle.compare import compare, explain
from conformance.oracle.expect import expect
from conformance.paths import kit_fixtures, kit_model
from conformance.v2.documents import REQUEST, RESPONSE, load
from conformance.v2.strictjson import dumps

PREDICTORS = {name: Path(__file__).resolve().parents[1] / "predictor" / f"{name}.py" for name in ("fast", "reference")}
PROJECT_YAML = 'model:\n  name: multiplier\n  version: "1"\n'


def run_predictor(predictor: str, model: Path, inputs: Path, outputs: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAHU_")}
    env.update(ODAHU_MODEL_PATH=str(model), ODAHU_INPUT_PATH=str(inputs), ODAHU_OUTPUT_PATH=str(outputs))
    argv = [sys.executable, str(PREDICTORS[predictor])]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


def disagreements(inputs: Path, outputs: Path, model: Model) -> list[str]:
    """One line per request whose response differs from the oracle's answer (with a readable diff)."""
    problems = []
    for request_path in sorted(inputs.glob("*.json")):
        response_path = outputs / request_path.name
        if not response_path.is_file():
            problems.append(f"{request_path.name}: no response")
            continue
        request = load(request_path, REQUEST)
        expected = expect(request, model, request_path.name)
        actual = load(response_path, RESPONSE)
        findings = compare(actual, expected, request)
        if findings:
            problems.append("\n".join(f.line() for f in findings) + "\n" + explain(actual, expected))
    return problems


@pytest.mark.parametrize("predictor", sorted(PREDICTORS))
def test_goldens(tmp_path, predictor):
    """Every golden request through the predictor gives the golden response (judged by the comparator)."""
    model = load_model(kit_model())
    run = run_predictor(predictor, kit_model(), kit_fixtures() / "input", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    problems = disagreements(kit_fixtures() / "input", tmp_path / "out", model)
    assert not problems, "\n".join(problems)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in (kit_fixtures() / "input").glob("*.json")
    )


GENERATED = {name: 0 for name in PREDICTORS}


@pytest.mark.parametrize("predictor", sorted(PREDICTORS))
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    batch=strategies.batches(min_size=40, max_size=60, allow_unknown_output=True),
    multiplier=st.one_of(st.sampled_from([2, 0, -1, -7, 3, 2**31 + 5, 2**63 - 1, -(2**64) - 3]), strategies.multipliers()),
)
def test_generated_batches_agree_with_the_oracle(tmp_path_factory, predictor, batch, multiplier):
    """Thousands of generated requests (all datatypes, layouts, selections, ids), one predictor run per batch."""
    root = tmp_path_factory.mktemp("batch")
    model_dir, inputs = root / "model", root / "input"
    model_dir.mkdir()
    inputs.mkdir()
    (model_dir / "multiplier.txt").write_text(f"{multiplier}\n")
    (model_dir / "odahuflow.project.yaml").write_text(PROJECT_YAML)
    for i, request in enumerate(batch):
        (inputs / f"r{i:03}.json").write_bytes(dumps(request))
    run = run_predictor(predictor, model_dir, inputs, root / "output")
    assert run.returncode == 0, run.stderr
    problems = disagreements(inputs, root / "output", Model(multiplier, "multiplier", "1"))
    assert not problems, f"{predictor}, multiplier {multiplier}:\n" + "\n".join(problems)
    GENERATED[predictor] += len(batch)


@pytest.mark.parametrize("predictor", sorted(PREDICTORS))
def test_thousands_were_generated(predictor):
    """The property test above really served thousands of requests (it runs first: file order)."""
    if GENERATED[predictor] == 0:
        pytest.skip("run together with test_generated_batches_agree_with_the_oracle")
    assert GENERATED[predictor] >= 1000
