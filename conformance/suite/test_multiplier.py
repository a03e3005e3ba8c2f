"""M-MULTIPLIER: the multiplier is read from the model at run time. The golden requests run again with staged
copies of the model holding a negative multiplier and 0, judged by the oracle. A response that is exactly what
the model's own multiplier gives, where another one was staged, is M-MULTIPLIER; any other difference keeps its
own ID (M-VALUE, M-FINITE...)."""

from __future__ import annotations

import pytest

from conformance.suite.shared import (
    golden_batch,
    golden_names,
    multiplier_dependent,
    multiplier_only,
    read_requests,
    run_batch,
)

MULTIPLIERS = (-3, 0)
@pytest.mark.golden
@pytest.mark.requirement("M-MULTIPLIER")
@pytest.mark.parametrize("multiplier", MULTIPLIERS, ids=[f"M-MULTIPLIER={m}" for m in MULTIPLIERS])
def test_multiplier_is_read_at_run_time(conformance, verdict, multiplier):
    candidate = conformance.require_candidate()
    multiplier_only(verdict, candidate, ["M-MULTIPLIER"])
    if candidate.model_is_fixed:
        verdict.not_applicable(["M-MULTIPLIER"], f"{candidate.model_is_fixed}: the suite cannot stage another multiplier")
    own = golden_batch(conformance)
    fixtures = conformance.fixtures
    batch = run_batch(candidate, read_requests(fixtures / "input", golden_names(fixtures)), multiplier)
    judgement = batch.judgement
    compared = {name for name in judgement.checked.get("M-VALUE", set()) | judgement.checked.get("M-FINITE", set())
                if name in own.judgement.responses}
    if compared:
        verdict.ran("M-MULTIPLIER")
    else:
        verdict.not_checked("M-MULTIPLIER", f"no response could be compared under multiplier {multiplier} and the "
                                            f"model's own")
    # the run's findings, with those the multiplier explains as M-MULTIPLIER (multiplier_dependent)
    verdict.ran(*judgement.checked_at())
    for requirement, reason in judgement.blocked_at().items():
        verdict.not_checked(requirement, reason)
    verdict.check(multiplier_dependent(batch, candidate.multiplier_model, conformance), batch.evidence())
