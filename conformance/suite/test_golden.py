"""Golden pairs: every request of the fixtures through the candidate in one run, each response compared with its
golden twin (values after casting to the declared type; layout, float spelling and key order are free)."""

from __future__ import annotations

import pytest

from conformance.paths import kit_fixtures
from conformance.suite.shared import (
    BEHAVIOUR_IDS,
    FORMAT_IDS,
    RUN_IDS,
    golden_batch,
    golden_names,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "golden_name" in metafunc.fixturenames:
        fixtures = metafunc.config.getoption("fixtures_dir") or kit_fixtures()
        names = golden_names(fixtures)
        metafunc.parametrize("golden_name", names or [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no golden requests in {fixtures}/input"))], ids=names or ["none"])


@pytest.mark.golden
@pytest.mark.requirement(*RUN_IDS)
def test_golden_run(conformance, verdict):
    """The run over all golden requests: exit 0 in time, only *.json files directly in the output folder,
    input and model untouched, one response per request."""
    batch = golden_batch(conformance)
    verdict.judge(batch.judgement, batch.evidence(), ids=RUN_IDS)


@pytest.mark.golden
@pytest.mark.requirement(*FORMAT_IDS, *BEHAVIOUR_IDS)
def test_golden(conformance, verdict, golden_name):
    """The response to one golden request equals the golden response."""
    batch = golden_batch(conformance)
    verdict.judge(batch.judgement, batch.evidence(golden_name), where=golden_name, ids=(*FORMAT_IDS, *BEHAVIOUR_IDS))


@pytest.mark.schema
@pytest.mark.requirement(*FORMAT_IDS)
def test_schema(conformance, verdict, golden_name):
    """The response to one golden request is strict V2: JSON, schema, element counts, element types."""
    batch = golden_batch(conformance)
    # (the value diff is shown once, by test_golden; this test's failures are about the format)
    verdict.judge(batch.judgement, batch.evidence(), where=golden_name, ids=FORMAT_IDS)
