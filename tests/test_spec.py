"""conformance/SPEC.md stays true: every requirement has its section and level; every test it names exists."""

import re

import pytest

from conformance.contract.requirements import REQUIREMENTS
from conformance.paths import PACKAGE, kit_root

SPEC = (PACKAGE / "SPEC.md").read_text(encoding="utf-8")
CONTRACT = kit_root().parent / "shared" / "design" / "contract.md"


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.id)
def test_every_requirement_has_a_section_with_its_level(requirement):
    assert re.search(rf"^### {re.escape(requirement.id)} \({requirement.level}[);]", SPEC, re.MULTILINE)


def test_every_test_named_in_the_spec_exists():
    named = set(re.findall(r"`((?:tests|conformance/suite)/[\w/]+\.py)::(\w+)`", SPEC))
    assert len(named) > 30
    for file, test in named:
        source = (kit_root() / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, re.MULTILINE), f"{file}::{test} is named in SPEC.md but missing"


@pytest.mark.skipif(not CONTRACT.is_file(), reason="the design contract is not beside this checkout")
def test_the_kits_requirements_are_the_contracts():
    # A requirement with a MUST part and a SHOULD part (P-NAME, F-MODEL) is MUST: its MUST part fails the run.
    lines = re.findall(r"^- `([A-Z]-[A-Z]+)` (.*)$", CONTRACT.read_text(encoding="utf-8"), re.MULTILINE)
    contract = {rid: "MUST" if "MUST" in rest else "SHOULD" for rid, rest in lines}
    # B-*: the project's own IDs for any model, which the contract leaves to SPEC.md ("Beyond the multiplier");
    # H-*, G-*: a V2 server's own (REST, gRPC), which it leaves to the project too ("the transport adds its own")
    assert contract == {r.id: r.level for r in REQUIREMENTS if not r.id.startswith(("B-", "H-", "G-"))}
    assert "the transport adds its own (`H-*`)" in " ".join(CONTRACT.read_text(encoding="utf-8").split())
    assert "IDs the project adds to `conformance/SPEC.md`" in " ".join(CONTRACT.read_text(encoding="utf-8").split())


def test_every_mutant_named_in_the_spec_breaks_its_requirement():
    import sys

    sys.path.insert(0, str(kit_root() / "tests" / "mutants"))
    from mutant import MUTANTS

    sections = re.split(r"^### ", SPEC, flags=re.MULTILINE)[1:]
    named = set()
    for section in sections:
        requirement = section.split(" ", 1)[0]
        # a list may run over several lines: "Mutants: `a`, `b` (why),\n`c`." ends at its sentence's full stop
        for listed in re.findall(r"Mutants?: (.*?)\.(?:\s|$)", section, flags=re.DOTALL):
            for mutant in re.findall(r"`([a-z][a-z0-9-]*)`", listed):
                named.add(mutant)
                assert MUTANTS.get(mutant) == requirement, f"{mutant} is listed under {requirement}"
    assert sorted(set(MUTANTS) - named) == [], "mutants that SPEC.md names under no requirement"


def test_every_iris_variant_is_named_in_the_spec():
    import sys

    sys.path.insert(0, str(kit_root() / "examples" / "iris"))
    from predictor import VARIANTS

    variants = set(re.findall(r"iris variants?(?: \([^)]*\))?:\s+(.*?)\.(?:\s|$)", SPEC, flags=re.DOTALL))
    named = {v for listed in variants for v in re.findall(r"`([a-z][a-z0-9-]*)`", listed)}
    assert sorted(set(VARIANTS) - named) == [], "iris variants that SPEC.md names under no requirement"
    assert named <= set(VARIANTS)
