#!/usr/bin/env python3
"""Benchmark the default conformance suite run in a checkout (reference predictor, local runner).

    python benchmarks/bench_suite.py [--profile ci]

Runs ``pytest conformance/suite`` as the README's default does and reads its report: wall time, predictor runs,
generated requests checked, predictor runs per generated request. The baseline, measured in the same command, is
the bare cost of the same number of predictor runs (the reference predictor on a 53-request batch, run as often
as the suite ran a predictor, no kit involved): the ratio says how much the kit adds on top of running the
candidate. Goals (issue 5): at most 20 s, at least 1,000 generated requests, at most 20 runs for them.
Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.generate import strategies  # noqa: E402
from conformance.generate.profiles import PROFILES  # noqa: E402
from conformance.v2.strictjson import dumps  # noqa: E402


def suite_run(profile: str, work: Path) -> tuple[float, dict]:
    report = work / "report.json"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "conformance/suite", "-q", "-p", "no:cacheprovider",
                           "--conformance-profile", profile, "--conformance-report", str(report)],
                          cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or not report.is_file():
        sys.exit(f"the suite failed on the reference:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, json.loads(report.read_text())


def bare_runs(runs: int, work: Path) -> float:
    """``runs`` runs of the reference predictor on one 53-request generated batch, nothing else."""
    inputs = work / "bare-input"
    inputs.mkdir()
    batch = strategies.batches(min_size=53, max_size=53, max_tensors=3, max_elements=8).example()
    for i, request in enumerate(batch):
        (inputs / f"r{i:03}.json").write_bytes(dumps(request))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAHU_")}
    env.update(ODAHU_MODEL_PATH=str(ROOT / "model"), ODAHU_INPUT_PATH=str(inputs))
    started = time.perf_counter()
    for run in range(runs):
        env["ODAHU_OUTPUT_PATH"] = str(work / f"bare-output-{run}")
        subprocess.run([sys.executable, str(ROOT / "predictor" / "fast.py")], env=env, check=True,
                       capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", choices=("dev", "ci", "thorough"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="odahu-bench-suite-") as scratch:
        work = Path(scratch)
        elapsed, report = suite_run(args.profile, work)
        stats = report["stats"]
        runs, generated = stats["predictor_runs"], stats["generated_requests"]
        baseline = bare_runs(runs, work)
    batch = PROFILES[args.profile].batch
    property_runs = -(-generated // batch)
    print(f"suite (profile {args.profile}): {elapsed:.2f} s, {runs} predictor runs, {generated} generated requests")
    print(f"baseline: the same {runs} bare predictor runs: {baseline:.2f} s")
    print(f"suite vs bare runs: {elapsed / baseline:.2f}x")
    if generated:
        print(f"predictor runs per generated request: {runs / generated:.4f} (all runs) ; "
              f"property runs per generated request: {1 / batch:.4f} (batches of {batch})")
    goals = [("time <= 20 s", elapsed <= 20), ("generated >= 1000", generated >= 1000),
             ("generated in <= 20 runs", property_runs is None or property_runs <= 20)]
    for text, ok in goals:
        print(f"goal {text}: {'ok' if ok else 'MISSED'}")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
