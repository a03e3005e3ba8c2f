"""The inputs where predictor bugs live, each class sent in the default profile and judged by the oracle:

- size and rank: tensors of rank 4 to 6 (nested and flat) and tensors above 65,536 elements whose lengths sit
  around chunk boundaries (powers of two and multiples of 4,096, plus and minus one) in every datatype family,
  beside selections and nesting that disagrees with the shape; one large request (about a million elements)
  under the ordinary timeout;
- batches: several hundred small requests in one run, with file names predictors get wrong;
- models as people write them: ``multiplier.txt`` with surrounding spaces, blank lines, CRLF, no final newline,
  a ``+`` sign, -1, 1 and values beyond 2**32, 2**63 and 2**64; other names (a long one, one differing only in
  case) and versions (YAML numbers); fixed ones and ones hypothesis draws; each run carries the float edges of
  its multiplier (full bit patterns, +-0.0, subnormals, products just below and above the type's maximum,
  inputs whose float64 product rounds twice) and the integer extremes.

A model the kit accepts but the candidate refuses (no response, an exit status) is P-CONFIG: the run's missing
responses are its consequence, not counted again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conformance.contract.findings import Finding
from conformance.generate import fromsignature, strategies
from conformance.judge import RUN, ended, output_of
from conformance.odahu.model import Model, OtherModel, load_model, renamed_project
from conformance.suite.shared import (
    ANY_BEHAVIOUR_IDS,
    BEHAVIOUR_IDS,
    FORMAT_IDS,
    GOOD,
    RUN_IDS,
    Batch,
    answers,
    good_batch,
    good_requests,
    multiplier_dependent,
    multiplier_only,
    run_batch,
    set_aside,
)
from conformance.v2.strictjson import dumps, loads

if TYPE_CHECKING:
    from conformance.plugin import Suite, Verdict

#: The seed of the fixed tests' values (the drawn models get theirs from hypothesis).
SEED = 20240613


def _files(requests: list[tuple[str, dict]]) -> list[tuple[str, bytes]]:
    return [(name if name.endswith(".json") else name + ".json", dumps(body)) for name, body in requests]


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS)
def test_rank_size_selection_and_nesting(conformance, verdict):
    """One run: tensors of rank 4 to 6 over every numeric datatype (nested and flat, one zero-size), tensors of
    65,535 to 131,073 elements around chunk boundaries in every family (one also nested at rank 4), selections
    (reordered, with parameters, leaving out a tensor that overflows, the same tensor twice: an error is due),
    data nested other than its shape says (an error is due), and the float edges of the model's own multiplier."""
    candidate = conformance.require_candidate()
    multiplier_only(verdict, candidate, (*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS))
    rng = np.random.default_rng(SEED)
    m = candidate.multiplier_model.multiplier
    classes = {"rank 4-6": strategies.high_rank_requests(rng, m),
               "big tensors": strategies.big_requests(conformance.profile.big, rng, m),
               "selections": strategies.selection_requests(m), "misnested": strategies.misnested_requests(),
               "float and integer edges": strategies.edge_requests(m, rng)}
    for kind, made in classes.items():
        conformance.count(kind, len(made))
    batch = run_batch(candidate, _files([r for made in classes.values() for r in made]))
    verdict.judge(batch.judgement, batch.evidence())


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *BEHAVIOUR_IDS, *ANY_BEHAVIOUR_IDS, *RUN_IDS)
def test_one_large_request(conformance, verdict):
    """About a million INT32 elements in one request (nested rows of 1,000), within the ordinary run timeout:
    a predictor whose time grows with the square of a tensor's size fails P-TIMELY here. The three small GOOD
    requests go beside it, so that a timeout here is told from a hung candidate (``run_batch`` then runs them
    alone before it gives up on the candidate)."""
    candidate = conformance.require_candidate()
    ids = set_aside(verdict, candidate, (*FORMAT_IDS, *BEHAVIOUR_IDS, *ANY_BEHAVIOUR_IDS[2:], *RUN_IDS))
    rng = np.random.default_rng(SEED)
    count = conformance.profile.large
    if candidate.oracle is None:
        values = strategies.random_values("INT32", count, rng)
        body = {"id": "large", "inputs": [strategies.tensor("x", "INT32", [count // 1000, 1000], values, nested=True)]}
        large = ("large.json", dumps(body))
    else:  # the model's own inputs, with the variable dimension (the batch) as large as it takes
        if candidate.oracle.signature is None:
            verdict.not_applicable(ids, "the model declares no signature: no large request can be made for it")
        made = fromsignature.large_request(candidate.oracle.signature, count)
        if made is None:
            verdict.not_applicable(ids, "the model's signature has no variable dimension: its requests have a fixed size")
            return
        large = ("large.json", made)
    conformance.count("large request", 1)
    batch = run_batch(candidate, [large, *good_requests(conformance)])
    verdict.judge(batch.judgement, batch.evidence(), ids=ids)


@pytest.mark.protocol
@pytest.mark.requirement(*RUN_IDS, "F-ID", "M-VALUE", "B-MATCH")
def test_many_files_with_odd_names(conformance, verdict):
    """Several hundred small requests in one run (a predictor that caps or paginates its batch loses some),
    named with shared stems and prefixes, several dots, a leading dot, temporary-looking names, spaces,
    non-ASCII (the same letter composed and decomposed), names differing only in case: one NAME.json each,
    with its own values (for a model other than the multiplier: its good requests in turn, each with its own
    id)."""
    candidate = conformance.require_candidate()
    requests = strategies.many_small_requests(conformance.profile.files)
    if candidate.oracle is not None:
        good = [cast(dict, loads(raw)) for _, raw in good_requests(conformance)]
        requests = [(name, {**good[i % len(good)], "id": f"odd-{i}"}) for i, (name, _) in enumerate(requests)]
    ids = set_aside(verdict, candidate, (*RUN_IDS, "F-ID", "M-VALUE", "B-MATCH"))
    conformance.count("big batch, odd names", len(requests))
    batch = run_batch(candidate, _files(requests))
    verdict.judge(batch.judgement, batch.evidence(), ids=ids)


def _model(text: str, name: str, version: str) -> tuple[dict[str, str], Model]:
    """The files of a model and the kit's reading of them (the oracle judges with that)."""
    files = {"multiplier.txt": text, "odahuflow.project.yaml": strategies.project_yaml(name, version)}
    with tempfile.TemporaryDirectory() as folder:
        for file_name, content in files.items():
            Path(folder, file_name).write_bytes(content.encode("utf-8"))
        return files, load_model(folder)


def serves_usable_model(baseline: Batch, tried: Batch, what: str) -> list[Finding]:
    """P-CONFIG, decided differentially: a model the kit reads (``what``) refused, although the candidate
    answers a batch with its own model."""
    result = tried.result
    if answers(tried) or not ended(result) or not answers(baseline):
        return []
    return [Finding("P-CONFIG", RUN, "", f"no response with a usable model ({what}; exit status "
                                         f"{result.exit_code}); output: {output_of(result)}")]


def _model_run(conformance: Suite, verdict: Verdict, text: str, name: str, version: str, seed: int) -> list[Finding]:
    """Run the edge requests with a staged model; record what was checked; return the findings."""
    candidate = conformance.require_candidate()
    multiplier_only(verdict, candidate, (*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS, "M-MULTIPLIER", "P-CONFIG"))
    if candidate.model_is_fixed:
        pytest.skip(f"{candidate.model_is_fixed}: the suite cannot stage another one")
    files, model = _model(text, name, version)
    requests = _files(strategies.edge_requests(model.multiplier, np.random.default_rng(seed)))
    conformance.count("staged models", len(requests))
    batch = run_batch(candidate, requests, model=model, model_files=files)
    judgement = batch.judgement
    findings = list(judgement.findings)
    own = candidate.multiplier_model
    if model.multiplier != own.multiplier:
        findings = multiplier_dependent(batch, own, conformance)
        if judgement.checked_at() & {"M-VALUE", "M-FINITE"}:
            verdict.ran("M-MULTIPLIER")
    baseline = good_batch(conformance)
    refused: list[Finding] = []
    if not answers(batch) and answers(baseline):
        # The same three good requests with this model: refused there too, the model is what the candidate
        # refuses (an edge request that stops the batch is P-ISOLATE's, not this)
        probe = run_batch(candidate, GOOD, model=model, model_files=files)  # (the multiplier's: see _model_run)
        refused = serves_usable_model(baseline, probe, f"multiplier.txt {text!r}, name {name!r}, version {version}")
    if answers(baseline):
        verdict.ran("P-CONFIG")
    if refused:
        findings = refused + [f for f in findings if f.requirement not in ("P-EVERY", "P-EXIT")]
    verdict.ran(*judgement.checked_at())
    for requirement, reason in judgement.blocked_at().items():
        verdict.not_checked(requirement, reason)
    return findings


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS, "M-MULTIPLIER", "P-CONFIG")
@pytest.mark.parametrize("case", strategies.MODELS, ids=[case[0] for case in strategies.MODELS])
def test_models_as_people_write_them(conformance, verdict, case):
    """A staged model with another name and version, its multiplier.txt written as people write it; the run
    carries the integer extremes and the float edges of its multiplier. A hard-coded model name fails F-MODEL,
    a mis-read multiplier M-VALUE / M-FINITE (M-MULTIPLIER when the answers are the kit model's), a refused
    model P-CONFIG."""
    _, text, name, version = case
    findings = _model_run(conformance, verdict, text, name, version, SEED)
    verdict.check(findings)


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS, "M-MULTIPLIER", "P-CONFIG")
def test_drawn_models(conformance, verdict):
    """Models hypothesis draws afresh per seed (any multiplier, written with optional sign, spaces, blank lines,
    CRLF or no final newline; any name; a version that may be a YAML number): as above."""
    multiplier_only(verdict, conformance.require_candidate(),
                    (*FORMAT_IDS, *BEHAVIOUR_IDS, *RUN_IDS, "M-MULTIPLIER", "P-CONFIG"))
    fixed = conformance.require_candidate().model_is_fixed
    if fixed:
        pytest.skip(f"{fixed}: the suite cannot stage another one")
    failures: list[list[Finding]] = []

    @settings(max_examples=conformance.profile.drawn_models, deadline=None, database=None, derandomize=False,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(files=strategies.model_files(), seed=st.integers(0, 2**32 - 1))
    def one_run(files, seed):
        text, name, version = files
        findings = _model_run(conformance, verdict, text, name, version, seed)
        if findings:
            failures.append(findings)
            raise AssertionError("found")

    try:
        one_run()
    except AssertionError:
        pass
    verdict.check(failures[0] if failures else [])


#: The name and version a model other than the multiplier is staged under: the first pair that differs from the
#: model's own in both (a model can share the name of one pair and the version of another, not more).
OTHER_NAMES = (("another-model", "2.0.1"), ("yet-another-model", "3"), ("a-third-model", "4.0"))


@pytest.mark.property
@pytest.mark.requirement(*FORMAT_IDS, *ANY_BEHAVIOUR_IDS, *RUN_IDS, "P-CONFIG")
def test_another_models_name_and_version(conformance, verdict):
    """For a model other than the multiplier: a copy of its folder staged with another name and version in its
    project file (every other file unchanged), its good requests answered as that model's: a hard-coded model
    name fails F-MODEL (a hard-coded version, its SHOULD part), a model refused for its name P-CONFIG."""
    candidate = conformance.require_candidate()
    ids: tuple[str, ...] = (*FORMAT_IDS, *ANY_BEHAVIOUR_IDS, *RUN_IDS, "P-CONFIG")
    if candidate.oracle is None:
        verdict.not_applicable(ids, "the multiplier model: test_models_as_people_write_them stages it under other names")
    own = cast(OtherModel, candidate.model)
    if candidate.model_is_fixed or own.folder is None:
        verdict.not_applicable(ids, f"{candidate.model_is_fixed or 'the model is inside the image'}: the suite cannot "
                                    "stage another one")
    assert own.folder is not None and candidate.oracle is not None
    name, version = next((n, v) for n, v in OTHER_NAMES if n != own.name and v != own.version)
    staged = OtherModel(name, version, folder=own.folder)  # the reference function reads the same model files
    project = dict([renamed_project(own.folder, name, version)])
    ids = set_aside(verdict, candidate, ids, expected_answers=candidate.oracle.kind == "python")
    conformance.count("staged models", len(good_requests(conformance)))
    batch = run_batch(candidate, good_requests(conformance), model=staged, model_changes=project)
    baseline = good_batch(conformance)
    refused = serves_usable_model(baseline, batch, f"{next(iter(project))} naming it {name!r}, version {version!r}")
    if answers(baseline):
        verdict.ran("P-CONFIG")
    verdict.judge(batch.judgement, batch.evidence(), ids=ids, extra=refused, explained=("P-EVERY", "P-EXIT"))
