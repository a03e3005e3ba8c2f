#!/usr/bin/env python3
"""Benchmark pytest-xdist (``-n N``): the conformance suite and the kit's own tests with -n 0, 2 and 4.

    python benchmarks/bench_xdist.py [--profile thorough] [--workers 0 2 4] [--tests]

The suite: ``pytest conformance/suite`` on the reference predictor with the given profile (default thorough) and
seed 1, once per worker count; each run's wall time and its ratio to the ``-n 0`` run measured in the same
command, and whether its report has the same statuses as the ``-n 0`` one (it must: exit status 1 otherwise).
With ``--tests``, also the kit's own fast tests (``pytest tests -m "not slow"``), whose ratio says what -n gives
a session of many independent tests.

What to expect: the suite's tests run as one scope on one worker (they share the candidate's runs: see
conformance/plugin.py), so -n does not make the suite itself faster (the ratio is about 1, plus the workers'
start); the kit's own tests, independent of each other, spread over the workers.
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


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - started, done


def workers(n: int) -> list[str]:
    return ["-n", str(n)] if n else ["-p", "no:xdist"]


def suite_run(profile: str, n: int, work: Path) -> tuple[float, dict[str, str]]:
    report = work / f"report-{n}.json"
    elapsed, done = timed([sys.executable, "-m", "pytest", "conformance/suite", "-q", "-p", "no:cacheprovider",
                           *workers(n), "--conformance-profile", profile, "--hypothesis-seed", "1",
                           "--conformance-report", str(report)])
    if done.returncode != 0 or not report.is_file():
        sys.exit(f"the suite failed on the reference with -n {n}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, {row["id"]: row["status"] for row in json.loads(report.read_text())["requirements"]}


def tests_run(n: int) -> float:
    elapsed, done = timed([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                           *workers(n)])
    if done.returncode != 0:
        sys.exit(f"the kit's fast tests failed with -n {n}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("dev", "ci", "thorough"), default="thorough")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--tests", action="store_true", help="also the kit's own fast tests (-m 'not slow')")
    args = parser.parse_args()
    counts = sorted(set(args.workers) | {0})
    print(f"{os.cpu_count()} cores; the suite's {args.profile} profile on the reference predictor, seed 1")
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        times, statuses = {}, {}
        for n in counts:
            times[n], statuses[n] = suite_run(args.profile, n, Path(tmp))
        for n in counts:
            same = statuses[n] == statuses[0]
            status |= 0 if same else 1
            print(f"  suite -n {n}: {times[n]:7.1f} s  {times[n] / times[0]:.2f}x of -n 0"
                  f"  report statuses {'the same' if same else 'DIFFERENT'}")
    if args.tests:
        test_times = {n: tests_run(n) for n in counts}
        print("the kit's own fast tests (pytest tests -m 'not slow')")
        for n in counts:
            print(f"  tests -n {n}: {test_times[n]:7.1f} s  {test_times[n] / test_times[0]:.2f}x of -n 0")
    return status


if __name__ == "__main__":
    sys.exit(main())
