"""A plain ``pytest`` in a checkout runs the kit's own tests (``tests/``) and the conformance suite
(``conformance/suite/``) against the reference predictor, unless a candidate is given on the command line."""

import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "predictor" / "fast.py"


def pytest_configure(config):
    option = config.option
    if not (getattr(option, "predictor_cmd", None) or getattr(option, "predictor_image", None)
            or getattr(option, "service_manifest", None)):
        option.predictor_cmd = f"{sys.executable} {REFERENCE}"
