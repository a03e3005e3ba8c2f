"""Benchmark: ``validate output`` on a batch of large tensors, against the JSON floor, in one process.

The floor is the fastest JSON parser installed reading and parsing the same files (nothing checked). The goal
(issue 2): validation at most 2x the floor's time, and peak memory (the growth of the process's peak resident set
over its baseline, so C allocations count too) at most 4x the largest file. Prints the ratios; exits 1 when a goal is missed so CI can run it as a gate.

    python benchmarks/bench_validate.py [--megabytes 64] [--repeat 3] [--single-line-mb 16]

``--single-line-mb M`` adds two more cases (issue 10): a single file of M MiB on one line (one FP64 tensor of
about M * 52,000 elements), valid, and the same file failing (its shape one element longer than its data),
whose peak memory is reported against its size with the same goal (0 skips them).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from conformance.odahu.validate import validate_folder


def make_batch(folder: Path, megabytes: int) -> list[Path]:
    """Write responses with large INT32, INT64, FP32 and FP64 tensors (realistic random values) until the batch
    reaches ``megabytes``."""
    rng = np.random.default_rng(0)
    kinds = [
        ("INT32", lambda n: rng.integers(-(2**31), 2**31, n, dtype=np.int64).tolist()),
        ("FP64", lambda n: (rng.standard_normal(n) * 1e3).tolist()),
        ("INT64", lambda n: rng.integers(-(2**62), 2**62, n, dtype=np.int64).tolist()),
        ("FP32", lambda n: rng.standard_normal(n).astype(np.float32).astype(str).astype(float).tolist()),
    ]
    files, total, index = [], 0, 0
    while total < megabytes * 1024 * 1024:
        datatype, values = kinds[index % len(kinds)]
        n = 1_000_000
        body = {"model_name": "multiplier", "model_version": "1", "id": f"b{index}",
                "outputs": [{"name": "x", "datatype": datatype, "shape": [1000, 1000], "data": values(n)}]}
        path = folder / f"batch-{index:02d}.json"
        path.write_text(json.dumps(body))
        files.append(path)
        total += path.stat().st_size
        index += 1
    return files


def make_single_line(folder: Path, megabytes: int, failing: bool = False) -> Path:
    """One response of about ``megabytes`` MiB on a single line: one flat FP64 tensor (``failing``: its shape
    says one element more than its data holds, an F-COUNT finding)."""
    rng = np.random.default_rng(1)
    n = megabytes * 1024 * 1024 // 20  # json.dumps writes about 20 bytes per value of this size
    body = {"model_name": "multiplier", "model_version": "1", "id": "single-line",
            "outputs": [{"name": "x", "datatype": "FP64", "shape": [n + failing],
                         "data": (rng.standard_normal(n) * 1e3).tolist()}]}
    path = folder / "single-line.json"
    path.write_text(json.dumps(body))
    return path


def parsers() -> dict[str, object]:
    """Every JSON parser installed, by name, as a bytes -> value function."""
    found: dict[str, object] = {"json": json.loads}
    for name, attribute in (("orjson", "loads"), ("msgspec.json", "decode"), ("simdjson", "loads"), ("ujson", "loads"), ("rapidjson", "loads")):
        try:
            found[name] = getattr(importlib.import_module(name), attribute)
        except (ImportError, AttributeError):
            continue
    return found


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(task: str, folder: Path, repeat: int) -> None:
    """Run one measurement in this (fresh) process; print JSON: best time, peak RSS growth over the baseline.
    ``validate-failing``: the folder's files must all fail (with the kit's finding, not a crash)."""
    files = sorted(folder.glob("*.json"))
    if task in ("validate", "validate-failing"):
        work = lambda: _validate(folder, task == "validate-failing")  # noqa: E731
    else:
        parse = parsers()[task]
        def work() -> None:
            for path in files:  # one file at a time, like validate: nothing kept between files
                parse(path.read_bytes())
    gc.collect()
    baseline = _rss_kib("VmRSS")
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": min(times), "peak_bytes": (_rss_kib("VmHWM") - baseline) * 1024}))


def _validate(folder: Path, failing: bool = False) -> None:
    verdicts = list(validate_folder(folder, "output"))
    wrong = [v for v in verdicts if v.ok == failing]
    if wrong:
        raise SystemExit(f"benchmark files unexpectedly {'passed' if failing else 'failed'} validation: {wrong[0].line()}")


def measure(task: str, folder: Path, repeat: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", task, str(folder), "--repeat", str(repeat)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--megabytes", type=int, default=64)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--single-line-mb", type=int, default=16,
                         help="also measure one single-line file of this many MiB (0: skip)")
    options.add_argument("--child", nargs=2, metavar=("TASK", "FOLDER"), help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.repeat)
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        files = make_batch(folder, args.megabytes)
        total = sum(p.stat().st_size for p in files)
        largest = max(p.stat().st_size for p in files)
        print(f"batch: {len(files)} files, {total / 2**20:.1f} MiB, largest {largest / 2**20:.1f} MiB "
              f"(each measurement in a fresh process; memory = peak RSS growth over the process's baseline)")
        floors = {name: measure(name, folder, args.repeat) for name in parsers()}
        for name, result in sorted(floors.items(), key=lambda kv: kv[1]["seconds"]):
            print(f"  parse only, {name:<12} {result['seconds']:7.3f} s   peak +{result['peak_bytes'] / 2**20:6.1f} MiB")
        fastest = min(floors, key=lambda name: floors[name]["seconds"])
        ours = measure("validate", folder, args.repeat)
    time_ratio = ours["seconds"] / floors[fastest]["seconds"]
    memory_ratio = ours["peak_bytes"] / largest
    print(f"validate output          {ours['seconds']:7.3f} s   peak +{ours['peak_bytes'] / 2**20:6.1f} MiB")
    print(f"time:   {time_ratio:.2f}x the floor ({fastest} parsing the same files)   goal <= 2.00x")
    print(f"memory: {memory_ratio:.2f}x the largest file   goal <= 4.00x "
          f"(the floor's parse alone: {floors[fastest]['peak_bytes'] / largest:.2f}x)")
    single = [_single_line(args.single_line_mb, failing) for failing in (False, True)] if args.single_line_mb > 0 else [0.0]
    return 0 if time_ratio <= 2.0 and memory_ratio <= 4.0 and max(single) <= 4.0 else 1


def _single_line(megabytes: int, failing: bool) -> float:
    """Peak memory of ``validate output`` on one single-line file (valid, or ``failing``), as a multiple of the
    file's size."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        size = make_single_line(folder, megabytes, failing).stat().st_size
        ours = measure("validate-failing" if failing else "validate", folder, 1)
    ratio = ours["peak_bytes"] / size
    print(f"single-line file, {'failing' if failing else 'valid'}, {size / 2**20:.1f} MiB: validate "
          f"{ours['seconds']:7.3f} s   peak +{ours['peak_bytes'] / 2**20:6.1f} MiB")
    print(f"memory: {ratio:.2f}x the single-line file   goal <= 4.00x")
    return ratio


if __name__ == "__main__":
    sys.exit(main())
