#!/usr/bin/env python3
"""Benchmark the suite against a V2 REST server: the default suite's wall time against the reference server, and
the kit's HTTP client against a bare keep-alive client loop.

    python benchmarks/bench_online.py [--requests 1000] [--url http://HOST:PORT --model-name NAME]

1. The default suite (``--serve`` the reference server, predictor/server.py): wall time and requests sent.
   Goal (issue 16): at most 20 s on 2 cores.
2. Requests/s of the checker's sending path (``OnlineRunner.run`` over a staged batch: files read, POSTed over
   one kept-alive connection, answers kept and written beside the requests) against a bare loop of
   ``http.client`` on one kept-alive connection sending the same bodies, both against the same reference server
   in the same command. Goal: the kit at least 90% of the bare loop. With ``--url`` (e.g. an MLServer serving
   the multiplier) the same two figures are measured against that server too, for comparison.
Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.run import staging  # noqa: E402
from conformance.run.online import OnlineRunner  # noqa: E402
from conformance.v2.strictjson import dumps  # noqa: E402

#: The kit's small good requests, as the suite sends them.
BODIES = [dumps({"id": f"r{i}", "inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [i, -i]}]})
          for i in range(50)]


def start_reference() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, str(ROOT / "predictor" / "server.py"), "--port", "0", "--model",
                                str(ROOT / "model")], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"ready on (http://\S+)", line)
    if not match:
        process.kill()
        sys.exit(f"the reference server did not start: {line}")
    return process, match.group(1)


def bare_loop(url: str, path: str, count: int) -> float:
    """Requests/s of a plain keep-alive http.client loop sending BODIES in turn."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    started = time.perf_counter()
    for i in range(count):
        connection.request("POST", path, BODIES[i % len(BODIES)], {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"bare loop: status {response.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def kit_loop(url: str, model_name: str, count: int) -> float:
    """Requests/s of the kit's runner over a staged batch of ``count`` requests (staging not counted)."""
    runner = OnlineRunner(url, model_name, timeout=600)
    ws = staging.new_workspace()
    try:
        staging.stage_requests(ws, [(f"r{i:05}.json", BODIES[i % len(BODIES)]) for i in range(count)])
        started = time.perf_counter()
        result = runner.run(ws, 600)
        elapsed = time.perf_counter() - started
        assert result.exchanges is not None
        bad = [e for e in result.exchanges.values() if e.status != 200]
        if bad:
            sys.exit(f"kit loop: {len(bad)} answers were not 200 (first: {bad[0].status} {bad[0].error})")
        return count / elapsed
    finally:
        runner.close()
        staging.remove_workspace(ws)


def suite_time(work: Path) -> tuple[float, dict]:
    report = work / "report.json"
    command = f"{sys.executable} {ROOT / 'predictor' / 'server.py'} --port {{port}} --model {{model}}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--serve", "--cmd", command,
                           "--report", str(report)], cwd=work, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or not report.is_file():
        sys.exit(f"the suite failed on the reference server:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, json.loads(report.read_text())


def compare(url: str, model_name: str, count: int, label: str, rounds: int = 5) -> float:
    """The median over ``rounds`` of kit/bare requests/s, each round measuring both one after the other (so
    that a change in the machine's load touches both alike)."""
    path = f"/v2/models/{model_name}/infer"
    bare_loop(url, path, min(count, 200))  # warm both sides up
    kit_loop(url, model_name, min(count, 200))
    bare, kit = [], []
    for _ in range(rounds):
        bare.append(bare_loop(url, path, count))
        kit.append(kit_loop(url, model_name, count))
    ratio = statistics.median(k / b for k, b in zip(kit, bare))
    print(f"{label}: bare keep-alive loop {statistics.median(bare):,.0f} requests/s; kit {statistics.median(kit):,.0f} "
          f"requests/s; kit/bare {ratio:.2f} (median of {rounds} rounds of {count} requests)")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--url", help="another V2 server to measure as well (e.g. MLServer)")
    parser.add_argument("--model-name", default="multiplier")
    parser.add_argument("--no-suite", action="store_true", help="skip the suite's wall-time run")
    args = parser.parse_args()
    goals = []
    if not args.no_suite:
        with tempfile.TemporaryDirectory(prefix="odahu-bench-online-") as scratch:
            elapsed, report = suite_time(Path(scratch))
        stats = report.get("stats", {})
        print(f"suite (default profile) against the reference server (--serve): {elapsed:.2f} s, "
              f"{stats.get('predictor_runs')} runs, {stats.get('generated_requests')} generated requests")
        goals.append(("suite <= 20 s", elapsed <= 20))
    process, url = start_reference()
    try:
        ratio = compare(url, "multiplier", args.requests, "reference server")
    finally:
        process.terminate()
        process.wait()
    goals.append(("kit >= 90% of the bare loop", ratio >= 0.9))
    if args.url:
        compare(args.url, args.model_name, args.requests, args.url)
    missed = [name for name, ok in goals if not ok]
    print("goals: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in goals))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
