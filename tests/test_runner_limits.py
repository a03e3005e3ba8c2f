"""A candidate that writes without end is stopped before it fills the host's disk, with a one-line reason; the
workspace is kept for the report and nothing is left running."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conformance import judge
from conformance.run import staging
from conformance.run.container import ContainerRunner, engine_available
from conformance.run.local import LocalRunner

FLOOD = "import os, pathlib; d = pathlib.Path(os.environ['ODAHU_OUTPUT_PATH']); d.mkdir(parents=True); " \
        "f = open(d / 'big.json', 'wb'); block = b'x' * (1 << 20)\nwhile True: f.write(block); f.flush()"


def workspace():
    ws = staging.new_workspace()
    staging.stage_model_text(ws, {"multiplier.txt": "2\n"})
    return ws


def test_a_local_flood_is_stopped_at_the_limit():
    runner = LocalRunner([sys.executable, "-c", FLOOD])
    runner.max_output_bytes = 20 << 20
    ws = workspace()
    try:
        result = runner.run(ws, timeout=60)
        assert result.stopped and "more than 20971520 bytes" in result.stopped
        assert result.exit_code is None and not result.timed_out and result.duration < 30
        size = sum(e.size for e in result.entries)
        assert 20 << 20 < size < 2 << 30
        assert result.leftovers == []
        [finding] = judge.RUN_CHECKS["P-EXIT"](result)
        assert "stopped" in finding.message and "\n" not in finding.message
    finally:
        staging.remove_workspace(ws)


@pytest.mark.parametrize("engine", ["podman"])
def test_a_container_flood_is_stopped_and_removed(engine):
    ok, reason = engine_available(engine)
    if not ok:
        print(f"skipping: {reason}")
        pytest.skip(reason)
    image = "localhost/odahu/multiplier-predictor:dev"
    if subprocess.run([engine, "image", "inspect", image], capture_output=True).returncode:
        pytest.skip(f"{image} is not built (predictor/build-image.sh)")
    runner = ContainerRunner(engine, image, command=["python3", "-c", FLOOD])
    runner.max_output_bytes = 20 << 20
    ws = workspace()
    try:
        result = runner.run(ws, timeout=60)
        assert result.stopped and result.exit_code is None, (result.stderr, result.start_error)
        leftovers = subprocess.run([engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True)
        assert not [n for n in leftovers.stdout.split() if n in " ".join(result.command)]
    finally:
        staging.remove_workspace(ws)
