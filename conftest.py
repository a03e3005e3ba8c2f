"""A plain ``pytest`` in a checkout runs the kit's own tests (``tests/``) and the conformance suite
(``conformance/suite/``) against the reference predictor, unless a candidate is given on the command line.

Only a command line with no candidate option at all gets the reference: an option given blank (an unset
variable) is a usage error in the plugin, never a silent fallback."""

import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "predictor" / "reference.py"
CANDIDATE_OPTIONS = ("predictor_cmd", "predictor_image", "service_manifest", "url", "grpc")


def pytest_configure(config):
    option = config.option
    if all(getattr(option, name, None) is None for name in CANDIDATE_OPTIONS):
        option.predictor_cmd = f"{sys.executable} {REFERENCE}"
        config._conformance_default_note = "the kit's reference predictor: no candidate option was given"
