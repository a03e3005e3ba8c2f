#!/usr/bin/env python3
"""Benchmark the predictors (fast.py, reference.py) against a naive predictor and the JSON floor.

    python benchmarks/bench_predictor.py [--case mixed|fp64|both] [--files 8] [--elements 1000000] [--repeat 3]
                                         [--keep]

It measures two cases (``--case both``, the default), each a batch of request files of ``--elements`` random values
per tensor written into a temporary folder:

- mixed: half INT32 (uniform over the whole range), half FP64 (normal values over six decades) tensors, multiplier 3
  (about 120 MB for the defaults);
- fp64:  FP64 tensors only, full-precision doubles (17 significant digits) over wide exponents, times 7, a
  multiplier that is not a power of two, so every product is rounded (about 190 MB for the defaults).

For each case it runs four programs on the same batch, each as its own subprocess with the same ODAHU_*
environment, one file at a time:

- naive:     stdlib ``json``, a Python list comprehension for the multiply (with int32 wrap-around);
- floor:     orjson loads each request and dumps it back: what any orjson-based predictor must at least pay;
- fast:      predictor/fast.py, the streaming predictor the images run;
- reference: predictor/reference.py, the short one to copy (stdlib json, numpy).

For each it reports the best and the median wall time of ``--repeat`` runs (made in rounds, one run of each program
per round) and the peak RSS of the child (``os.wait4`` in a small launcher process, see ``LAUNCHER``), and prints
the ratios (of best times, and of medians) against the goals, which are fast.py's: at least 4x faster than naive,
at most 1.0x the floor (issue 11), peak RSS at most 4x the largest request file. The short reference has no goal: its ratios (against the floor and against fast.py) are
printed for information. For scale it also prints the idle RSS: of the bare interpreter, and of fast.py on an
empty batch (imports and model loaded, no request). It also checks that both predictors agree with the naive one.
Exit status 0 whatever the numbers (this is a measurement, not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / "predictor" / "fast.py"
REFERENCE = ROOT / "predictor" / "reference.py"

NAIVE = r'''
"""Naive predictor: stdlib json and plain Python lists (what a first attempt looks like)."""
import json, os, sys

model = os.environ["ODAHU_MODEL_PATH"]
inputs = os.environ["ODAHU_INPUT_PATH"]
output = os.environ["ODAHU_OUTPUT_PATH"]
m = int(open(os.path.join(model, "multiplier.txt")).read().strip())
os.makedirs(output, exist_ok=True)

def flatten(data):
    for item in data:
        if isinstance(item, list):
            yield from flatten(item)
        else:
            yield item

for name in sorted(os.listdir(inputs)):
    if not name.endswith(".json"):
        continue
    with open(os.path.join(inputs, name)) as f:
        request = json.load(f)
    outputs = []
    for t in request["inputs"]:
        if t["datatype"] == "INT32":
            data = [(x * m + 2**31) % 2**32 - 2**31 for x in flatten(t["data"])]
        else:
            data = [x * m for x in flatten(t["data"])]
        outputs.append({"name": t["name"], "datatype": t["datatype"], "shape": t["shape"], "data": data})
    response = {"model_name": "multiplier", "model_version": "1", "outputs": outputs}
    with open(os.path.join(output, "." + name + ".partial"), "w") as f:
        json.dump(response, f)
    os.replace(os.path.join(output, "." + name + ".partial"), os.path.join(output, name))
'''

FLOOR = r'''
"""JSON floor: orjson loads every request and dumps it back, nothing else."""
import os, orjson

inputs = os.environ["ODAHU_INPUT_PATH"]
output = os.environ["ODAHU_OUTPUT_PATH"]
os.makedirs(output, exist_ok=True)
for name in sorted(os.listdir(inputs)):
    if not name.endswith(".json"):
        continue
    with open(os.path.join(inputs, name), "rb") as f:
        request = orjson.loads(f.read())
    with open(os.path.join(output, "." + name + ".partial"), "wb") as f:
        f.write(orjson.dumps(request))
    os.replace(os.path.join(output, "." + name + ".partial"), os.path.join(output, name))
'''


#: The cases: (multiplier, what the batch holds).
CASES = {
    "mixed": (3, "half INT32, half FP64 (normal values over six decades)"),
    "fp64": (7, "FP64 only, full-precision doubles over wide exponents"),
}


def generate(folder: Path, files: int, elements: int, seed: int, case: str = "mixed") -> list[Path]:
    """The batch of ``case`` (see ``CASES``): its requests, and the model with the case's multiplier."""
    rng = np.random.default_rng(seed)
    (folder / "input").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "model" / "multiplier.txt").write_text(f"{CASES[case][0]}\n")
    (folder / "model" / "odahuflow.project.yaml").write_text('model:\n  name: multiplier\n  version: "1"\n')
    side = int(round(elements**0.5))
    shape = [side, elements // side]
    count = shape[0] * shape[1]
    paths = []
    for i in range(files):
        if case == "fp64":
            # Uniform mantissas (53 significant bits: repr needs 16-17 digits), exponents over +-100 decades.
            datatype = "FP64"
            data = (rng.uniform(-1.0, 1.0, count) * 10.0 ** rng.integers(-100, 100, count)).tolist()
        elif i % 2 == 0:
            datatype = "INT32"
            data = rng.integers(-(2**31), 2**31, count, dtype=np.int64).tolist()
        else:
            datatype = "FP64"
            data = (rng.standard_normal(count) * 10.0 ** rng.uniform(-3, 3, count)).tolist()
        request = {"id": f"bench-{i}", "inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}
        path = folder / "input" / f"request-{i:02d}-{datatype.lower()}.json"
        path.write_text(json.dumps(request, separators=(",", ":")))
        paths.append(path)
    return paths


#: Starts the measured program and reports "seconds exit-status peak-RSS-KiB" (the program's stdout is discarded).
#: The benchmark does not start the programs itself: Linux counts the memory of the process that forks into the
#: child's peak RSS (``ru_maxrss`` keeps the high-water mark of the address space replaced at exec), and this
#: process holds far more than a predictor does. The launcher is a bare interpreter (-I -S, about 8 MiB).
LAUNCHER = r"""
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_once(argv: list[str], folder: Path, output: Path, inputs: str = "input") -> tuple[float, int]:
    """Run one batch (requests in ``folder/inputs``); return (wall seconds, peak RSS bytes of the child)."""
    shutil.rmtree(output, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAHU_")}
    env.update(
        ODAHU_MODEL_PATH=str(folder / "model"), ODAHU_INPUT_PATH=str(folder / inputs), ODAHU_OUTPUT_PATH=str(output)
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, *argv], env=env, capture_output=True, text=True, check=False
    )
    try:
        elapsed, returncode, max_rss_kib = proc.stdout.split()
    except ValueError:
        raise SystemExit(f"the launcher failed ({proc.returncode}): {proc.stderr}") from None
    if int(returncode) != 0:
        raise SystemExit(f"{argv} failed ({returncode}): {proc.stderr}")
    return float(elapsed), int(max_rss_kib) * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=[*CASES, "both"], default="both", help="which batch (default: both)")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--elements", type=int, default=1_000_000, help="elements per tensor")
    parser.add_argument("--repeat", type=int, default=3, help="runs per program (best and median are shown)")
    parser.add_argument("--naive-repeat", type=int, default=1, help="runs of the (slow) naive predictor")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()
    for case in CASES if args.case == "both" else [args.case]:
        print(f"== case {case}: {CASES[case][1]}, multiplier {CASES[case][0]}")
        run_case(args, case)
    return 0


def run_case(args: argparse.Namespace, case: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"odahu-bench-{case}-"))
    try:
        (folder / "naive.py").write_text(NAIVE)
        (folder / "floor.py").write_text(FLOOR)
        paths = generate(folder, args.files, args.elements, args.seed, case)
        sizes = [p.stat().st_size for p in paths]
        total, largest = sum(sizes), max(sizes)
        print(f"batch: {len(paths)} files, {total / 2**20:.1f} MiB, largest {largest / 2**20:.1f} MiB ({folder})")

        programs = {
            "naive": ([sys.executable, str(folder / "naive.py")], args.naive_repeat),
            "floor": ([sys.executable, str(folder / "floor.py")], args.repeat),
            "fast": ([sys.executable, str(FAST)], args.repeat),
            "reference": ([sys.executable, str(REFERENCE)], args.repeat),
        }
        # Rounds (each program once per round, while its repeats last) rather than one program's repeats in a row:
        # on a shared machine the load drifts, and the floor and the predictors should see the same drift.
        all_runs: dict[str, list[tuple[float, int]]] = {label: [] for label in programs}
        for round_number in range(max(repeat for _, repeat in programs.values())):
            for label, (argv, repeat) in programs.items():
                if round_number < repeat:
                    all_runs[label].append(run_once(argv, folder, folder / f"out-{label}"))
        results, medians = {}, {}
        for label, runs in all_runs.items():
            best = min(t for t, _ in runs)
            medians[label] = statistics.median(t for t, _ in runs)
            peak = max(r for _, r in runs)
            results[label] = (best, peak)
            print(
                f"{label:>9}: {best:7.2f} s  (median {medians[label]:7.2f} s)  {total / 2**20 / best:7.1f} MiB/s  "
                f"peak RSS {peak / 2**20:7.1f} MiB"
            )

        # Both predictors must compute what the naive predictor computes (same values, same files).
        for label in ("fast", "reference"):
            for path in paths:
                ours = json.loads((folder / f"out-{label}" / path.name).read_text())
                naive = json.loads((folder / "out-naive" / path.name).read_text())
                if ours["outputs"][0]["data"] != naive["outputs"][0]["data"]:
                    raise SystemExit(f"{label} and naive disagree on {path.name}")
        print("fast, reference and naive outputs agree")
        t_fast, rss_fast = results["fast"]

        # Idle RSS: what the interpreter alone, and fast.py with its imports and model but no request, hold.
        # The goal is on the absolute peak; this shows how much of it the requests themselves account for.
        (folder / "empty").mkdir()
        _, rss_bare = run_once([sys.executable, "-c", "pass"], folder, folder / "out-bare", "empty")
        _, rss_idle = run_once([sys.executable, str(FAST)], folder, folder / "out-idle", "empty")
        print(
            f"     idle: interpreter {rss_bare / 2**20:.1f} MiB, fast with no request {rss_idle / 2**20:.1f} MiB; "
            f"fast peak - idle = {(rss_fast - rss_idle) / 2**20:.1f} MiB = {(rss_fast - rss_idle) / largest:.2f}x "
            "the largest file"
        )

        t_naive, t_floor = results["naive"][0], results["floor"][0]
        speedup, vs_floor, rss_ratio = t_naive / t_fast, t_fast / t_floor, rss_fast / largest
        print(f"fast vs naive: {speedup:5.2f}x faster   (goal >= 4x)   {'ok' if speedup >= 4 else 'MISSED'}")
        print(
            f"fast vs floor: {vs_floor:5.2f}x the time (goal <= 1.0x) {'ok' if vs_floor <= 1.0 else 'MISSED'}   "
            f"(medians: {medians['fast'] / medians['floor']:5.2f}x)"
        )
        print(f"fast peak RSS vs largest file: {rss_ratio:5.2f}x   (goal <= 4x)   {'ok' if rss_ratio <= 4 else 'MISSED'}")
        t_ref, rss_ref = results["reference"]
        print(f"reference vs floor: {t_ref / t_floor:5.2f}x the time, vs fast: {t_ref / t_fast:5.2f}x the time, "
              f"vs naive: {t_naive / t_ref:5.2f}x faster; peak RSS {rss_ref / largest:5.2f}x the largest file, "
              f"{rss_ref / rss_fast:5.2f}x fast's (no goal: the short one trades speed for brevity)")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)




if __name__ == "__main__":
    sys.exit(main())
