#!/usr/bin/env python3
"""Benchmark the reference predictor against a naive predictor and the JSON floor.

    python benchmarks/bench_predictor.py [--files 8] [--elements 1000000] [--repeat 3] [--keep]

It writes a batch of request files (half INT32, half FP64 tensors of ``--elements`` random values each, about
120 MB for the defaults) into a temporary folder, then runs three programs on the same batch, each as its own
subprocess with the same ODAHU_* environment, one file at a time:

- naive:     stdlib ``json``, a Python list comprehension for the multiply (with int32 wrap-around);
- floor:     orjson loads each request and dumps it back: what any orjson-based predictor must at least pay;
- reference: predictor/predictor.py.

For each it reports the best wall time of ``--repeat`` runs and the peak RSS of the child (``os.wait4``), and
prints the ratios against the goals: reference at least 4x faster than naive, at most 1.3x the floor, peak RSS
at most 4x the largest request file. It also checks that the reference and the naive predictor agree.
Exit status 0 whatever the numbers (this is a measurement, not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "predictor" / "predictor.py"

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


def generate(folder: Path, files: int, elements: int, seed: int) -> list[Path]:
    """Half INT32 (uniform over the whole range), half FP64 (normal values over six decades) requests."""
    rng = np.random.default_rng(seed)
    (folder / "input").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "model" / "multiplier.txt").write_text("3\n")
    (folder / "model" / "odahuflow.project.yaml").write_text('model:\n  name: multiplier\n  version: "1"\n')
    side = int(round(elements**0.5))
    shape = [side, elements // side]
    count = shape[0] * shape[1]
    paths = []
    for i in range(files):
        if i % 2 == 0:
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


def run_once(argv: list[str], folder: Path, output: Path) -> tuple[float, int]:
    """Run one batch; return (wall seconds, peak RSS bytes of the child)."""
    shutil.rmtree(output, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAHU_")}
    env.update(
        ODAHU_MODEL_PATH=str(folder / "model"), ODAHU_INPUT_PATH=str(folder / "input"), ODAHU_OUTPUT_PATH=str(output)
    )
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {stderr}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--elements", type=int, default=1_000_000, help="elements per tensor")
    parser.add_argument("--repeat", type=int, default=3, help="runs per program (best time is kept)")
    parser.add_argument("--naive-repeat", type=int, default=1, help="runs of the (slow) naive predictor")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="odahu-bench-"))
    try:
        (folder / "naive.py").write_text(NAIVE)
        (folder / "floor.py").write_text(FLOOR)
        paths = generate(folder, args.files, args.elements, args.seed)
        sizes = [p.stat().st_size for p in paths]
        total, largest = sum(sizes), max(sizes)
        print(f"batch: {len(paths)} files, {total / 2**20:.1f} MiB, largest {largest / 2**20:.1f} MiB ({folder})")

        programs = {
            "naive": ([sys.executable, str(folder / "naive.py")], args.naive_repeat),
            "floor": ([sys.executable, str(folder / "floor.py")], args.repeat),
            "reference": ([sys.executable, str(REFERENCE)], args.repeat),
        }
        results = {}
        for label, (argv, repeat) in programs.items():
            runs = [run_once(argv, folder, folder / f"out-{label}") for _ in range(repeat)]
            best = min(t for t, _ in runs)
            peak = max(r for _, r in runs)
            results[label] = (best, peak)
            print(f"{label:>9}: {best:7.2f} s  {total / 2**20 / best:7.1f} MiB/s  peak RSS {peak / 2**20:7.1f} MiB")

        # The reference must compute what the naive predictor computes (same values, same files).
        for path in paths:
            ref = json.loads((folder / "out-reference" / path.name).read_text())
            naive = json.loads((folder / "out-naive" / path.name).read_text())
            if ref["outputs"][0]["data"] != naive["outputs"][0]["data"]:
                raise SystemExit(f"reference and naive disagree on {path.name}")
        print("reference and naive outputs agree")

        t_naive, t_floor, (t_ref, rss_ref) = results["naive"][0], results["floor"][0], results["reference"]
        speedup, vs_floor, rss_ratio = t_naive / t_ref, t_ref / t_floor, rss_ref / largest
        print(f"reference vs naive: {speedup:5.2f}x faster   (goal >= 4x)   {'ok' if speedup >= 4 else 'MISSED'}")
        print(f"reference vs floor: {vs_floor:5.2f}x the time (goal <= 1.3x) {'ok' if vs_floor <= 1.3 else 'MISSED'}")
        print(f"peak RSS vs largest file: {rss_ratio:5.2f}x   (goal <= 4x)   {'ok' if rss_ratio <= 4 else 'MISSED'}")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
