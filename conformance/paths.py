"""Where the kit's own model, golden fixtures, manifests and predictors are.

In a checkout (or an editable install) they are the checkout's top-level folders. An installed kit carries
copies under ``conformance/kitdata/`` (in the repository that folder holds links to the top-level folders, which
the wheel build turns into files), so the suite also runs outside any checkout.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
INSTALLED = PACKAGE / "kitdata"


def kit_root() -> Path:
    """The folder holding ``model/``, ``fixtures/``, ``manifests/`` and ``predictor/``."""
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "fixtures").is_dir():
        return CHECKOUT
    return INSTALLED


def kit_model() -> Path:
    """The kit's model folder (multiplier 2, name ``multiplier``, version ``1``)."""
    return kit_root() / "model"


def kit_fixtures() -> Path:
    """The kit's golden fixtures (``input/`` and ``output/``)."""
    return kit_root() / "fixtures"


def kit_manifests() -> Path:
    """The kit's InferenceService and InferenceJob manifests."""
    return kit_root() / "manifests"


def reference_predictor() -> Path:
    """The short reference predictor, the one to copy (``predictor/reference.py``)."""
    return kit_root() / "predictor" / "reference.py"


def fast_predictor() -> Path:
    """The streaming predictor the images run and the speed benchmark measures (``predictor/fast.py``)."""
    return kit_root() / "predictor" / "fast.py"
