"""Golden pairs: every request of the fixtures through the candidate in one run, each response compared with its
golden twin (values after casting to the declared type; layout, float spelling and key order are free)."""

from __future__ import annotations

import pytest

from conformance.plugin import fixtures_of
from conformance.suite.shared import (
    ANY_BEHAVIOUR_IDS,
    BEHAVIOUR_IDS,
    FORMAT_IDS,
    RUN_IDS,
    golden_batch,
    golden_names,
    set_aside,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "golden_name" in metafunc.fixturenames:
        fixtures = fixtures_of(metafunc.config)
        names = golden_names(fixtures) if fixtures is not None else []
        reason = (f"no golden requests in {fixtures}/input" if fixtures is not None
                  else "no golden pairs for this model: record some (fixtures record) and give --fixtures-dir")
        metafunc.parametrize("golden_name", names or [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                             ids=names or ["none"])


@pytest.mark.golden
@pytest.mark.requirement(*RUN_IDS)
def test_golden_run(conformance, verdict):
    """The run over all golden requests: exit 0 in time, only *.json files directly in the output folder,
    input and model untouched, one response per request."""
    batch = golden_batch(conformance)
    verdict.judge(batch.judgement, batch.evidence(), ids=RUN_IDS)


@pytest.mark.golden
@pytest.mark.requirement(*FORMAT_IDS, *BEHAVIOUR_IDS, *ANY_BEHAVIOUR_IDS)
def test_golden(conformance, verdict, golden_name):
    """The response to one golden request equals the golden response (for a model other than the multiplier:
    within the tolerance, and following the declared signature)."""
    ids = set_aside(verdict, conformance.require_candidate(), (*FORMAT_IDS, *BEHAVIOUR_IDS, *ANY_BEHAVIOUR_IDS[2:]))
    batch = golden_batch(conformance)
    verdict.judge(batch.judgement, batch.evidence(golden_name), where=golden_name, ids=ids)


@pytest.mark.schema
@pytest.mark.requirement(*FORMAT_IDS)
def test_schema(conformance, verdict, golden_name):
    """The response to one golden request is strict V2: JSON, schema, element counts, element types."""
    batch = golden_batch(conformance)
    # (the value diff is shown once, by test_golden; this test's failures are about the format)
    verdict.judge(batch.judgement, batch.evidence(), where=golden_name, ids=FORMAT_IDS)
