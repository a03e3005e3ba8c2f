"""Where the kit's own model and golden fixtures are."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def kit_root() -> Path:
    """The folder holding ``model/`` and ``fixtures/``: the checkout (an editable install runs from it)."""
    return CHECKOUT


def kit_model() -> Path:
    """The kit's model folder (multiplier 2, name ``multiplier``, version ``1``)."""
    return kit_root() / "model"


def kit_fixtures() -> Path:
    """The kit's golden fixtures (``input/`` and ``output/``)."""
    return kit_root() / "fixtures"
