"""The batches the suite sends are what they claim to be: the platform keeps every "delivered" request (so it
really reaches candidates on a cluster), and the oracle owes each of them an error response."""

from __future__ import annotations

import pytest

from conformance.odahu import platform_rules
from conformance.odahu.model import Model
from conformance.oracle.expect import expect
from conformance.suite.shared import DELIVERED, GOOD
from conformance.v2.documents import REQUEST, parse

MODEL = Model(2, "multiplier", "1")


@pytest.mark.parametrize("name,raw", DELIVERED, ids=[name for name, _ in DELIVERED])
def test_the_platform_delivers_it_and_the_oracle_refuses_it(name, raw):
    keeps, reason = platform_rules.accepts(raw, "request")
    assert keeps, f"the platform would drop {name}: {reason}"
    expected = expect(parse(raw, REQUEST, name), MODEL, name)
    assert expected.is_error and expected.requirement == "P-EVERY", expected


def test_the_good_requests_are_served_and_sort_around_the_delivered_ones():
    assert all(not expect(parse(raw, REQUEST, name), MODEL, name).is_error for name, raw in GOOD)
    names = sorted(name for name, _ in DELIVERED + GOOD)
    good = [names.index(name) for name, _ in GOOD]
    assert min(good) > 0 and max(good) < len(names) - 1 and good != list(range(good[0], good[0] + len(good)))
