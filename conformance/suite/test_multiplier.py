"""M-MULTIPLIER: the multiplier is read from the model at run time. The golden requests run again with staged
copies of the model holding a negative multiplier and 0, judged by the oracle; a candidate that hard-codes the
kit's multiplier gives the wrong values here."""

from __future__ import annotations

import pytest

from conformance.contract.findings import Finding
from conformance.suite.shared import golden_names, read_requests, run_batch

MULTIPLIERS = (-3, 0)


@pytest.mark.golden
@pytest.mark.requirement("M-MULTIPLIER")
@pytest.mark.parametrize("multiplier", MULTIPLIERS, ids=[f"M-MULTIPLIER={m}" for m in MULTIPLIERS])
def test_multiplier_is_read_at_run_time(conformance, verdict, multiplier):
    candidate = conformance.require_candidate()
    if candidate.model_is_embedded:
        pytest.skip("the model is inside the image: the suite cannot stage another multiplier")
    fixtures = conformance.fixtures
    batch = run_batch(candidate, read_requests(fixtures / "input", golden_names(fixtures)), multiplier)
    findings = [
        Finding("M-MULTIPLIER", f.file, f.pointer, f"with multiplier {multiplier}: {f.message}")
        if f.requirement in ("M-VALUE", "M-FINITE") else f
        for f in batch.judgement.findings
    ]
    verdict.check(findings, batch.evidence())
