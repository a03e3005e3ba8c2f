"""Decoys for P-ENV: the variable names the platform's docs use (``ODAHU_MODEL``, ``ODAHU_MODEL_INPUT``,
``ODAHU_MODEL_OUTPUT``), which a cluster does not set, pointed at decoy folders in one run only. A candidate that
reads them answers the decoy request, or writes into the decoy output folder: the evidence P-ENV needs."""

from __future__ import annotations

import os
from pathlib import Path

from conformance import _fs
from conformance.run.workspace import DOC_ONLY_NAMES, Workspace

#: The decoy request (answered only by a candidate that reads ``ODAHU_MODEL_INPUT``).
DECOY_REQUEST = b'{"id": "decoy", "inputs": [{"name": "decoy", "shape": [1], "datatype": "INT32", "data": [1]}]}'


def stage_decoys(ws: Workspace) -> dict[str, Path]:
    """Make the decoy folders in ``ws.root`` and record them in ``ws.decoys``: a copy of the staged model (so a
    candidate reading ``ODAHU_MODEL`` still starts), an input folder holding ``decoy.json``, and an output
    path that does not exist beforehand."""
    model_name, input_name, output_name = DOC_ONLY_NAMES
    decoy_input = ws.root / "decoy-input"
    decoy_input.mkdir()
    os.chmod(decoy_input, _fs.DIR_MODE)
    _fs.write_atomically(decoy_input / "decoy.json", DECOY_REQUEST, _fs.FILE_MODE)
    decoys = {input_name: decoy_input, output_name: ws.root / "decoy-output"}
    if ws.model is not None:
        decoys[model_name] = ws.model
    ws.decoys = decoys
    return decoys
